package storeutil_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/storeutil"
)

func TestCountingRules(t *testing.T) {
	for _, tt := range []struct {
		status            int
		successful, is429 bool
	}{
		{200, true, false}, {304, true, false}, {399, true, false},
		{400, false, false}, {429, false, true}, {500, false, false},
	} {
		if got := storeutil.Successful(tt.status); got != tt.successful {
			t.Errorf("Successful(%d) = %t", tt.status, got)
		}
		if got := storeutil.RateLimited(tt.status); got != tt.is429 {
			t.Errorf("RateLimited(%d) = %t", tt.status, got)
		}
	}
}

func TestAvgMillis(t *testing.T) {
	for _, tt := range []struct {
		name string
		sum  time.Duration
		n    int64
		want float64
	}{
		{"none", time.Second, 0, 0},
		{"one", 1234567 * time.Nanosecond, 1, 1.23},
		{"rounds half up", 2*time.Millisecond + 5*time.Microsecond, 1, 2.01},
		{"average", 3 * time.Millisecond, 2, 1.5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := storeutil.AvgMillis(tt.sum, tt.n); got != tt.want {
				t.Fatalf("AvgMillis(%v, %d) = %v, want %v", tt.sum, tt.n, got, tt.want)
			}
		})
	}
}

func TestQueryLimitAndStatusTime(t *testing.T) {
	if got := storeutil.QueryLimit(apitoken.Query{}); got != storeutil.DefaultQueryLimit {
		t.Errorf("QueryLimit of 0 = %d", got)
	}
	if got := storeutil.QueryLimit(apitoken.Query{Limit: 7}); got != 7 {
		t.Errorf("QueryLimit of 7 = %d", got)
	}
	zone := time.FixedZone("x", 3600)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, zone)
	clock := func() time.Time { return now }
	if got := storeutil.StatusTime(apitoken.ListOptions{}, clock); !got.Equal(now) || got.Location() != time.UTC {
		t.Errorf("StatusTime without Now = %v, want the clock's time in UTC", got)
	}
	at := now.Add(-time.Hour)
	if got := storeutil.StatusTime(apitoken.ListOptions{Now: at}, clock); !got.Equal(at) {
		t.Errorf("StatusTime with Now = %v, want %v", got, at)
	}
}

func TestPreviousExpiry(t *testing.T) {
	early, late := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name              string
		expires, previous *time.Time
		want              *time.Time
	}{
		{"neither", nil, nil, nil},
		{"only the token's", &early, nil, &early},
		{"only the previous", nil, &late, &late},
		{"the token's is earlier", &early, &late, &early},
		{"the previous is earlier", &late, &early, &early},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := storeutil.PreviousExpiry(&apitoken.Token{ExpiresAt: tt.expires, PreviousExpiresAt: tt.previous})
			if (got == nil) != (tt.want == nil) || got != nil && !got.Equal(*tt.want) {
				t.Fatalf("PreviousExpiry = %v, want %v", got, tt.want)
			}
			if got != nil && (got == tt.expires || got == tt.previous) {
				t.Fatal("PreviousExpiry returned the token's own pointer")
			}
		})
	}
}

// Apply changes exactly the fields the update sets, and the token shares
// no slice or map with the update.
func TestApply(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	base := apitoken.Token{ID: 1, Name: "a", Description: "d", UserID: "u", Active: true, RateLimit: 5,
		AllowedEndpoints: []string{"/a*"}, Scopes: []string{"read"}, Metadata: map[string]string{"k": "v"}, ExpiresAt: &exp}
	clone := func() apitoken.Token { c := *base.Clone(); return c }
	endpoints, metadata := []string{"/b*"}, map[string]string{"x": "y"}
	tok := clone()
	storeutil.Apply(&tok, apitoken.Update{
		Name: apitoken.Set("b"), Active: apitoken.Set(false), AllowedEndpoints: apitoken.Set(endpoints),
		Metadata: apitoken.Set(metadata), ExpiresAt: apitoken.Set[*time.Time](nil),
	})
	want := clone()
	want.Name, want.Active, want.AllowedEndpoints, want.Metadata, want.ExpiresAt = "b", false, []string{"/b*"}, map[string]string{"x": "y"}, nil
	if !reflect.DeepEqual(tok, want) {
		t.Fatalf("Apply gave\n%+v\nwant\n%+v", tok, want)
	}
	endpoints[0], metadata["x"] = "/changed", "changed"
	if tok.AllowedEndpoints[0] != "/b*" || tok.Metadata["x"] != "y" {
		t.Fatal("the token shares the update's slice or map")
	}
	untouched := clone()
	storeutil.Apply(&untouched, apitoken.Update{})
	if !reflect.DeepEqual(untouched, clone()) {
		t.Fatal("the zero Update changed the token")
	}
}

func TestCloneAuditEntry(t *testing.T) {
	e := &apitoken.AuditEntry{ID: 1, Action: apitoken.ActionUpdate,
		Changes: []apitoken.Change{{Field: "name", From: json.RawMessage(`"a"`), To: json.RawMessage(`"b"`)}}}
	c := storeutil.CloneAuditEntry(e)
	c.Changes[0].To[1] = 'x'
	c.Changes[0].Field = "description"
	if string(e.Changes[0].To) != `"b"` || e.Changes[0].Field != "name" {
		t.Fatal("the clone shares the entry's changes")
	}
	if storeutil.CloneAuditEntry(nil) != nil {
		t.Fatal("CloneAuditEntry(nil) is not nil")
	}
}

func TestParseHashHex(t *testing.T) {
	var h apitoken.Hash
	for i := range h {
		h[i] = byte(i * 7)
	}
	got, err := storeutil.ParseHashHex(h.Hex())
	if err != nil || got != h {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range []string{"", "ab", strings.Repeat("g", 64), strings.Repeat("a", 63), strings.Repeat("a", 66)} {
		if _, err := storeutil.ParseHashHex(bad); err == nil {
			t.Errorf("ParseHashHex(%q) accepted", bad)
		}
	}
}

// FuzzParseHashHex: every input is parsed or refused without a panic, and
// what parses is the digest whose Hex is the input, lower-cased.
func FuzzParseHashHex(f *testing.F) {
	f.Add(strings.Repeat("ab", 32))
	f.Add(strings.Repeat("AB", 32))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := storeutil.ParseHashHex(s)
		if err != nil {
			return
		}
		if h.Hex() != strings.ToLower(s) {
			t.Fatalf("ParseHashHex(%q).Hex() = %q", s, h.Hex())
		}
	})
}
