// Package storetest is the conformance suite every apitoken.Store runs:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) apitoken.Store { return memory.New() })
//	}
//
// It uses only the apitoken.Store and apitoken.UsageStore interfaces, a fixed
// clock, and times and response times of microsecond precision (what
// PostgreSQL keeps), so the same suite holds every store to the same
// contract. Besides the interface doc comments it checks these choices:
//
//   - CreateToken sets only t.ID, and leaves it alone on ErrDuplicate; a
//     deleted token's hash may be stored again. UpdateToken sets UpdatedAt
//     even for an empty update; TouchTokens changes only LastUsedAt.
//   - Nil and empty AllowedEndpoints, Scopes and Metadata are equal; all
//     returned times are in UTC (Location() == time.UTC).
//   - ListOptions.Search is a literal, case-insensitive substring: '%', '_'
//     and '\' match only themselves.
//   - ListOptions.Status is Token.Status at ListOptions.Now, judged exactly
//     (an expiry at Now is expired, Now may carry nanoseconds);
//     ExpiresBefore is strict and leaves out tokens that never expire;
//     both filter before paging and total.
//   - RecordUsage drops events of tokens that do not exist and stores the
//     rest of the batch.
//   - Reports never hold nil slices. TokenUsage of an unknown or deleted
//     token is empty or ErrNotFound.
//   - The analytics rules written out in the package documentation of
//     store/memory: hour buckets in UTC that overlap [From, To); recent
//     requests exactly in [From, To), newest first, ties latest recorded
//     first; endpoint = route, else path; sort orders and tie-breaks;
//     ActiveTokens not expired at To; hour-granular 24 h / 7 d windows;
//     averages through storeutil.AvgMillis. Query bounds may carry
//     nanoseconds (the Manager makes To = now + 1ns): a store that
//     keeps microseconds must round them so the comparisons stay exact.
package storetest

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// Run runs the suite. newStore is called once per subtest and must return an
// empty store; ids need not start at 1. Subtests never run in parallel, so
// newStore may reset a shared database. When the store also implements
// apitoken.UsageStore the "Usage" subtests run too, and when it implements
// apitoken.AuditStore the "Audit" subtests; otherwise they are skipped.
func Run(t *testing.T, newStore func(t *testing.T) apitoken.Store) {
	s := suite{newStore: newStore}
	tests := []struct {
		name string
		run  func(*testing.T)
	}{
		{"Create", s.testCreate},
		{"Get", s.testGet},
		{"Isolation", s.testIsolation},
		{"List", s.testList},
		{"ListStatus", s.testListStatus},
		{"Update", s.testUpdate},
		{"Delete", s.testDelete},
		{"TouchTokens", s.testTouch},
		{"CancelledContext", s.testCancelled},
		{"ConcurrentCreate", s.testConcurrentCreate},
		{"Rotate", s.testRotate},
		{"Audit", s.testAudit},
		{"Usage", s.testUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

// NewHash returns the SHA-256 of s as a token hash.
func NewHash(t testing.TB, s string) apitoken.Hash {
	t.Helper()
	return apitoken.Hash(sha256.Sum256([]byte(s)))
}

type suite struct {
	newStore func(t *testing.T) apitoken.Store
}

// store returns a new empty store.
func (s suite) store(t *testing.T) apitoken.Store {
	t.Helper()
	st := s.newStore(t)
	if st == nil {
		t.Fatal("newStore returned nil")
	}
	return st
}

// usageStore returns a new empty store and its UsageStore side, or skips.
func (s suite) usageStore(t *testing.T) (apitoken.Store, apitoken.UsageStore) {
	t.Helper()
	st := s.store(t)
	us, ok := st.(apitoken.UsageStore)
	if !ok {
		t.Skipf("%T does not implement apitoken.UsageStore", st)
	}
	return st, us
}

// Fixed times, all of microsecond precision.
var (
	// t0 is the suite's "now" for tokens.
	t0 = time.Date(2025, 1, 15, 10, 30, 0, 123456000, time.UTC)
	// Zones with non-hour offsets: a store must not depend on the input's
	// location, and must bucket hours in UTC.
	zoneEast = time.FixedZone("UTC+05:30", 5*3600+30*60)
	zoneWest = time.FixedZone("UTC-08:00", -8*3600)
)

func ptr[T any](v T) *T { return &v }

// fullToken returns a token with every field set, times in non-UTC zones.
func fullToken(name string) *apitoken.Token {
	return &apitoken.Token{
		Name:             name,
		Description:      "Token for the main WordPress website",
		UserID:           "user-42",
		Start:            "atk_3xK9aQ",
		Active:           true,
		RateLimit:        200,
		AllowedEndpoints: []string{"/products*", "/stores/**"},
		Scopes:           []string{"read", "write"},
		Metadata:         map[string]string{"env": "prod", "team": `a "quoted" value`},
		ExpiresAt:        ptr(t0.Add(365 * 24 * time.Hour).In(zoneEast)),
		LastUsedAt:       ptr(t0.Add(-time.Hour).In(zoneWest)),
		CreatedAt:        t0.In(zoneEast),
		UpdatedAt:        t0.In(zoneWest),
	}
}

// simpleToken returns an active token with only a name and times.
func simpleToken(name string) *apitoken.Token {
	return &apitoken.Token{Name: name, Active: true, RateLimit: 100, CreatedAt: t0, UpdatedAt: t0}
}

// create stores tok under the hash of key and returns its id.
func create(t *testing.T, st apitoken.Store, tok *apitoken.Token, key string) int64 {
	t.Helper()
	if err := st.CreateToken(t.Context(), tok, NewHash(t, key)); err != nil {
		t.Fatalf("CreateToken(%q): %v", tok.Name, err)
	}
	if tok.ID <= 0 {
		t.Fatalf("CreateToken(%q) set ID %d, want a positive id", tok.Name, tok.ID)
	}
	return tok.ID
}

func get(t *testing.T, st apitoken.Store, id int64) *apitoken.Token {
	t.Helper()
	tok, err := st.GetToken(t.Context(), id)
	if err != nil {
		t.Fatalf("GetToken(%d): %v", id, err)
	}
	return tok
}

// checkToken reports every field of got that differs from want. Nil and
// empty lists and maps are equal; times are compared with Equal and must be
// in UTC.
func checkToken(t *testing.T, what string, want, got *apitoken.Token) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got a nil token", what)
		return
	}
	if d := tokenDiff(want, got); len(d) > 0 {
		t.Errorf("%s: token %d differs:\n\t%s", what, want.ID, strings.Join(d, "\n\t"))
	}
}

func tokenDiff(want, got *apitoken.Token) []string {
	var d []string
	diff := func(field string, w, g any) {
		d = append(d, fmt.Sprintf("%s: got %#v, want %#v", field, g, w))
	}
	if got.ID != want.ID {
		diff("ID", want.ID, got.ID)
	}
	if got.Name != want.Name {
		diff("Name", want.Name, got.Name)
	}
	if got.Description != want.Description {
		diff("Description", want.Description, got.Description)
	}
	if got.UserID != want.UserID {
		diff("UserID", want.UserID, got.UserID)
	}
	if got.Start != want.Start {
		diff("Start", want.Start, got.Start)
	}
	if got.Active != want.Active {
		diff("Active", want.Active, got.Active)
	}
	if got.RateLimit != want.RateLimit {
		diff("RateLimit", want.RateLimit, got.RateLimit)
	}
	if !equalStrings(got.AllowedEndpoints, want.AllowedEndpoints) {
		diff("AllowedEndpoints", want.AllowedEndpoints, got.AllowedEndpoints)
	}
	if !equalStrings(got.Scopes, want.Scopes) {
		diff("Scopes", want.Scopes, got.Scopes)
	}
	if !(len(got.Metadata) == 0 && len(want.Metadata) == 0) && !maps.Equal(got.Metadata, want.Metadata) {
		diff("Metadata", want.Metadata, got.Metadata)
	}
	d = append(d, timePtrDiff("ExpiresAt", want.ExpiresAt, got.ExpiresAt)...)
	d = append(d, timePtrDiff("LastUsedAt", want.LastUsedAt, got.LastUsedAt)...)
	d = append(d, timeDiff("CreatedAt", want.CreatedAt, got.CreatedAt)...)
	d = append(d, timeDiff("UpdatedAt", want.UpdatedAt, got.UpdatedAt)...)
	d = append(d, timePtrDiff("PreviousExpiresAt", want.PreviousExpiresAt, got.PreviousExpiresAt)...)
	return d
}

func equalStrings(a, b []string) bool {
	return len(a) == 0 && len(b) == 0 || slices.Equal(a, b)
}

func timeDiff(field string, want, got time.Time) []string {
	var d []string
	if !got.Equal(want) {
		d = append(d, fmt.Sprintf("%s: got %s, want %s", field, got.Format(time.RFC3339Nano), want.UTC().Format(time.RFC3339Nano)))
	}
	if got.Location() != time.UTC {
		d = append(d, fmt.Sprintf("%s: location %q, want UTC", field, got.Location()))
	}
	return d
}

func timePtrDiff(field string, want, got *time.Time) []string {
	switch {
	case want == nil && got == nil:
		return nil
	case want == nil:
		return []string{fmt.Sprintf("%s: got %s, want nil", field, got.Format(time.RFC3339Nano))}
	case got == nil:
		return []string{fmt.Sprintf("%s: got nil, want %s", field, want.UTC().Format(time.RFC3339Nano))}
	}
	return timeDiff(field, *want, *got)
}

// listDiff compares two report lists element by element.
func listDiff[T any](field string, want, got []T) []string {
	var d []string
	for i := range max(len(want), len(got)) {
		switch {
		case i >= len(got):
			d = append(d, fmt.Sprintf("%s[%d]: missing, want %+v", field, i, want[i]))
		case i >= len(want):
			d = append(d, fmt.Sprintf("%s[%d]: unexpected %+v", field, i, got[i]))
		case !reflect.DeepEqual(want[i], got[i]):
			d = append(d, fmt.Sprintf("%s[%d]:\n\t\tgot  %+v\n\t\twant %+v", field, i, got[i], want[i]))
		}
	}
	return d
}

// utc checks that *tm is in UTC and gives it the canonical UTC form, so
// reflect.DeepEqual compares instants.
func utc(field string, tm *time.Time) []string {
	var d []string
	if tm.Location() != time.UTC {
		d = append(d, fmt.Sprintf("%s: location %q, want UTC", field, tm.Location()))
	}
	*tm = tm.UTC()
	return d
}
