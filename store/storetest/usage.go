package storetest

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/storeutil"
)

// u0 is the start of the first hour of the usage data set.
var u0 = time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)

func hour(n int) time.Time { return u0.Add(time.Duration(n) * time.Hour) }

// event is one request of a data set, with the ResponseTimeMS its recent
// request must show.
type event struct {
	label    string
	token    string // key into fixture.ids
	at       time.Duration
	method   string
	endpoint string
	route    string
	status   int
	rt       time.Duration
	ms       float64
	ip, ua   string
	zone     *time.Location // the location Event.Time is given in; nil for UTC
}

func (e event) apiEvent(ids map[string]int64) apitoken.Event {
	at := u0.Add(e.at)
	if e.zone != nil {
		at = at.In(e.zone)
	}
	var ip netip.Addr
	if e.ip != "" {
		ip = netip.MustParseAddr(e.ip)
	}
	return apitoken.Event{
		TokenID: ids[e.token], Endpoint: e.endpoint, Route: e.route, Method: e.method,
		StatusCode: e.status, ResponseTime: e.rt, RequestSize: 123, ResponseSize: 4567,
		IP: ip, UserAgent: e.ua, Time: at,
	}
}

const (
	wp   = "WordPress/6.4"
	curl = "curl/8.5.0"
)

// The data set: two tokens with usage over three hours. Labels number the
// events in time order; a7 has the same time as a6 and is recorded after it,
// b11 likewise after b10.
var dataset = []event{
	{"a1", "A", 5 * time.Minute, "GET", "/products", "", 200, 100 * time.Millisecond, 100, "192.168.1.100", wp, nil},
	{"a2", "A", 10 * time.Minute, "GET", "/products/1", "/products/{id}", 200, 200 * time.Millisecond, 200, "192.168.1.100", wp, nil},
	{"a3", "A", 20 * time.Minute, "GET", "/products/2", "/products/{id}", 404, 301 * time.Millisecond, 301, "192.168.1.101", wp, nil},
	{"b4", "B", 30 * time.Minute, "POST", "/orders", "", 201, 50 * time.Millisecond, 50, "10.0.0.1", curl, nil},
	{"a5", "A", time.Hour, "GET", "/products", "", 500, 400 * time.Millisecond, 400, "192.168.1.100", wp, zoneEast},
	{"a6", "A", time.Hour + 15*time.Minute, "POST", "/products", "", 201, 1125 * time.Microsecond, 1.13, "2001:db8::1", wp, nil},
	{"a7", "A", time.Hour + 15*time.Minute, "DELETE", "/products/9", "/products/{id}", 204, 5 * time.Millisecond, 5, "192.168.1.100", "", nil},
	{"b8", "B", time.Hour + 15*time.Minute, "GET", "/products", "", 200, 10 * time.Millisecond, 10, "10.0.0.1", curl, zoneWest},
	{"a9", "A", time.Hour + 20*time.Minute, "PATCH", "/products", "", 200, 2 * time.Millisecond, 2, "", wp, nil},
	{"b10", "B", 2*time.Hour + 30*time.Minute, "GET", "/products", "", 302, 20 * time.Millisecond, 20, "10.0.0.1", curl, nil},
	{"b11", "B", 2*time.Hour + 30*time.Minute, "GET", "/products", "", 400, 30 * time.Millisecond, 30, "10.0.0.2", curl, nil},
	{"a12", "A", 3*time.Hour - time.Microsecond, "GET", "/products/3", "/products/{id}", 200, 99999 * time.Microsecond, 100, "192.168.1.100", wp, nil},
}

// The data set is recorded in two batches, later events first, so stores
// cannot rely on recording order for time order.
var datasetBatches = [][]string{
	{"a12", "b10", "b11", "a6", "a7"},
	{"a1", "b4", "a2", "a3", "a5", "b8", "a9"},
}

type fixture struct {
	st  apitoken.Store
	us  apitoken.UsageStore
	ids map[string]int64
}

// usageFixture creates the tokens A to F and records the data set.
//
//	A "Alpha"   active
//	B "Beta"    active, expires hour(0)+30 days
//	C "Gamma"   active, no usage
//	D "Delta"   inactive
//	E "Epsilon" active, expires at hour(3)
//	F "Zeta"    active, expires at hour(3) + 1µs
func (s suite) usageFixture(t *testing.T) (*fixture, [][]apitoken.Event) {
	t.Helper()
	st, us := s.usageStore(t)
	f := &fixture{st: st, us: us, ids: map[string]int64{}}
	specs := []struct {
		key, name string
		active    bool
		expires   *time.Time
	}{
		{"A", "Alpha", true, nil},
		{"B", "Beta", true, ptr(u0.Add(30 * 24 * time.Hour))},
		{"C", "Gamma", true, nil},
		{"D", "Delta", false, nil},
		{"E", "Epsilon", true, ptr(hour(3))},
		{"F", "Zeta", true, ptr(hour(3).Add(time.Microsecond))},
	}
	for _, sp := range specs {
		tok := simpleToken(sp.name)
		tok.Active, tok.ExpiresAt = sp.active, sp.expires
		f.ids[sp.key] = create(t, st, tok, "usage "+sp.key)
	}
	byLabel := map[string]event{}
	for _, e := range dataset {
		byLabel[e.label] = e
	}
	var batches [][]apitoken.Event
	for _, labels := range datasetBatches {
		var batch []apitoken.Event
		for _, l := range labels {
			batch = append(batch, byLabel[l].apiEvent(f.ids))
		}
		if err := us.RecordUsage(t.Context(), batch); err != nil {
			t.Fatalf("RecordUsage: %v", err)
		}
		batches = append(batches, batch)
	}
	return f, batches
}

// recent returns the recent requests of the labelled data set events.
func recent(labels ...string) []apitoken.RecentRequest {
	out := []apitoken.RecentRequest{}
	for _, l := range labels {
		for _, e := range dataset {
			if e.label == l {
				out = append(out, apitoken.RecentRequest{
					Endpoint: e.endpoint, Method: e.method, StatusCode: e.status, ResponseTimeMS: e.ms,
					IPAddress: e.ip, UserAgent: e.ua, CreatedAt: u0.Add(e.at),
				})
			}
		}
	}
	return out
}

type (
	hu = apitoken.HourlyUsage
	eu = apitoken.EndpointUsage
)

func checkUsage(t *testing.T, what string, want, got *apitoken.TokenUsage) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: nil TokenUsage", what)
		return
	}
	var d []string
	if got.HourlyUsage == nil || got.EndpointUsage == nil || got.RecentRequests == nil {
		d = append(d, "a nil slice: want empty slices, not nil")
	}
	for i := range got.HourlyUsage {
		d = append(d, utc(fmt.Sprintf("HourlyUsage[%d].Hour", i), &got.HourlyUsage[i].Hour)...)
	}
	for i := range got.RecentRequests {
		d = append(d, utc(fmt.Sprintf("RecentRequests[%d].CreatedAt", i), &got.RecentRequests[i].CreatedAt)...)
	}
	d = append(d, listDiff("HourlyUsage", want.HourlyUsage, got.HourlyUsage)...)
	d = append(d, listDiff("EndpointUsage", want.EndpointUsage, got.EndpointUsage)...)
	d = append(d, listDiff("RecentRequests", want.RecentRequests, got.RecentRequests)...)
	if len(d) > 0 {
		t.Errorf("%s:\n\t%s", what, strings.Join(d, "\n\t"))
	}
}

func checkOverview(t *testing.T, what string, want, got *apitoken.Overview) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: nil Overview", what)
		return
	}
	var d []string
	if got.TopTokens == nil || got.TopEndpoints == nil || got.RateLimitedTokens == nil {
		d = append(d, "a nil slice: want empty slices, not nil")
	}
	if got.Overview != want.Overview {
		d = append(d, fmt.Sprintf("Overview:\n\t\tgot  %+v\n\t\twant %+v", got.Overview, want.Overview))
	}
	d = append(d, listDiff("TopTokens", want.TopTokens, got.TopTokens)...)
	d = append(d, listDiff("TopEndpoints", want.TopEndpoints, got.TopEndpoints)...)
	d = append(d, listDiff("RateLimitedTokens", want.RateLimitedTokens, got.RateLimitedTokens)...)
	if len(d) > 0 {
		t.Errorf("%s:\n\t%s", what, strings.Join(d, "\n\t"))
	}
}

// noUsage checks a TokenUsage of a token without usage: empty, or
// ErrNotFound when the token does not exist and allowNotFound is set.
func noUsage(t *testing.T, what string, got *apitoken.TokenUsage, err error, allowNotFound bool) {
	t.Helper()
	if allowNotFound && errors.Is(err, apitoken.ErrNotFound) {
		return
	}
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	checkUsage(t, what, &apitoken.TokenUsage{}, got)
}

func (s suite) testUsage(t *testing.T) {
	s.usageStore(t) // skips when the store has no usage side
	tests := []struct {
		name string
		run  func(*testing.T)
	}{
		{"TokenUsage", s.testTokenUsage},
		{"Overview", s.testOverview},
		{"TopTokensTie", s.testTopTokensTie},
		{"RateLimited", s.testRateLimited},
		{"DefaultLimit", s.testDefaultLimit},
		{"TokenStats", s.testTokenStats},
		{"NoUsage", s.testNoUsage},
		{"RecordEmpty", s.testRecordEmpty},
		{"NotRetained", s.testNotRetained},
		{"UnknownTokenEventsDropped", s.testUnknownTokenEvents},
		{"DeleteRemovesUsage", s.testDeleteRemovesUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

func (s suite) testTokenUsage(t *testing.T) {
	f, _ := s.usageFixture(t)
	for _, tc := range append(tokenUsageWholeHourCases(), tokenUsageEdgeCases()...) {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.us.TokenUsage(t.Context(), f.ids[tc.token], tc.q)
			if err != nil {
				t.Fatalf("TokenUsage: %v", err)
			}
			checkUsage(t, "TokenUsage", &tc.want, got)
		})
	}
}

// tokenUsageCase is a TokenUsage query of a dataset token and its answer.
type tokenUsageCase struct {
	name  string
	token string
	q     apitoken.Query
	want  apitoken.TokenUsage
}

// usageOfA is token A's usage in the dataset: per hour, per endpoint,
// and per endpoint in hour one alone (where each is requested once).
func usageOfA() (aHourly []hu, aEndpoints, hour1Endpoints []eu) {
	aHourly = []hu{
		{Hour: hour(0), Requests: 3, AvgResponseTime: 200.33, SuccessfulRequests: 2, FailedRequests: 1},
		{Hour: hour(1), Requests: 4, AvgResponseTime: 102.03, SuccessfulRequests: 3, FailedRequests: 1},
		{Hour: hour(2), Requests: 1, AvgResponseTime: 100, SuccessfulRequests: 1, FailedRequests: 0},
	}
	aEndpoints = []eu{
		{Endpoint: "/products/{id}", Method: "GET", Requests: 3, AvgResponseTime: 200.33},
		{Endpoint: "/products", Method: "GET", Requests: 2, AvgResponseTime: 250},
		{Endpoint: "/products", Method: "PATCH", Requests: 1, AvgResponseTime: 2},
		{Endpoint: "/products", Method: "POST", Requests: 1, AvgResponseTime: 1.13},
		{Endpoint: "/products/{id}", Method: "DELETE", Requests: 1, AvgResponseTime: 5},
	}
	// The hour-one endpoints, each requested once.
	hour1Endpoints = []eu{
		{Endpoint: "/products", Method: "GET", Requests: 1, AvgResponseTime: 400},
		{Endpoint: "/products", Method: "PATCH", Requests: 1, AvgResponseTime: 2},
		{Endpoint: "/products", Method: "POST", Requests: 1, AvgResponseTime: 1.13},
		{Endpoint: "/products/{id}", Method: "DELETE", Requests: 1, AvgResponseTime: 5},
	}
	return aHourly, aEndpoints, hour1Endpoints
}

// tokenUsageWholeHourCases query whole hours, with and without a limit.
func tokenUsageWholeHourCases() []tokenUsageCase {
	aHourly, aEndpoints, hour1Endpoints := usageOfA()
	full := apitoken.Query{From: hour(0), To: hour(3)}
	return []tokenUsageCase{
		{"A/AllHours", "A", full, apitoken.TokenUsage{
			HourlyUsage:    aHourly,
			EndpointUsage:  aEndpoints,
			RecentRequests: recent("a12", "a9", "a7", "a6", "a5", "a3", "a2", "a1"),
		}},
		{"B/AllHours", "B", full, apitoken.TokenUsage{
			HourlyUsage: []hu{
				{Hour: hour(0), Requests: 1, AvgResponseTime: 50, SuccessfulRequests: 1},
				{Hour: hour(1), Requests: 1, AvgResponseTime: 10, SuccessfulRequests: 1},
				{Hour: hour(2), Requests: 2, AvgResponseTime: 25, SuccessfulRequests: 1, FailedRequests: 1},
			},
			EndpointUsage: []eu{
				{Endpoint: "/products", Method: "GET", Requests: 3, AvgResponseTime: 20},
				{Endpoint: "/orders", Method: "POST", Requests: 1, AvgResponseTime: 50},
			},
			RecentRequests: recent("b11", "b10", "b8", "b4"),
		}},
		{"A/Limit3", "A", apitoken.Query{From: hour(0), To: hour(3), Limit: 3}, apitoken.TokenUsage{
			HourlyUsage:    aHourly, // not capped
			EndpointUsage:  aEndpoints[:3],
			RecentRequests: recent("a12", "a9", "a7"),
		}},
		{"A/Limit1", "A", apitoken.Query{From: hour(0), To: hour(3), Limit: 1}, apitoken.TokenUsage{
			HourlyUsage:    aHourly,
			EndpointUsage:  aEndpoints[:1],
			RecentRequests: recent("a12"),
		}},
		{"A/WideRange", "A", apitoken.Query{From: hour(-48), To: hour(48)}, apitoken.TokenUsage{
			HourlyUsage:    aHourly,
			EndpointUsage:  aEndpoints,
			RecentRequests: recent("a12", "a9", "a7", "a6", "a5", "a3", "a2", "a1"),
		}},
		{"A/OneHour", "A", apitoken.Query{From: hour(1), To: hour(2)}, apitoken.TokenUsage{
			HourlyUsage:    aHourly[1:2],
			EndpointUsage:  hour1Endpoints,
			RecentRequests: recent("a9", "a7", "a6", "a5"), // a5 is at From: included
		}},
	}
}

// tokenUsageEdgeCases query ranges whose bounds are inside an hour, finer
// than a microsecond, or outside the dataset's hours, and a token without
// usage.
func tokenUsageEdgeCases() []tokenUsageCase {
	aHourly, aEndpoints, hour1Endpoints := usageOfA()
	full := apitoken.Query{From: hour(0), To: hour(3)}
	empty := apitoken.TokenUsage{}
	return []tokenUsageCase{
		{"A/MidHourBounds", "A", apitoken.Query{From: hour(1).Add(15 * time.Minute), To: hour(3).Add(-time.Microsecond)},
			apitoken.TokenUsage{
				// Buckets overlapping the range count whole: a5 is before
				// From but in the hour-one bucket.
				HourlyUsage: aHourly[1:3],
				EndpointUsage: append(hour1Endpoints[:4:4],
					eu{Endpoint: "/products/{id}", Method: "GET", Requests: 1, AvgResponseTime: 100}),
				// a12 is at To: excluded.
				RecentRequests: recent("a9", "a7", "a6"),
			}},
		{"A/LastMicrosecondOfHour", "A", apitoken.Query{From: hour(1).Add(-time.Microsecond), To: hour(1)}, apitoken.TokenUsage{
			HourlyUsage: aHourly[0:1],
			EndpointUsage: []eu{
				{Endpoint: "/products/{id}", Method: "GET", Requests: 2, AvgResponseTime: 250.5},
				{Endpoint: "/products", Method: "GET", Requests: 1, AvgResponseTime: 100},
			},
			RecentRequests: []apitoken.RecentRequest{},
		}},
		// Bounds finer than a microsecond, as the Manager makes them
		// (To = now + 1ns): events at To's microsecond are in.
		{"A/NanosecondTo", "A", apitoken.Query{From: hour(1), To: hour(1).Add(15*time.Minute + time.Nanosecond)}, apitoken.TokenUsage{
			HourlyUsage:    aHourly[1:2],
			EndpointUsage:  hour1Endpoints,
			RecentRequests: recent("a7", "a6", "a5"),
		}},
		{"A/NanosecondFrom", "A", apitoken.Query{From: hour(1).Add(15*time.Minute + time.Nanosecond), To: hour(2)}, apitoken.TokenUsage{
			HourlyUsage:    aHourly[1:2],
			EndpointUsage:  hour1Endpoints,
			RecentRequests: recent("a9"),
		}},
		{"A/NanosecondAfterHourStart", "A", apitoken.Query{From: hour(0), To: hour(2).Add(time.Nanosecond)}, apitoken.TokenUsage{
			HourlyUsage:    aHourly,
			EndpointUsage:  aEndpoints,
			RecentRequests: recent("a9", "a7", "a6", "a5", "a3", "a2", "a1"),
		}},
		{"A/AfterLastHour", "A", apitoken.Query{From: hour(3), To: hour(4)}, empty},
		{"A/BeforeFirstHour", "A", apitoken.Query{From: hour(-1), To: hour(0)}, empty},
		{"A/Inverted", "A", apitoken.Query{From: hour(2), To: hour(0)}, empty},
		{"A/EmptyRange", "A", apitoken.Query{From: hour(1), To: hour(1)}, empty},
		{"C/NoUsage", "C", full, empty},
	}
}

func (s suite) testOverview(t *testing.T) {
	f, _ := s.usageFixture(t)
	allEndpoints := []eu{
		{Endpoint: "/products", Method: "GET", Requests: 5, AvgResponseTime: 112},
		{Endpoint: "/products/{id}", Method: "GET", Requests: 3, AvgResponseTime: 200.33},
		{Endpoint: "/orders", Method: "POST", Requests: 1, AvgResponseTime: 50},
		{Endpoint: "/products", Method: "PATCH", Requests: 1, AvgResponseTime: 2},
		{Endpoint: "/products", Method: "POST", Requests: 1, AvgResponseTime: 1.13},
		{Endpoint: "/products/{id}", Method: "DELETE", Requests: 1, AvgResponseTime: 5},
	}
	a, b := f.ids["A"], f.ids["B"]
	allTops := []apitoken.TopToken{
		{ID: a, Name: "Alpha", Requests: 8, AvgResponseTime: 138.64},
		{ID: b, Name: "Beta", Requests: 4, AvgResponseTime: 27.5},
	}
	allTotals := apitoken.OverviewTotals{ActiveTokens: 4, TotalRequests: 12, AvgResponseTime: 101.59, SuccessfulRequests: 9, FailedRequests: 3}
	tests := []struct {
		name string
		q    apitoken.Query
		want apitoken.Overview
	}{
		// E expires exactly at To: not active. F a microsecond later: active.
		{"AllHours", apitoken.Query{From: hour(0), To: hour(3)}, apitoken.Overview{
			Overview: allTotals, TopTokens: allTops, TopEndpoints: allEndpoints,
		}},
		{"Limit1", apitoken.Query{From: hour(0), To: hour(3), Limit: 1}, apitoken.Overview{
			Overview: allTotals, TopTokens: allTops[:1], TopEndpoints: allEndpoints[:1],
		}},
		{"OneHourLimit2", apitoken.Query{From: hour(1), To: hour(2), Limit: 2}, apitoken.Overview{
			Overview: apitoken.OverviewTotals{ActiveTokens: 5, TotalRequests: 5, AvgResponseTime: 83.63, SuccessfulRequests: 4, FailedRequests: 1},
			TopTokens: []apitoken.TopToken{
				{ID: a, Name: "Alpha", Requests: 4, AvgResponseTime: 102.03},
				{ID: b, Name: "Beta", Requests: 1, AvgResponseTime: 10},
			},
			TopEndpoints: []eu{
				{Endpoint: "/products", Method: "GET", Requests: 2, AvgResponseTime: 205},
				{Endpoint: "/products", Method: "PATCH", Requests: 1, AvgResponseTime: 2},
			},
		}},
		// E expires a nanosecond after To: still active then.
		{"ToJustBeforeExpiry", apitoken.Query{From: hour(0), To: hour(3).Add(-time.Nanosecond)}, apitoken.Overview{
			Overview:  apitoken.OverviewTotals{ActiveTokens: 5, TotalRequests: 12, AvgResponseTime: 101.59, SuccessfulRequests: 9, FailedRequests: 3},
			TopTokens: allTops, TopEndpoints: allEndpoints,
		}},
		{"NoRequests", apitoken.Query{From: hour(3), To: hour(4)}, apitoken.Overview{
			Overview: apitoken.OverviewTotals{ActiveTokens: 3},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.us.Overview(t.Context(), tc.q)
			if err != nil {
				t.Fatalf("Overview: %v", err)
			}
			checkOverview(t, "Overview", &tc.want, got)
		})
	}
	t.Run("CurrentName", func(t *testing.T) {
		if _, err := f.st.UpdateToken(t.Context(), b, apitoken.Update{Name: apitoken.Set("Beta renamed")}, t0); err != nil {
			t.Fatal(err)
		}
		got, err := f.us.Overview(t.Context(), apitoken.Query{From: hour(0), To: hour(3)})
		if err != nil {
			t.Fatal(err)
		}
		want := apitoken.Overview{Overview: allTotals, TopTokens: append(allTops[:1:1], allTops[1]), TopEndpoints: allEndpoints}
		want.TopTokens[1].Name = "Beta renamed"
		checkOverview(t, "Overview after renaming B", &want, got)
	})
}

func (s suite) testTopTokensTie(t *testing.T) {
	st, us := s.usageStore(t)
	x := create(t, st, simpleToken("x"), "tie x")
	y := create(t, st, simpleToken("y"), "tie y")
	z := create(t, st, simpleToken("z"), "tie z")
	ev := func(id int64, minute int) apitoken.Event {
		return apitoken.Event{
			TokenID: id, Endpoint: "/t", Method: "GET", StatusCode: 200, ResponseTime: time.Millisecond,
			Time: u0.Add(time.Duration(minute) * time.Minute),
		}
	}
	// y's requests are recorded first and are the latest; z has the most.
	batch := []apitoken.Event{ev(y, 50), ev(y, 51), ev(z, 1), ev(x, 2), ev(x, 3), ev(z, 4), ev(z, 5)}
	if err := us.RecordUsage(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	got, err := us.Overview(t.Context(), apitoken.Query{From: hour(0), To: hour(1)})
	if err != nil {
		t.Fatal(err)
	}
	want := apitoken.Overview{
		Overview: apitoken.OverviewTotals{ActiveTokens: 3, TotalRequests: 7, AvgResponseTime: 1, SuccessfulRequests: 7},
		TopTokens: []apitoken.TopToken{
			{ID: z, Name: "z", Requests: 3, AvgResponseTime: 1},
			{ID: x, Name: "x", Requests: 2, AvgResponseTime: 1},
			{ID: y, Name: "y", Requests: 2, AvgResponseTime: 1},
		},
		TopEndpoints: []eu{{Endpoint: "/t", Method: "GET", Requests: 7, AvgResponseTime: 1}},
	}
	checkOverview(t, "Overview", &want, got)
}

// testRateLimited checks Overview's RateLimitedTokens and TopTokens'
// RateLimitedRequests: 429 responses counted per token and UTC hour.
func (s suite) testRateLimited(t *testing.T) {
	st, us := s.usageStore(t)
	ids := recordRateLimited(t, st, us)
	type rl = apitoken.RateLimitedToken
	p := rl{TokenID: ids["P"], Name: "Yankee", RateLimit: 5}
	q := rl{TokenID: ids["Q"], Name: "Xray", RateLimit: 10}
	r := rl{TokenID: ids["R"], Name: "Whiskey", RateLimit: 20}
	tt := rl{TokenID: ids["T"], Name: "Uniform", RateLimit: 1}
	with := withCounts
	check := func(t *testing.T, q apitoken.Query, want []rl) *apitoken.Overview {
		t.Helper()
		return checkRateLimited(t, us, q, want)
	}
	t.Run("TopTokens", func(t *testing.T) {
		got := check(t, apitoken.Query{From: hour(0), To: hour(3)},
			[]rl{with(tt, 9, 9), with(p, 4, 6), with(q, 4, 5), with(r, 2, 2)})
		top := func(key, name string, requests, limited int64) apitoken.TopToken {
			return apitoken.TopToken{ID: ids[key], Name: name, Requests: requests, AvgResponseTime: 1, RateLimitedRequests: limited}
		}
		want := []apitoken.TopToken{
			top("S", "Victor", 11, 0), top("T", "Uniform", 9, 9), top("P", "Yankee", 6, 4),
			top("Q", "Xray", 5, 4), top("R", "Whiskey", 2, 2),
		}
		if d := listDiff("TopTokens", want, got.TopTokens); len(d) > 0 {
			t.Errorf("Overview:\n\t%s", strings.Join(d, "\n\t"))
		}
	})
	if err := st.DeleteToken(t.Context(), ids["T"]); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		q    apitoken.Query
		want []rl
	}{
		// P and Q tie at 4: the lower id first.
		{"AllHours", apitoken.Query{From: hour(0), To: hour(3)}, []rl{with(p, 4, 6), with(q, 4, 5), with(r, 2, 2)}},
		{"Limit2", apitoken.Query{From: hour(0), To: hour(3), Limit: 2}, []rl{with(p, 4, 6), with(q, 4, 5)}},
		{"Limit1", apitoken.Query{From: hour(0), To: hour(3), Limit: 1}, []rl{with(p, 4, 6)}},
		{"WideRange", apitoken.Query{From: hour(-48), To: hour(48)}, []rl{with(p, 4, 7), with(q, 4, 5), with(r, 2, 2)}},
		// Q and R tie at 2.
		{"Hours0And1", apitoken.Query{From: hour(0), To: hour(2)}, []rl{with(p, 4, 6), with(q, 2, 3), with(r, 2, 2)}},
		{"Hour0", apitoken.Query{From: hour(0), To: hour(1)}, []rl{with(p, 3, 5), with(r, 2, 2)}},
		{"Hour1", apitoken.Query{From: hour(1), To: hour(2)}, []rl{with(q, 2, 3), with(p, 1, 1)}},
		// Hour-granular: a bucket overlapping the range counts whole.
		{"MidHourBounds", apitoken.Query{From: hour(1).Add(30 * time.Minute), To: hour(1).Add(31 * time.Minute)}, []rl{with(q, 2, 3), with(p, 1, 1)}},
		{"ToAtHourStart", apitoken.Query{From: hour(1).Add(-time.Microsecond), To: hour(2)}, []rl{with(p, 4, 6), with(q, 2, 3), with(r, 2, 2)}},
		{"NanosecondAfterHourStart", apitoken.Query{From: hour(2), To: hour(2).Add(time.Nanosecond)}, []rl{with(q, 2, 2)}},
		{"NoneInRange", apitoken.Query{From: hour(3), To: hour(4)}, []rl{}},
		{"BeforeAll", apitoken.Query{From: hour(-2), To: hour(0)}, []rl{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.q, tc.want) })
	}
	t.Run("CurrentNameAndLimit", func(t *testing.T) {
		if _, err := st.UpdateToken(t.Context(), ids["R"], apitoken.Update{Name: apitoken.Set("Whiskey 2"), RateLimit: apitoken.Set(0)}, t0); err != nil {
			t.Fatal(err)
		}
		r2 := r
		r2.Name, r2.RateLimit = "Whiskey 2", 0
		check(t, apitoken.Query{From: hour(0), To: hour(1)}, []rl{with(p, 3, 5), with(r2, 2, 2)})
	})
}

// recordRateLimited creates tokens P, Q, R, S and T in st and records, in
// two batches, the usage of each tabulated below, returning their ids by
// key.
func recordRateLimited(t *testing.T, st apitoken.Store, us apitoken.UsageStore) map[string]int64 {
	t.Helper()
	// Names in the reverse order of the ids, so that a tie broken by name
	// or by recording order shows.
	ids := map[string]int64{}
	for _, sp := range []struct {
		key, name string
		limit     int
	}{{"P", "Yankee", 5}, {"Q", "Xray", 10}, {"R", "Whiskey", 20}, {"S", "Victor", 100}, {"T", "Uniform", 1}} {
		tok := simpleToken(sp.name)
		tok.RateLimit = sp.limit
		ids[sp.key] = create(t, st, tok, "rate limited "+sp.key)
	}
	ev := func(key string, at time.Time, status int) apitoken.Event {
		return apitoken.Event{TokenID: ids[key], Endpoint: "/r", Method: "GET", StatusCode: status, ResponseTime: time.Millisecond, Time: at}
	}
	n := func(k int, e apitoken.Event) []apitoken.Event {
		out := make([]apitoken.Event, k)
		for i := range out {
			out[i] = e
		}
		return out
	}
	// Per token and hour (429s / requests):
	//
	//	     hour 0   hour 1   hour 2
	//	P    3 / 5    1 / 1
	//	Q             2 / 3    2 / 2
	//	R    2 / 2
	//	S    0 / 11
	//	T    9 / 9             (deleted below)
	//
	// The same token and hour are split across the two batches, and some
	// times are in other zones or at an hour's edges.
	batches := [][]apitoken.Event{
		slices.Concat(
			n(2, ev("P", hour(0).Add(time.Minute), 429)),
			[]apitoken.Event{ev("P", hour(1).Add(-time.Microsecond).In(zoneWest), 200)},
			n(2, ev("Q", hour(2), 429)),
			n(9, ev("T", hour(0).Add(30*time.Minute), 429)),
			n(10, ev("S", hour(0).Add(10*time.Minute), 200)),
			[]apitoken.Event{ev("S", hour(0).Add(11*time.Minute), 500)},
			n(2, ev("Q", hour(1).Add(5*time.Minute).In(zoneEast), 429)),
		),
		slices.Concat(
			n(2, ev("R", hour(0).Add(59*time.Minute), 429)),
			[]apitoken.Event{
				ev("P", hour(0), 429),
				ev("P", hour(0).Add(2*time.Minute), 200),
				ev("P", hour(1).Add(59*time.Minute), 429),
				ev("Q", hour(1).Add(6*time.Minute), 200),
				ev("P", hour(3), 200), // outside every range below but the wide one
			},
		),
	}
	for _, b := range batches {
		if err := us.RecordUsage(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// checkRateLimited checks the RateLimitedTokens of us.Overview(q) and
// returns the overview.
func checkRateLimited(t *testing.T, us apitoken.UsageStore, q apitoken.Query, want []apitoken.RateLimitedToken) *apitoken.Overview {
	t.Helper()
	got, err := us.Overview(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	if got.RateLimitedTokens == nil {
		t.Error("RateLimitedTokens is nil, want an empty slice")
	}
	if d := listDiff("RateLimitedTokens", want, got.RateLimitedTokens); len(d) > 0 {
		t.Errorf("Overview(%v .. %v, limit %d):\n\t%s", q.From, q.To, q.Limit, strings.Join(d, "\n\t"))
	}
	return got
}

// withCounts is x with its counts of 429 responses and of requests.
func withCounts(x apitoken.RateLimitedToken, limited, requests int64) apitoken.RateLimitedToken {
	x.RateLimitedRequests, x.Requests = limited, requests
	return x
}

func (s suite) testDefaultLimit(t *testing.T) {
	st, us := s.usageStore(t)
	id := create(t, st, simpleToken("busy"), "default limit")
	const n = storeutil.DefaultQueryLimit + 10
	var batch []apitoken.Event
	for i := range n {
		batch = append(batch, apitoken.Event{
			TokenID: id, Endpoint: fmt.Sprintf("/e/%02d", i), Method: "GET", StatusCode: 200,
			ResponseTime: time.Millisecond, Time: u0.Add(time.Duration(i) * time.Second),
		})
	}
	if err := us.RecordUsage(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		limit int
		want  int
	}{
		{"Zero", 0, storeutil.DefaultQueryLimit},
		{"Negative", -1, storeutil.DefaultQueryLimit},
		{"AboveCount", n + 5, n},
		{"Small", 7, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := apitoken.Query{From: hour(0), To: hour(1), Limit: tc.limit}
			u, err := us.TokenUsage(t.Context(), id, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(u.RecentRequests) != tc.want || len(u.EndpointUsage) != tc.want {
				t.Fatalf("TokenUsage: %d recent requests and %d endpoints, want %d", len(u.RecentRequests), len(u.EndpointUsage), tc.want)
			}
			newest, oldest := fmt.Sprintf("/e/%02d", n-1), fmt.Sprintf("/e/%02d", n-tc.want)
			if u.RecentRequests[0].Endpoint != newest || u.RecentRequests[tc.want-1].Endpoint != oldest {
				t.Errorf("recent requests run %s..%s, want %s..%s", u.RecentRequests[0].Endpoint, u.RecentRequests[tc.want-1].Endpoint, newest, oldest)
			}
			first, last := "/e/00", fmt.Sprintf("/e/%02d", tc.want-1)
			if u.EndpointUsage[0].Endpoint != first || u.EndpointUsage[tc.want-1].Endpoint != last {
				t.Errorf("endpoints run %s..%s, want %s..%s", u.EndpointUsage[0].Endpoint, u.EndpointUsage[tc.want-1].Endpoint, first, last)
			}
			o, err := us.Overview(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			if len(o.TopEndpoints) != tc.want || o.TopEndpoints[tc.want-1].Endpoint != last {
				t.Errorf("Overview: %d top endpoints, want %d ending with %s", len(o.TopEndpoints), tc.want, last)
			}
		})
	}
}

func (s suite) testTokenStats(t *testing.T) {
	st, us := s.usageStore(t)
	ids := map[string]int64{}
	for _, k := range []string{"S", "T", "U", "V"} {
		ids[k] = create(t, st, simpleToken(k), "stats "+k)
	}
	now := time.Date(2025, 1, 20, 12, 30, 0, 0, time.UTC)
	utcAt := func(d, h, m, s, us int) time.Time { return time.Date(2025, 1, d, h, m, s, us*1000, time.UTC) }
	// S's requests, and the windows they count in at now.
	sEvents := []time.Time{
		now, // 24h
		now.Add(30*time.Minute - time.Microsecond), // 24h: after now, but in now's hour
		now.Add(30 * time.Minute),                  // total only: an hour after now's
		now.Add(-24*time.Hour + time.Microsecond),  // 24h
		utcAt(19, 12, 0, 0, 0),                     // 24h: in the hour of now-24h
		utcAt(19, 11, 59, 59, 999999),              // 7d
		now.Add(-7 * 24 * time.Hour),               // 7d
		utcAt(13, 12, 0, 0, 0),                     // 7d: in the hour of now-7d
		utcAt(13, 11, 59, 59, 999999),              // total only
		utcAt(1, 0, 0, 0, 0),                       // total only
	}
	var batch []apitoken.Event
	for i, at := range sEvents {
		batch = append(batch, apitoken.Event{
			TokenID: ids["S"], Endpoint: "/s", Method: "GET", StatusCode: 200 + 100*(i%4),
			ResponseTime: time.Millisecond, Time: at.In(zoneEast),
		})
	}
	batch = append(batch,
		apitoken.Event{TokenID: ids["T"], Endpoint: "/t", Method: "GET", StatusCode: 500, Time: now.Add(-time.Hour)},
		apitoken.Event{TokenID: ids["V"], Endpoint: "/v", Method: "GET", StatusCode: 200, Time: now},
	)
	if err := us.RecordUsage(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteToken(t.Context(), ids["V"]); err != nil {
		t.Fatal(err)
	}
	unknown := ids["V"] + 1000
	var zero apitoken.TokenStats
	tests := []struct {
		name string
		ids  []int64
		now  time.Time
		want map[int64]apitoken.TokenStats
	}{
		{"Now", []int64{ids["S"], ids["T"], ids["U"], ids["V"], unknown, ids["S"]}, now.In(zoneEast), map[int64]apitoken.TokenStats{
			ids["S"]: {Requests24h: 4, Requests7d: 7, TotalRequests: 10},
			ids["T"]: {Requests24h: 1, Requests7d: 1, TotalRequests: 1},
			ids["U"]: zero, ids["V"]: zero, unknown: zero,
		}},
		{"AtHourStart", []int64{ids["S"], ids["T"]}, utcAt(20, 13, 0, 0, 0), map[int64]apitoken.TokenStats{
			ids["S"]: {Requests24h: 3, Requests7d: 6, TotalRequests: 10},
			ids["T"]: {Requests24h: 1, Requests7d: 1, TotalRequests: 1},
		}},
		{"LongAfter", []int64{ids["S"]}, now.Add(30 * 24 * time.Hour), map[int64]apitoken.TokenStats{
			ids["S"]: {TotalRequests: 10},
		}},
		{"LongBefore", []int64{ids["S"]}, time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), map[int64]apitoken.TokenStats{
			ids["S"]: {TotalRequests: 10},
		}},
		{"NoIDs", nil, now, map[int64]apitoken.TokenStats{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := us.TokenStats(t.Context(), tc.ids, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("TokenStats = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func (s suite) testNoUsage(t *testing.T) {
	st, us := s.usageStore(t)
	id := create(t, st, simpleToken("idle"), "no usage")
	q := apitoken.Query{From: hour(0), To: hour(3)}
	got, err := us.TokenUsage(t.Context(), id, q)
	noUsage(t, "TokenUsage of a token without usage", got, err, false)
	got, err = us.TokenUsage(t.Context(), id+1000, q)
	noUsage(t, "TokenUsage of an unknown token", got, err, true)
	o, err := us.Overview(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	checkOverview(t, "Overview without usage", &apitoken.Overview{Overview: apitoken.OverviewTotals{ActiveTokens: 1}}, o)
}

func (s suite) testRecordEmpty(t *testing.T) {
	st, us := s.usageStore(t)
	id := create(t, st, simpleToken("t"), "record empty")
	for _, batch := range [][]apitoken.Event{nil, {}} {
		if err := us.RecordUsage(t.Context(), batch); err != nil {
			t.Errorf("RecordUsage(%#v): %v", batch, err)
		}
	}
	stats, err := us.TokenStats(t.Context(), []int64{id}, t0)
	if err != nil || stats[id] != (apitoken.TokenStats{}) {
		t.Errorf("TokenStats = %+v, %v; want zero counts", stats, err)
	}
}

func (s suite) testNotRetained(t *testing.T) {
	f, batches := s.usageFixture(t)
	q := apitoken.Query{From: hour(0), To: hour(3)}
	wantA, err := f.us.TokenUsage(t.Context(), f.ids["A"], q)
	if err != nil {
		t.Fatal(err)
	}
	wantO, err := f.us.Overview(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	// Reuse the batches as the Manager's usage pipeline does, after scribbling over them.
	for _, b := range batches {
		for i := range b {
			b[i].TokenID = f.ids["C"]
			b[i].Endpoint, b[i].Route, b[i].Method, b[i].UserAgent = "/scribbled", "/scribbled", "PUT", "scribbled"
			b[i].StatusCode, b[i].ResponseTime = 599, time.Hour
			b[i].IP, b[i].Time = netip.MustParseAddr("127.0.0.1"), hour(1)
		}
		clear(b)
	}
	gotA, err := f.us.TokenUsage(t.Context(), f.ids["A"], q)
	if err != nil {
		t.Fatal(err)
	}
	checkUsage(t, "TokenUsage after the batches were reused", wantA, gotA)
	gotO, err := f.us.Overview(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	checkOverview(t, "Overview after the batches were reused", wantO, gotO)
}

func (s suite) testUnknownTokenEvents(t *testing.T) {
	st, us := s.usageStore(t)
	id := create(t, st, simpleToken("known"), "unknown events")
	ev := func(id int64) apitoken.Event {
		return apitoken.Event{TokenID: id, Endpoint: "/x", Method: "GET", StatusCode: 200, ResponseTime: time.Millisecond, Time: u0}
	}
	if err := us.RecordUsage(t.Context(), []apitoken.Event{ev(id), ev(id + 1000), ev(0), ev(id)}); err != nil {
		t.Fatalf("RecordUsage with events of unknown tokens: %v, want those dropped and the rest stored", err)
	}
	stats, err := us.TokenStats(t.Context(), []int64{id}, u0)
	if err != nil || stats[id].TotalRequests != 2 {
		t.Errorf("TokenStats = %+v, %v; want 2 requests", stats, err)
	}
	o, err := us.Overview(t.Context(), apitoken.Query{From: hour(0), To: hour(1)})
	if err != nil || o.Overview.TotalRequests != 2 {
		t.Errorf("Overview = %+v, %v; want 2 requests", o, err)
	}
}

func (s suite) testDeleteRemovesUsage(t *testing.T) {
	f, _ := s.usageFixture(t)
	a, b := f.ids["A"], f.ids["B"]
	if err := f.st.DeleteToken(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	q := apitoken.Query{From: hour(0), To: hour(3)}
	got, err := f.us.TokenUsage(t.Context(), a, q)
	noUsage(t, "TokenUsage of a deleted token", got, err, true)
	stats, err := f.us.TokenStats(t.Context(), []int64{a, b}, hour(3))
	want := map[int64]apitoken.TokenStats{a: {}, b: {Requests24h: 4, Requests7d: 4, TotalRequests: 4}}
	if err != nil || !reflect.DeepEqual(stats, want) {
		t.Errorf("TokenStats = %+v, %v; want %+v", stats, err, want)
	}
	o, err := f.us.Overview(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	checkOverview(t, "Overview after deleting A", &apitoken.Overview{
		Overview:  apitoken.OverviewTotals{ActiveTokens: 3, TotalRequests: 4, AvgResponseTime: 27.5, SuccessfulRequests: 3, FailedRequests: 1},
		TopTokens: []apitoken.TopToken{{ID: b, Name: "Beta", Requests: 4, AvgResponseTime: 27.5}},
		TopEndpoints: []eu{
			{Endpoint: "/products", Method: "GET", Requests: 3, AvgResponseTime: 20},
			{Endpoint: "/orders", Method: "POST", Requests: 1, AvgResponseTime: 50},
		},
	}, o)
	// A late event of the deleted token is dropped, not an error.
	late := apitoken.Event{TokenID: a, Endpoint: "/late", Method: "GET", StatusCode: 200, Time: hour(2)}
	if err := f.us.RecordUsage(t.Context(), []apitoken.Event{late}); err != nil {
		t.Errorf("RecordUsage of a deleted token's event: %v, want it dropped", err)
	}
	got, err = f.us.TokenUsage(t.Context(), a, q)
	noUsage(t, "TokenUsage of a deleted token after a late event", got, err, true)
}
