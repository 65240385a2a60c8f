package postgres

import (
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

func TestAggregate(t *testing.T) {
	h10 := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	hour := func(t time.Time) int64 { return t.Unix() }
	long := strings.Repeat("a", MaxRollupEndpointLen-1) + "é" // the 2-byte é straddles the limit
	longMethod := strings.Repeat("M", MaxRollupMethodLen+5)
	ist := time.FixedZone("IST", 5*3600+1800)

	tests := []struct {
		name     string
		events   []apitoken.Event
		live     map[int64]bool
		want     map[rollupKey]*rollupSums
		wantLast map[int64]time.Time
	}{
		{
			name: "RouteOrRawEndpoint",
			events: []apitoken.Event{
				{TokenID: 1, Endpoint: "/products/1", Route: "/products/{id}", Method: "GET", StatusCode: 200, Time: h10},
				{TokenID: 1, Endpoint: "/products/2", Route: "/products/{id}", Method: "GET", StatusCode: 200, Time: h10},
				{TokenID: 1, Endpoint: "/orders", Method: "GET", StatusCode: 200, Time: h10},
			},
			live: map[int64]bool{1: true},
			want: map[rollupKey]*rollupSums{
				{1, hour(h10), "/products/{id}", "GET"}: {requests: 2, successes: 2},
				{1, hour(h10), "/orders", "GET"}:        {requests: 1, successes: 1},
			},
			wantLast: map[int64]time.Time{1: h10},
		},
		{
			name: "TruncatedAtUTF8Boundary",
			events: []apitoken.Event{
				{TokenID: 1, Endpoint: long + "/more", Method: longMethod, StatusCode: 200, Time: h10},
			},
			live: map[int64]bool{1: true},
			want: map[rollupKey]*rollupSums{
				{1, hour(h10), long[:MaxRollupEndpointLen-1], longMethod[:MaxRollupMethodLen]}: {requests: 1, successes: 1},
			},
			wantLast: map[int64]time.Time{1: h10},
		},
		{
			name: "InvalidTextCleaned",
			events: []apitoken.Event{
				{TokenID: 1, Endpoint: "/a\x00b\xff", Method: "GET", StatusCode: 200, Time: h10},
			},
			live: map[int64]bool{1: true},
			want: map[rollupKey]*rollupSums{
				{1, hour(h10), "/ab\uFFFD", "GET"}: {requests: 1, successes: 1},
			},
			wantLast: map[int64]time.Time{1: h10},
		},
		{
			name: "StatusCounts",
			events: []apitoken.Event{
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 200, Time: h10},
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 204, Time: h10},
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 404, Time: h10},
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 429, Time: h10},
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 429, Time: h10},
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 500, Time: h10},
			},
			live: map[int64]bool{1: true},
			want: map[rollupKey]*rollupSums{
				{1, hour(h10), "/a", "GET"}: {requests: 6, successes: 2, failures: 4, limited: 2},
			},
			wantLast: map[int64]time.Time{1: h10},
		},
		{
			name: "HourBoundary",
			events: []apitoken.Event{
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 200, Time: h10.Add(-time.Nanosecond)},
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 200, Time: h10},
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 200, Time: h10.Add(time.Hour - time.Microsecond)},
			},
			live: map[int64]bool{1: true},
			want: map[rollupKey]*rollupSums{
				{1, hour(h10.Add(-time.Hour)), "/a", "GET"}: {requests: 1, successes: 1},
				{1, hour(h10), "/a", "GET"}:                 {requests: 2, successes: 2},
			},
			wantLast: map[int64]time.Time{1: h10.Add(time.Hour - time.Microsecond)},
		},
		{
			name: "UTCHourOfAHalfHourZone",
			events: []apitoken.Event{
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 200, Time: time.Date(2025, 1, 15, 15, 45, 0, 0, ist)},
			},
			live: map[int64]bool{1: true},
			want: map[rollupKey]*rollupSums{
				{1, hour(h10), "/a", "GET"}: {requests: 1, successes: 1},
			},
			wantLast: map[int64]time.Time{1: h10.Add(15 * time.Minute)},
		},
		{
			name: "NegativeResponseTimeIsZero",
			events: []apitoken.Event{
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 200, ResponseTime: -time.Second, Time: h10},
			},
			live: map[int64]bool{1: true},
			want: map[rollupKey]*rollupSums{
				{1, hour(h10), "/a", "GET"}: {requests: 1, successes: 1},
			},
			wantLast: map[int64]time.Time{1: h10},
		},
		{
			name: "MaxAndSums",
			events: []apitoken.Event{
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 200, ResponseTime: 3 * time.Millisecond,
					RequestSize: 10, ResponseSize: 100, Time: h10},
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 200, ResponseTime: 7*time.Millisecond + 999,
					RequestSize: 20, ResponseSize: 200, Time: h10},
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 200, ResponseTime: time.Millisecond,
					RequestSize: 30, ResponseSize: 300, Time: h10},
			},
			live: map[int64]bool{1: true},
			want: map[rollupKey]*rollupSums{
				{1, hour(h10), "/a", "GET"}: {requests: 3, successes: 3, sumUS: 11000, maxUS: 7000, reqBytes: 60, respBytes: 600},
			},
			wantLast: map[int64]time.Time{1: h10},
		},
		{
			name: "LastUsedNeverBackwards",
			events: []apitoken.Event{
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 200, Time: h10.Add(2*time.Minute + 1500)},
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 200, Time: h10},
				{TokenID: 2, Endpoint: "/a", Method: "GET", StatusCode: 200, Time: h10},
				{TokenID: 2, Endpoint: "/a", Method: "GET", StatusCode: 200, Time: h10.Add(time.Minute)},
			},
			live: map[int64]bool{1: true, 2: true},
			want: map[rollupKey]*rollupSums{
				{1, hour(h10), "/a", "GET"}: {requests: 2, successes: 2},
				{2, hour(h10), "/a", "GET"}: {requests: 2, successes: 2},
			},
			wantLast: map[int64]time.Time{1: h10.Add(2*time.Minute + time.Microsecond), 2: h10.Add(time.Minute)},
		},
		{
			name: "DeadTokensSkipped",
			events: []apitoken.Event{
				{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 200, Time: h10},
				{TokenID: 2, Endpoint: "/a", Method: "GET", StatusCode: 500, Time: h10.Add(time.Minute)},
				{TokenID: 3, Endpoint: "/b", Method: "GET", StatusCode: 200, Time: h10},
			},
			live: map[int64]bool{1: true},
			want: map[rollupKey]*rollupSums{
				{1, hour(h10), "/a", "GET"}: {requests: 1, successes: 1},
			},
			wantLast: map[int64]time.Time{1: h10},
		},
		{
			name:     "NoLiveToken",
			events:   []apitoken.Event{{TokenID: 1, Endpoint: "/a", Method: "GET", StatusCode: 200, Time: h10}},
			live:     map[int64]bool{},
			want:     map[rollupKey]*rollupSums{},
			wantLast: map[int64]time.Time{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sums, lastUsed := aggregate(tc.events, tc.live)
			if !reflect.DeepEqual(sums, tc.want) {
				t.Errorf("sums:\n got %s\nwant %s", formatSums(sums), formatSums(tc.want))
			}
			if !maps.EqualFunc(lastUsed, tc.wantLast, time.Time.Equal) {
				t.Errorf("last used = %v, want %v", lastUsed, tc.wantLast)
			}
			for id, at := range lastUsed {
				if at.Location() != time.UTC {
					t.Errorf("last used of %d in %v, want UTC", id, at.Location())
				}
			}
		})
	}
}

// formatSums shows sums one row a line, long endpoints by their length.
func formatSums(sums map[rollupKey]*rollupSums) string {
	var b strings.Builder
	for k, r := range sums {
		endpoint := k.endpoint
		if len(endpoint) > 40 {
			endpoint = fmt.Sprintf("%.20s… (%d bytes)", endpoint, len(endpoint))
		}
		fmt.Fprintf(&b, "\n  token %d %s %s %s: %+v", k.token, time.Unix(k.hour, 0).UTC().Format(time.RFC3339), endpoint, k.method, *r)
	}
	return b.String()
}
