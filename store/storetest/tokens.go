package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/storeutil"
)

func (s suite) testCreate(t *testing.T) {
	t.Run("IncreasingPositiveIDs", s.testCreateIncreasingPositiveIDs)
	t.Run("IDsNotReusedAfterDelete", s.testCreateIDsNotReusedAfterDelete)
	s.testCreateRoundTrips(t)
	t.Run("DuplicateHash", s.testCreateDuplicateHash)
}

// testCreateRoundTrips checks that every kind of token reads back as created,
// by id, by hash and in the list.
func (s suite) testCreateRoundTrips(t *testing.T) {
	roundTrips := []struct {
		name string
		tok  *apitoken.Token
	}{
		{"AllFields", fullToken("WordPress Plugin - Main Site")},
		{"ZeroValues", &apitoken.Token{Name: "zero", CreatedAt: t0, UpdatedAt: t0}},
		{"EmptyCollections", &apitoken.Token{
			Name: "empty", Active: true, RateLimit: 1, AllowedEndpoints: []string{}, Scopes: []string{},
			Metadata: map[string]string{}, CreatedAt: t0, UpdatedAt: t0,
		}},
		{"ExpiresAtOnly", &apitoken.Token{
			Name: "expiring", Active: true, ExpiresAt: ptr(time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)),
			CreatedAt: t0, UpdatedAt: t0.Add(time.Microsecond),
		}},
		{"FarExpiry", &apitoken.Token{
			Name: "far", Active: true, ExpiresAt: ptr(time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)),
			CreatedAt: t0, UpdatedAt: t0,
		}},
		{"SpecialCharacters", &apitoken.Token{
			Name:             `Überprüfung – 日本語 'single' "double" 50%_off \back`,
			Description:      "line one\nline two\ttab; DROP TABLE api_tokens; --",
			UserID:           "ユーザー/7",
			Start:            "atk_000000",
			Active:           true,
			RateLimit:        1_000_000,
			AllowedEndpoints: []string{"/products*", "/v1/{weird},path", `/quote"d`, "/ünï"},
			Scopes:           []string{"read:products", "write:orders"},
			Metadata:         map[string]string{"ключ": "значение", `"k"`: `{"json": [1, 2]}`, "empty": ""},
			CreatedAt:        t0, UpdatedAt: t0,
		}},
	}
	for _, tc := range roundTrips {
		t.Run("RoundTrip/"+tc.name, func(t *testing.T) {
			st := s.store(t)
			before := tc.tok.Clone()
			id := create(t, st, tc.tok, "round trip "+tc.name)
			want := before.Clone()
			want.ID = id
			if !reflect.DeepEqual(tc.tok, want) {
				t.Errorf("CreateToken changed the caller's token beyond setting ID %d", id)
			}
			checkToken(t, "GetToken", want, get(t, st, id))
			byHash, err := st.GetTokenByHash(t.Context(), NewHash(t, "round trip "+tc.name))
			if err != nil {
				t.Fatalf("GetTokenByHash: %v", err)
			}
			checkToken(t, "GetTokenByHash", want, byHash)
			list, total, err := st.ListTokens(t.Context(), apitoken.ListOptions{})
			if err != nil {
				t.Fatalf("ListTokens: %v", err)
			}
			if total != 1 || len(list) != 1 {
				t.Fatalf("ListTokens: %d tokens, total %d, want 1 and 1", len(list), total)
			}
			checkToken(t, "ListTokens", want, list[0])
		})
	}
}

func (s suite) testCreateIncreasingPositiveIDs(t *testing.T) {
	st := s.store(t)
	var last int64
	for i := range 5 {
		id := create(t, st, simpleToken(fmt.Sprint("token ", i)), fmt.Sprint("ids ", i))
		if id <= last {
			t.Errorf("token %d got id %d after id %d, want increasing ids", i, id, last)
		}
		last = id
	}
}

func (s suite) testCreateIDsNotReusedAfterDelete(t *testing.T) {
	st := s.store(t)
	create(t, st, simpleToken("a"), "reuse a")
	b := create(t, st, simpleToken("b"), "reuse b")
	if err := st.DeleteToken(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if c := create(t, st, simpleToken("c"), "reuse c"); c <= b {
		t.Errorf("token created after deleting id %d got id %d, want a greater one", b, c)
	}
}

func (s suite) testCreateDuplicateHash(t *testing.T) {
	st := s.store(t)
	a := create(t, st, fullToken("first"), "duplicate")
	dup := fullToken("second")
	err := st.CreateToken(t.Context(), dup, NewHash(t, "duplicate"))
	if !errors.Is(err, apitoken.ErrDuplicate) {
		t.Fatalf("CreateToken with a stored hash: %v, want ErrDuplicate", err)
	}
	if dup.ID != 0 {
		t.Errorf("failed CreateToken set ID %d, want it left 0", dup.ID)
	}
	list, total, err := st.ListTokens(t.Context(), apitoken.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || len(list) != 1 || list[0].ID != a {
		t.Errorf("after the duplicate: %d tokens, total %d, want only token %d", len(list), total, a)
	}
	got, err := st.GetTokenByHash(t.Context(), NewHash(t, "duplicate"))
	if err != nil || got.ID != a || got.Name != "first" {
		t.Errorf("GetTokenByHash after the duplicate = %v, %v; want token %d %q", got, err, a, "first")
	}
	// The store still works afterwards.
	if c := create(t, st, simpleToken("third"), "not a duplicate"); c <= a {
		t.Errorf("next id %d, want more than %d", c, a)
	}
}

func (s suite) testGet(t *testing.T) {
	st := s.store(t)
	id := create(t, st, fullToken("present"), "present")
	gone := create(t, st, fullToken("gone"), "gone")
	if err := st.DeleteToken(t.Context(), gone); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func(ctx context.Context) (*apitoken.Token, error)
	}{
		{"GetToken/Unknown", func(ctx context.Context) (*apitoken.Token, error) { return st.GetToken(ctx, gone+1000) }},
		{"GetToken/Zero", func(ctx context.Context) (*apitoken.Token, error) { return st.GetToken(ctx, 0) }},
		{"GetToken/Negative", func(ctx context.Context) (*apitoken.Token, error) { return st.GetToken(ctx, -id) }},
		{"GetToken/Deleted", func(ctx context.Context) (*apitoken.Token, error) { return st.GetToken(ctx, gone) }},
		{"GetTokenByHash/Unknown", func(ctx context.Context) (*apitoken.Token, error) {
			return st.GetTokenByHash(ctx, NewHash(t, "unknown"))
		}},
		{"GetTokenByHash/Zero", func(ctx context.Context) (*apitoken.Token, error) {
			return st.GetTokenByHash(ctx, apitoken.Hash{})
		}},
		{"GetTokenByHash/Deleted", func(ctx context.Context) (*apitoken.Token, error) {
			return st.GetTokenByHash(ctx, NewHash(t, "gone"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tc.call(t.Context())
			if !errors.Is(err, apitoken.ErrNotFound) {
				t.Errorf("got %v, %v; want an error matching ErrNotFound", tok, err)
			}
		})
	}
	t.Run("Found", func(t *testing.T) {
		if got := get(t, st, id); got.Name != "present" {
			t.Errorf("GetToken(%d).Name = %q", id, got.Name)
		}
	})
}

// mutateToken changes every field of tok, and the contents of its slices,
// map and times.
func mutateToken(tok *apitoken.Token) {
	tok.ID = 999_999
	tok.Name = "mutated"
	tok.Active = !tok.Active
	tok.AllowedEndpoints[0] = "/mutated"
	tok.AllowedEndpoints = append(tok.AllowedEndpoints, "/more")
	tok.Scopes[0] = "mutated"
	tok.Metadata["env"] = "mutated"
	tok.Metadata["new"] = "key"
	*tok.ExpiresAt = tok.ExpiresAt.Add(time.Hour)
	*tok.LastUsedAt = tok.LastUsedAt.Add(time.Hour)
	tok.CreatedAt = tok.CreatedAt.Add(time.Hour)
}

func (s suite) testIsolation(t *testing.T) {
	s.testIsolationReturned(t)
	t.Run("CreateArgument", s.testIsolationCreateArgument)
	t.Run("UpdateArgument", s.testIsolationUpdateArgument)
}

// testIsolationReturned checks that a token a Store method returns is the
// caller's own: changing it does not change the stored token.
func (s suite) testIsolationReturned(t *testing.T) {
	tests := []struct {
		name string
		// got returns a token the caller owns, after which the stored token
		// must still equal want.
		got func(t *testing.T, st apitoken.Store, id int64) *apitoken.Token
	}{
		{"GetToken", func(t *testing.T, st apitoken.Store, id int64) *apitoken.Token { return get(t, st, id) }},
		{"GetTokenByHash", func(t *testing.T, st apitoken.Store, id int64) *apitoken.Token {
			tok, err := st.GetTokenByHash(t.Context(), NewHash(t, "isolation"))
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}},
		{"ListTokens", func(t *testing.T, st apitoken.Store, id int64) *apitoken.Token {
			list, _, err := st.ListTokens(t.Context(), apitoken.ListOptions{})
			if err != nil || len(list) != 1 {
				t.Fatalf("ListTokens: %d tokens, %v", len(list), err)
			}
			return list[0]
		}},
		{"UpdateToken", func(t *testing.T, st apitoken.Store, id int64) *apitoken.Token {
			tok, err := st.UpdateToken(t.Context(), id, apitoken.Update{}, t0)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}},
	}
	for _, tc := range tests {
		t.Run("Returned/"+tc.name, func(t *testing.T) {
			st := s.store(t)
			id := create(t, st, fullToken("isolated"), "isolation")
			want := get(t, st, id)
			mutateToken(tc.got(t, st, id))
			checkToken(t, "after changing the returned token", want, get(t, st, id))
		})
	}
}

func (s suite) testIsolationCreateArgument(t *testing.T) {
	st := s.store(t)
	tok := fullToken("isolated")
	id := create(t, st, tok, "isolation")
	want := tok.Clone()
	mutateToken(tok)
	checkToken(t, "after changing the token passed to CreateToken", want, get(t, st, id))
}

func (s suite) testIsolationUpdateArgument(t *testing.T) {
	st := s.store(t)
	id := create(t, st, fullToken("isolated"), "isolation")
	eps, scopes := []string{"/a", "/b"}, []string{"x"}
	meta, exp := map[string]string{"k": "v"}, t0.Add(48*time.Hour)
	u := apitoken.Update{
		AllowedEndpoints: apitoken.Set(eps), Scopes: apitoken.Set(scopes),
		Metadata: apitoken.Set(meta), ExpiresAt: apitoken.Set(&exp),
	}
	want, err := st.UpdateToken(t.Context(), id, u, t0)
	if err != nil {
		t.Fatal(err)
	}
	want = want.Clone()
	eps[0], scopes[0], meta["k"], exp = "/mutated", "mutated", "mutated", exp.Add(time.Hour)
	meta["new"] = "key"
	checkToken(t, "after changing the Update's values", want, get(t, st, id))
}

func (s suite) testList(t *testing.T) {
	st := s.store(t)
	type spec struct {
		name, user string
		active     bool
	}
	// Created in this order: ids increase, so the newest-first order is the
	// reverse.
	specs := []spec{
		{"Alpha key", "u1", true},
		{"beta KEY", "u2", false},
		{"Gamma", "u1", true},
		{"50% off", "", true},
		{"500 things", "u2", true},
		{"a_c", "u1", false},
		{"abc", "", true},
		{`path\to`, "u3", true},
	}
	ids := map[string]int64{}
	for _, sp := range specs {
		tok := simpleToken(sp.name)
		tok.UserID, tok.Active = sp.user, sp.active
		ids[sp.name] = create(t, st, tok, "list "+sp.name)
	}
	all := []string{`path\to`, "abc", "a_c", "500 things", "50% off", "Gamma", "beta KEY", "Alpha key"}
	yes, no := ptr(true), ptr(false)
	tests := []struct {
		name  string
		opts  apitoken.ListOptions
		want  []string
		total int
	}{
		{"All", apitoken.ListOptions{}, all, 8},
		{"Active", apitoken.ListOptions{Active: yes}, []string{`path\to`, "abc", "500 things", "50% off", "Gamma", "Alpha key"}, 6},
		{"Inactive", apitoken.ListOptions{Active: no}, []string{"a_c", "beta KEY"}, 2},
		{"SearchIgnoresCase", apitoken.ListOptions{Search: "key"}, []string{"beta KEY", "Alpha key"}, 2},
		{"SearchUpperCase", apitoken.ListOptions{Search: "ALPHA"}, []string{"Alpha key"}, 1},
		{"SearchSubstring", apitoken.ListOptions{Search: "a"}, []string{"path\\to", "abc", "a_c", "Gamma", "beta KEY", "Alpha key"}, 6},
		{"SearchPercentIsLiteral", apitoken.ListOptions{Search: "50%"}, []string{"50% off"}, 1},
		{"SearchLonePercent", apitoken.ListOptions{Search: "%"}, []string{"50% off"}, 1},
		{"SearchUnderscoreIsLiteral", apitoken.ListOptions{Search: "a_c"}, []string{"a_c"}, 1},
		{"SearchLoneUnderscore", apitoken.ListOptions{Search: "_"}, []string{"a_c"}, 1},
		{"SearchBackslashIsLiteral", apitoken.ListOptions{Search: `h\t`}, []string{`path\to`}, 1},
		{"SearchNoMatch", apitoken.ListOptions{Search: "zzz"}, nil, 0},
		{"UserID", apitoken.ListOptions{UserID: "u1"}, []string{"a_c", "Gamma", "Alpha key"}, 3},
		{"UserIDUnknown", apitoken.ListOptions{UserID: "nobody"}, nil, 0},
		{"UserIDAndActive", apitoken.ListOptions{UserID: "u1", Active: yes}, []string{"Gamma", "Alpha key"}, 2},
		{"AllFilters", apitoken.ListOptions{UserID: "u2", Active: no, Search: "Key"}, []string{"beta KEY"}, 1},
		{"Limit", apitoken.ListOptions{Limit: 2}, all[:2], 8},
		{"LimitOffset", apitoken.ListOptions{Limit: 2, Offset: 2}, all[2:4], 8},
		{"Offset", apitoken.ListOptions{Offset: 7}, all[7:], 8},
		{"OffsetAtEnd", apitoken.ListOptions{Offset: 8}, nil, 8},
		{"OffsetPastEnd", apitoken.ListOptions{Offset: 100, Limit: 5}, nil, 8},
		{"LimitAboveTotal", apitoken.ListOptions{Limit: 100}, all, 8},
		{"FilteredPage", apitoken.ListOptions{Active: yes, Limit: 2, Offset: 4}, []string{"Gamma", "Alpha key"}, 6},
		{"FilteredLastPage", apitoken.ListOptions{Active: yes, Limit: 4, Offset: 4}, []string{"Gamma", "Alpha key"}, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkList(t, st, ids, tc.opts, tc.want, tc.total) })
	}
	t.Run("Empty", func(t *testing.T) {
		list, total, err := s.store(t).ListTokens(t.Context(), apitoken.ListOptions{})
		if err != nil || len(list) != 0 || total != 0 {
			t.Errorf("ListTokens on an empty store = %d tokens, total %d, %v; want none", len(list), total, err)
		}
	})
}

func (s suite) testListStatus(t *testing.T) {
	st := s.store(t)
	// now is t0. Created in this order: the newest-first order is the
	// reverse.
	specs := []struct {
		name    string
		active  bool
		expires *time.Time
	}{
		{"live", true, nil},
		{"soon", true, ptr(t0.Add(3 * 24 * time.Hour))},
		{"later", true, ptr(t0.Add(10 * 24 * time.Hour))},
		{"edge", true, ptr(t0)}, // expires exactly now: expired
		{"past", true, ptr(t0.Add(-time.Hour))},
		{"nearly", true, ptr(t0.Add(time.Microsecond))},
		{"off", false, nil},
		{"off expired", false, ptr(t0.Add(-time.Hour))},
		{"off soon", false, ptr(t0.Add(2 * 24 * time.Hour))},
	}
	ids := map[string]int64{}
	for _, sp := range specs {
		tok := simpleToken(sp.name)
		tok.Active, tok.ExpiresAt = sp.active, sp.expires
		ids[sp.name] = create(t, st, tok, "list status "+sp.name)
	}
	active := []string{"nearly", "later", "soon", "live"}
	week := t0.Add(7 * 24 * time.Hour)
	tests := []struct {
		name  string
		opts  apitoken.ListOptions
		want  []string
		total int
	}{
		{"Active", apitoken.ListOptions{Status: apitoken.StatusActive, Now: t0}, active, 4},
		{"Disabled", apitoken.ListOptions{Status: apitoken.StatusDisabled, Now: t0}, []string{"off soon", "off expired", "off"}, 3},
		{"Expired", apitoken.ListOptions{Status: apitoken.StatusExpired, Now: t0}, []string{"past", "edge"}, 2},
		{"NowInAnotherZone", apitoken.ListOptions{Status: apitoken.StatusExpired, Now: t0.In(zoneWest)}, []string{"past", "edge"}, 2},
		// Now finer than a microsecond: the expiry at t0 is expired a
		// nanosecond after t0, not a nanosecond before.
		{"ExpiredNanosecondBefore", apitoken.ListOptions{Status: apitoken.StatusExpired, Now: t0.Add(-time.Nanosecond)}, []string{"past"}, 1},
		{"ExpiredNanosecondAfter", apitoken.ListOptions{Status: apitoken.StatusExpired, Now: t0.Add(time.Nanosecond)}, []string{"past", "edge"}, 2},
		{"ActiveNanosecondBefore", apitoken.ListOptions{Status: apitoken.StatusActive, Now: t0.Add(-time.Nanosecond)},
			[]string{"nearly", "edge", "later", "soon", "live"}, 5},
		{"ActiveAtNearly", apitoken.ListOptions{Status: apitoken.StatusActive, Now: t0.Add(time.Microsecond)}, []string{"later", "soon", "live"}, 3},
		{"ExpiredLater", apitoken.ListOptions{Status: apitoken.StatusExpired, Now: t0.Add(5 * 24 * time.Hour)},
			[]string{"nearly", "past", "edge", "soon"}, 4},
		// Disabled wins over expired, as in Token.Status.
		{"DisabledLater", apitoken.ListOptions{Status: apitoken.StatusDisabled, Now: t0.Add(365 * 24 * time.Hour)},
			[]string{"off soon", "off expired", "off"}, 3},
		{"ExpiresBefore", apitoken.ListOptions{ExpiresBefore: &week},
			[]string{"off soon", "off expired", "nearly", "past", "edge", "soon"}, 6},
		{"ExpiringWithin7Days", apitoken.ListOptions{Status: apitoken.StatusActive, Now: t0, ExpiresBefore: &week}, []string{"nearly", "soon"}, 2},
		{"ExpiresBeforeIsStrict", apitoken.ListOptions{Status: apitoken.StatusActive, Now: t0, ExpiresBefore: ptr(t0.Add(10 * 24 * time.Hour))},
			[]string{"nearly", "soon"}, 2},
		{"ExpiresBeforeNanosecond", apitoken.ListOptions{Status: apitoken.StatusActive, Now: t0, ExpiresBefore: ptr(t0.Add(10*24*time.Hour + time.Nanosecond))},
			[]string{"nearly", "later", "soon"}, 3},
		{"ExpiresBeforeInAnotherZone", apitoken.ListOptions{ExpiresBefore: ptr(t0.Add(time.Microsecond).In(zoneEast))}, []string{"off expired", "past", "edge"}, 3},
		{"ExpiresBeforeNone", apitoken.ListOptions{ExpiresBefore: ptr(t0.Add(-24 * time.Hour))}, nil, 0},
		{"WithActive", apitoken.ListOptions{Status: apitoken.StatusExpired, Now: t0, Active: ptr(true)}, []string{"past", "edge"}, 2},
		{"ContradictsActive", apitoken.ListOptions{Status: apitoken.StatusDisabled, Now: t0, Active: ptr(true)}, nil, 0},
		{"WithSearch", apitoken.ListOptions{Status: apitoken.StatusDisabled, Now: t0, Search: "SOON"}, []string{"off soon"}, 1},
		{"Page", apitoken.ListOptions{Status: apitoken.StatusActive, Now: t0, Limit: 2, Offset: 1}, active[1:3], 4},
		{"LastPage", apitoken.ListOptions{Status: apitoken.StatusActive, Now: t0, Limit: 3, Offset: 3}, active[3:], 4},
		{"PagePastEnd", apitoken.ListOptions{Status: apitoken.StatusActive, Now: t0, ExpiresBefore: &week, Limit: 5, Offset: 5}, nil, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkList(t, st, ids, tc.opts, tc.want, tc.total) })
	}
	t.Run("InvalidStatus", func(t *testing.T) {
		for _, status := range []string{"bogus", "Active", "all", " active"} {
			list, _, err := st.ListTokens(t.Context(), apitoken.ListOptions{Status: status, Now: t0})
			if !errors.As(err, new(*apitoken.ValidationError)) || len(list) != 0 {
				t.Errorf("ListTokens(Status %q) = %d tokens, %v; want a *apitoken.ValidationError", status, len(list), err)
			}
		}
	})
}

func (s suite) testUpdate(t *testing.T) {
	st := s.store(t)
	bystander := create(t, st, fullToken("bystander"), "bystander")
	bystanderWant := get(t, st, bystander)
	now := t0.Add(2 * time.Hour).In(zoneWest)
	updateEachField(t, st, now)
	t.Run("Repeated", func(t *testing.T) {
		id := create(t, st, fullToken("original"), "update repeated")
		want := get(t, st, id)
		for i, u := range []apitoken.Update{
			{Name: apitoken.Set("one")},
			{RateLimit: apitoken.Set(1)},
			{ExpiresAt: apitoken.Set[*time.Time](nil)},
		} {
			storeutil.Apply(want, u)
			want.UpdatedAt = now.Add(time.Duration(i) * time.Minute)
			got, err := st.UpdateToken(t.Context(), id, u, want.UpdatedAt)
			if err != nil {
				t.Fatal(err)
			}
			checkToken(t, fmt.Sprint("update ", i), want, got)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		gone := create(t, st, simpleToken("gone"), "update gone")
		if err := st.DeleteToken(t.Context(), gone); err != nil {
			t.Fatal(err)
		}
		for _, id := range []int64{gone, gone + 1000, 0} {
			if tok, err := st.UpdateToken(t.Context(), id, apitoken.Update{Name: apitoken.Set("x")}, now); !errors.Is(err, apitoken.ErrNotFound) {
				t.Errorf("UpdateToken(%d) = %v, %v; want ErrNotFound", id, tok, err)
			}
			if tok, err := st.UpdateToken(t.Context(), id, apitoken.Update{}, now); !errors.Is(err, apitoken.ErrNotFound) {
				t.Errorf("empty UpdateToken(%d) = %v, %v; want ErrNotFound", id, tok, err)
			}
		}
	})
	t.Run("OtherTokensUnchanged", func(t *testing.T) {
		checkToken(t, "bystander", bystanderWant, get(t, st, bystander))
	})
}

// updateEachField checks, in st, UpdateToken at now of each field alone, of
// several, and of none, each on a token of its own.
func updateEachField(t *testing.T, st apitoken.Store, now time.Time) {
	newExpiry := t0.Add(30 * 24 * time.Hour).In(zoneEast)
	type tokenFunc = func(*apitoken.Token)
	tests := []struct {
		name string
		u    apitoken.Update
		want tokenFunc // changes the original into the expected token
	}{
		{"Name", apitoken.Update{Name: apitoken.Set("renamed")}, func(w *apitoken.Token) { w.Name = "renamed" }},
		{"DescriptionCleared", apitoken.Update{Description: apitoken.Set("")}, func(w *apitoken.Token) { w.Description = "" }},
		{"Description", apitoken.Update{Description: apitoken.Set("new text")}, func(w *apitoken.Token) { w.Description = "new text" }},
		{"UserID", apitoken.Update{UserID: apitoken.Set("user-7")}, func(w *apitoken.Token) { w.UserID = "user-7" }},
		{"UserIDCleared", apitoken.Update{UserID: apitoken.Set("")}, func(w *apitoken.Token) { w.UserID = "" }},
		{"Disable", apitoken.Update{Active: apitoken.Set(false)}, func(w *apitoken.Token) { w.Active = false }},
		{"EnableWhenActive", apitoken.Update{Active: apitoken.Set(true)}, func(w *apitoken.Token) {}},
		{"RateLimit", apitoken.Update{RateLimit: apitoken.Set(500)}, func(w *apitoken.Token) { w.RateLimit = 500 }},
		{"RateLimitZero", apitoken.Update{RateLimit: apitoken.Set(0)}, func(w *apitoken.Token) { w.RateLimit = 0 }},
		{"AllowedEndpoints", apitoken.Update{AllowedEndpoints: apitoken.Set([]string{"/orders/*"})},
			func(w *apitoken.Token) { w.AllowedEndpoints = []string{"/orders/*"} }},
		{"AllowedEndpointsSetNil", apitoken.Update{AllowedEndpoints: apitoken.Set[[]string](nil)},
			func(w *apitoken.Token) { w.AllowedEndpoints = nil }},
		{"AllowedEndpointsSetEmpty", apitoken.Update{AllowedEndpoints: apitoken.Set([]string{})},
			func(w *apitoken.Token) { w.AllowedEndpoints = nil }},
		{"Scopes", apitoken.Update{Scopes: apitoken.Set([]string{"admin"})}, func(w *apitoken.Token) { w.Scopes = []string{"admin"} }},
		{"ScopesSetNil", apitoken.Update{Scopes: apitoken.Set[[]string](nil)}, func(w *apitoken.Token) { w.Scopes = nil }},
		{"MetadataReplaced", apitoken.Update{Metadata: apitoken.Set(map[string]string{"k": "v"})},
			func(w *apitoken.Token) { w.Metadata = map[string]string{"k": "v"} }},
		{"MetadataSetNil", apitoken.Update{Metadata: apitoken.Set[map[string]string](nil)}, func(w *apitoken.Token) { w.Metadata = nil }},
		{"ExpiresAt", apitoken.Update{ExpiresAt: apitoken.Set(&newExpiry)}, func(w *apitoken.Token) { w.ExpiresAt = &newExpiry }},
		{"ExpiresAtSetNil", apitoken.Update{ExpiresAt: apitoken.Set[*time.Time](nil)}, func(w *apitoken.Token) { w.ExpiresAt = nil }},
		{"SeveralFields", apitoken.Update{Name: apitoken.Set("several"), Active: apitoken.Set(false), RateLimit: apitoken.Set(7)},
			func(w *apitoken.Token) { w.Name, w.Active, w.RateLimit = "several", false, 7 }},
		{"Empty", apitoken.Update{}, func(w *apitoken.Token) {}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprint("update ", i)
			id := create(t, st, fullToken("original"), key)
			want := get(t, st, id)
			tc.want(want)
			want.UpdatedAt = now
			got, err := st.UpdateToken(t.Context(), id, tc.u, now)
			if err != nil {
				t.Fatalf("UpdateToken: %v", err)
			}
			checkToken(t, "UpdateToken result", want, got)
			checkToken(t, "GetToken after UpdateToken", want, get(t, st, id))
			byHash, err := st.GetTokenByHash(t.Context(), NewHash(t, key))
			if err != nil {
				t.Fatalf("GetTokenByHash after UpdateToken: %v", err)
			}
			checkToken(t, "GetTokenByHash after UpdateToken", want, byHash)
		})
	}
}

func (s suite) testDelete(t *testing.T) {
	st := s.store(t)
	keep := create(t, st, fullToken("keep"), "delete keep")
	keepWant := get(t, st, keep)
	id := create(t, st, fullToken("delete me"), "delete me")
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Delete", func(t *testing.T) {
			if err := st.DeleteToken(t.Context(), id); err != nil {
				t.Fatalf("DeleteToken: %v", err)
			}
		}},
		{"GetTokenNotFound", func(t *testing.T) {
			if _, err := st.GetToken(t.Context(), id); !errors.Is(err, apitoken.ErrNotFound) {
				t.Errorf("GetToken after delete: %v, want ErrNotFound", err)
			}
		}},
		{"GetTokenByHashNotFound", func(t *testing.T) {
			if _, err := st.GetTokenByHash(t.Context(), NewHash(t, "delete me")); !errors.Is(err, apitoken.ErrNotFound) {
				t.Errorf("GetTokenByHash after delete: %v, want ErrNotFound", err)
			}
		}},
		{"NotListed", func(t *testing.T) {
			list, total, err := st.ListTokens(t.Context(), apitoken.ListOptions{})
			if err != nil || total != 1 || len(list) != 1 || list[0].ID != keep {
				t.Errorf("ListTokens after delete: %d tokens, total %d, %v; want only %d", len(list), total, err, keep)
			}
		}},
		{"SecondDeleteNotFound", func(t *testing.T) {
			if err := st.DeleteToken(t.Context(), id); !errors.Is(err, apitoken.ErrNotFound) {
				t.Errorf("second DeleteToken: %v, want ErrNotFound", err)
			}
		}},
		{"UnknownNotFound", func(t *testing.T) {
			for _, unknown := range []int64{id + 1000, 0, -1} {
				if err := st.DeleteToken(t.Context(), unknown); !errors.Is(err, apitoken.ErrNotFound) {
					t.Errorf("DeleteToken(%d): %v, want ErrNotFound", unknown, err)
				}
			}
		}},
		{"OtherTokensUnchanged", func(t *testing.T) {
			checkToken(t, "kept token", keepWant, get(t, st, keep))
		}},
		{"HashFreed", func(t *testing.T) {
			again := create(t, st, simpleToken("again"), "delete me")
			if again <= id {
				t.Errorf("re-created token got id %d, want more than %d", again, id)
			}
		}},
	}
	for _, step := range steps {
		t.Run(step.name, step.run)
	}
}

func (s suite) testTouch(t *testing.T) {
	st := s.store(t)
	never := simpleToken("never used")
	a := create(t, st, never, "touch a")
	used := simpleToken("used")
	used.LastUsedAt = ptr(t0)
	b := create(t, st, used, "touch b")
	wantA, wantB := get(t, st, a), get(t, st, b)
	t1 := t0.Add(time.Minute).In(zoneEast)
	steps := []struct {
		name         string
		used         map[int64]time.Time
		wantA, wantB *time.Time
	}{
		{"Nil", nil, nil, ptr(t0)},
		{"Empty", map[int64]time.Time{}, nil, ptr(t0)},
		{"FirstUse", map[int64]time.Time{a: t1}, &t1, ptr(t0)},
		{"UnknownIDsIgnored", map[int64]time.Time{b + 1000: t1, -1: t1, 0: t1}, &t1, ptr(t0)},
		{"OlderIgnored", map[int64]time.Time{a: t1.Add(-time.Microsecond), b: t0.Add(-time.Hour)}, &t1, ptr(t0)},
		{"EqualKept", map[int64]time.Time{a: t1}, &t1, ptr(t0)},
		{"MovesForward", map[int64]time.Time{a: t1.Add(time.Microsecond), b: t1, b + 1000: t1}, ptr(t1.Add(time.Microsecond)), &t1},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if err := st.TouchTokens(t.Context(), step.used); err != nil {
				t.Fatalf("TouchTokens: %v", err)
			}
			wantA.LastUsedAt, wantB.LastUsedAt = step.wantA, step.wantB
			checkToken(t, "token a", wantA, get(t, st, a))
			checkToken(t, "token b", wantB, get(t, st, b))
		})
	}
}

func (s suite) testCancelled(t *testing.T) {
	st := s.store(t)
	id := create(t, st, fullToken("present"), "cancelled")
	want := get(t, st, id)
	us, isUsage := st.(apitoken.UsageStore)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	q := apitoken.Query{From: t0.Add(-time.Hour), To: t0}
	type call struct {
		name  string
		usage bool
		call  func() error
	}
	calls := []call{
		{"CreateToken", false, func() error { return st.CreateToken(ctx, simpleToken("new"), NewHash(t, "cancelled new")) }},
		{"GetToken", false, func() error { _, err := st.GetToken(ctx, id); return err }},
		{"GetTokenByHash", false, func() error { _, err := st.GetTokenByHash(ctx, NewHash(t, "cancelled")); return err }},
		{"ListTokens", false, func() error { _, _, err := st.ListTokens(ctx, apitoken.ListOptions{}); return err }},
		{"UpdateToken", false, func() error {
			_, err := st.UpdateToken(ctx, id, apitoken.Update{Name: apitoken.Set("changed")}, t0.Add(time.Hour))
			return err
		}},
		{"RotateToken", false, func() error {
			_, err := st.RotateToken(ctx, id, NewHash(t, "cancelled rotated"), "atk_rotate", t0, t0)
			return err
		}},
		{"DeleteToken", false, func() error { return st.DeleteToken(ctx, id) }},
		{"TouchTokens", false, func() error { return st.TouchTokens(ctx, map[int64]time.Time{id: t0.Add(time.Hour)}) }},
		{"RecordUsage", true, func() error {
			return us.RecordUsage(ctx, []apitoken.Event{{TokenID: id, Endpoint: "/x", Method: "GET", StatusCode: 200, Time: t0}})
		}},
		{"TokenUsage", true, func() error { _, err := us.TokenUsage(ctx, id, q); return err }},
		{"Overview", true, func() error { _, err := us.Overview(ctx, q); return err }},
		{"TokenStats", true, func() error { _, err := us.TokenStats(ctx, []int64{id}, t0); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if c.usage && !isUsage {
				t.Skipf("%T does not implement apitoken.UsageStore", st)
			}
			if err := c.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: %v, want context.Canceled", c.name, err)
			}
		})
	}
	t.Run("NothingChanged", func(t *testing.T) {
		checkToken(t, "token after cancelled calls", want, get(t, st, id))
		if _, total, err := st.ListTokens(t.Context(), apitoken.ListOptions{}); err != nil || total != 1 {
			t.Errorf("ListTokens after cancelled calls: total %d, %v; want 1", total, err)
		}
		if isUsage {
			stats, err := us.TokenStats(t.Context(), []int64{id}, t0)
			if err != nil || stats[id].TotalRequests != 0 {
				t.Errorf("TokenStats after a cancelled RecordUsage: %+v, %v; want no requests", stats, err)
			}
		}
	})
}

func (s suite) testConcurrentCreate(t *testing.T) {
	const goroutines, each = 16, 25
	st := s.store(t)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ids  = map[int64]string{}
		errs []error
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("concurrent %d/%d", g, i)
				tok := simpleToken(key)
				err := st.CreateToken(t.Context(), tok, NewHash(t, key))
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if prev, dup := ids[tok.ID]; dup {
					errs = append(errs, fmt.Errorf("id %d given to %q and %q", tok.ID, prev, key))
				} else {
					ids[tok.ID] = key
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(ids) != goroutines*each {
		t.Fatalf("%d distinct ids, want %d", len(ids), goroutines*each)
	}
	for id, key := range ids {
		if id <= 0 {
			t.Errorf("id %d is not positive", id)
		}
		tok, err := st.GetTokenByHash(t.Context(), NewHash(t, key))
		if err != nil || tok.ID != id || tok.Name != key {
			t.Errorf("GetTokenByHash(%q) = %v, %v; want id %d", key, tok, err, id)
		}
	}
	list, total, err := st.ListTokens(t.Context(), apitoken.ListOptions{})
	if err != nil || total != goroutines*each || len(list) != total {
		t.Fatalf("ListTokens: %d tokens, total %d, %v; want %d", len(list), total, err, goroutines*each)
	}
	for i := 1; i < len(list); i++ {
		if list[i].ID >= list[i-1].ID {
			t.Fatalf("ListTokens not newest first: id %d after id %d", list[i].ID, list[i-1].ID)
		}
	}
}

// checkList checks that ListTokens(opts) returns the tokens named want, in
// that order, with their ids, and total.
func checkList(t *testing.T, st apitoken.Store, ids map[string]int64, opts apitoken.ListOptions, want []string, wantTotal int) {
	t.Helper()
	list, total, err := st.ListTokens(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tok := range list {
		names = append(names, tok.Name)
		if tok.ID != ids[tok.Name] {
			t.Errorf("token %q has id %d, want %d", tok.Name, tok.ID, ids[tok.Name])
		}
	}
	if !equalStrings(names, want) || total != wantTotal {
		t.Errorf("ListTokens(%+v) = %q, total %d; want %q, total %d", opts, names, total, want, wantTotal)
	}
}
