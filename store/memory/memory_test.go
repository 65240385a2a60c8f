package memory_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/memory"
	"github.com/apitoken/apitoken/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) apitoken.Store { return memory.New() })
}

func TestConformanceSmallEventCap(t *testing.T) {
	// The suite never keeps more than 100 raw events of one store.
	storetest.Run(t, func(t *testing.T) apitoken.Store { return memory.New(memory.WithMaxEvents(100)) })
}

// TestConformanceStoreOnly runs the suite on a store that hides its
// UsageStore side: the usage subtests must skip, the rest pass.
func TestConformanceStoreOnly(t *testing.T) {
	storetest.Run(t, func(t *testing.T) apitoken.Store { return struct{ apitoken.Store }{memory.New()} })
}

var base = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

func newToken(name string) *apitoken.Token {
	return &apitoken.Token{Name: name, Active: true, RateLimit: 10, CreatedAt: base, UpdatedAt: base}
}

func mustCreate(t testing.TB, s *memory.Store, name string) int64 {
	t.Helper()
	tok := newToken(name)
	if err := s.CreateToken(context.Background(), tok, storetest.NewHash(t, name)); err != nil {
		t.Fatal(err)
	}
	return tok.ID
}

func TestIDsStartAtOneAndAreNeverReused(t *testing.T) {
	s := memory.New()
	steps := []struct {
		name   string
		delete bool
		want   int64
	}{
		{"first", false, 1},
		{"second", false, 2},
		{"delete second", true, 2},
		{"third", false, 3},
		{"delete third", true, 3},
		{"fourth", false, 4},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.delete {
				if err := s.DeleteToken(t.Context(), st.want); err != nil {
					t.Fatal(err)
				}
				return
			}
			if id := mustCreate(t, s, st.name); id != st.want {
				t.Errorf("id %d, want %d", id, st.want)
			}
		})
	}
}

func TestNotFoundErrorNamesTheID(t *testing.T) {
	_, err := memory.New().GetToken(context.Background(), 42)
	if err == nil || err.Error() != "apitoken: not found: token 42" {
		t.Errorf("GetToken(42) error = %v", err)
	}
}

// events returns n events of token id, one a minute from start, all GET.
func events(id int64, start time.Time, n int, endpoint string) []apitoken.Event {
	evs := make([]apitoken.Event, n)
	for i := range evs {
		evs[i] = apitoken.Event{
			TokenID: id, Endpoint: fmt.Sprintf("%s/%d", endpoint, i), Route: endpoint + "/{n}", Method: "GET",
			StatusCode: 200 + 300*(i%2), ResponseTime: time.Duration(i+1) * time.Millisecond,
			IP: netip.MustParseAddr("10.1.2.3"), UserAgent: "agent", Time: start.Add(time.Duration(i) * time.Minute),
		}
	}
	return evs
}

func TestMaxEventsTrimming(t *testing.T) {
	ctx := context.Background()
	s := memory.New(memory.WithMaxEvents(5))
	a, b := mustCreate(t, s, "a"), mustCreate(t, s, "b")
	// 90 events of a over three hours, then 3 of b: the 5 kept raw events
	// are a's last 2 and b's 3.
	if err := s.RecordUsage(ctx, events(a, base, 90, "/a")); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordUsage(ctx, events(b, base.Add(3*time.Hour), 3, "/b")); err != nil {
		t.Fatal(err)
	}
	q := apitoken.Query{From: base, To: base.Add(4 * time.Hour)}
	ua, err := s.TokenUsage(ctx, a, q)
	if err != nil {
		t.Fatal(err)
	}
	wantHours := []apitoken.HourlyUsage{
		// Response times 1..60 ms, then 61..90 ms; odd events fail.
		{Hour: base, Requests: 60, AvgResponseTime: 30.5, SuccessfulRequests: 30, FailedRequests: 30},
		{Hour: base.Add(time.Hour), Requests: 30, AvgResponseTime: 75.5, SuccessfulRequests: 15, FailedRequests: 15},
	}
	if fmt.Sprint(ua.HourlyUsage) != fmt.Sprint(wantHours) {
		t.Errorf("hourly usage after trimming:\n got %+v\nwant %+v", ua.HourlyUsage, wantHours)
	}
	if len(ua.EndpointUsage) != 1 || ua.EndpointUsage[0].Requests != 90 || ua.EndpointUsage[0].Endpoint != "/a/{n}" {
		t.Errorf("endpoint usage after trimming: %+v, want /a/{n} with 90 requests", ua.EndpointUsage)
	}
	if got := paths(ua.RecentRequests); got != "[/a/89 /a/88]" {
		t.Errorf("a's recent requests after trimming: %s, want [/a/89 /a/88]", got)
	}
	ub, err := s.TokenUsage(ctx, b, q)
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(ub.RecentRequests); got != "[/b/2 /b/1 /b/0]" {
		t.Errorf("b's recent requests: %s", got)
	}
	stats, err := s.TokenStats(ctx, []int64{a, b}, base.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]apitoken.TokenStats{
		a: {Requests24h: 90, Requests7d: 90, TotalRequests: 90},
		b: {Requests24h: 3, Requests7d: 3, TotalRequests: 3},
	}
	if fmt.Sprint(stats) != fmt.Sprint(want) {
		t.Errorf("TokenStats after trimming = %v, want %v", stats, want)
	}
	o, err := s.Overview(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if o.Overview.TotalRequests != 93 || len(o.TopTokens) != 2 || o.TopTokens[0].Requests != 90 {
		t.Errorf("Overview after trimming = %+v", o)
	}

	// Deleting b frees its raw events: a's next ones are kept again.
	if err := s.DeleteToken(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordUsage(ctx, events(a, base.Add(2*time.Hour), 3, "/a2")); err != nil {
		t.Fatal(err)
	}
	ua, err = s.TokenUsage(ctx, a, q)
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(ua.RecentRequests); got != "[/a2/2 /a2/1 /a2/0 /a/89 /a/88]" {
		t.Errorf("a's recent requests after deleting b: %s", got)
	}
}

func TestMaxEventsZero(t *testing.T) {
	ctx := context.Background()
	s := memory.New(memory.WithMaxEvents(0))
	a := mustCreate(t, s, "a")
	if err := s.RecordUsage(ctx, events(a, base, 10, "/a")); err != nil {
		t.Fatal(err)
	}
	u, err := s.TokenUsage(ctx, a, apitoken.Query{From: base, To: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(u.RecentRequests) != 0 || u.RecentRequests == nil || len(u.HourlyUsage) != 1 || u.HourlyUsage[0].Requests != 10 {
		t.Errorf("TokenUsage with no raw events kept = %+v", u)
	}
}

func TestInvalidOptionsPanicNamingThem(t *testing.T) {
	for name, opt := range map[string]memory.Option{"WithMaxEvents": memory.WithMaxEvents(-1), "WithMaxAudit": memory.WithMaxAudit(-1)} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if s, _ := recover().(string); !strings.Contains(s, name) {
					t.Fatalf("panic %q, want one naming %s", s, name)
				}
			}()
			memory.New(opt)
		})
	}
}

func TestNilOptionsAreSkipped(t *testing.T) {
	ctx := context.Background()
	s := memory.New(nil)
	a := mustCreate(t, s, "a")
	if err := s.RecordUsage(ctx, events(a, base, 60, "/a")); err != nil {
		t.Fatal(err)
	}
	u, err := s.TokenUsage(ctx, a, apitoken.Query{From: base, To: base.Add(time.Hour), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(u.RecentRequests) != 60 {
		t.Errorf("%d recent requests, want all 60", len(u.RecentRequests))
	}
}

func paths(rs []apitoken.RecentRequest) string {
	p := make([]string, len(rs))
	for i, r := range rs {
		p[i] = r.Endpoint
	}
	return fmt.Sprint(p)
}

func TestDeepCopies(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	exp := base.Add(time.Hour)
	in := &apitoken.Token{
		Name: "orig", Active: true, AllowedEndpoints: []string{"/a"}, Scopes: []string{"s"},
		Metadata: map[string]string{"k": "v"}, ExpiresAt: &[]time.Time{exp}[0], CreatedAt: base, UpdatedAt: base,
	}
	if err := s.CreateToken(ctx, in, storetest.NewHash(t, "deep")); err != nil {
		t.Fatal(err)
	}
	mutations := []struct {
		name   string
		mutate func(*apitoken.Token)
	}{
		{"AllowedEndpoints", func(tok *apitoken.Token) { tok.AllowedEndpoints[0] = "/x" }},
		{"Scopes", func(tok *apitoken.Token) { tok.Scopes[0] = "x" }},
		{"Metadata", func(tok *apitoken.Token) { tok.Metadata["k"] = "x" }},
		{"ExpiresAt", func(tok *apitoken.Token) { *tok.ExpiresAt = base }},
		{"Name", func(tok *apitoken.Token) { tok.Name = "x" }},
	}
	sources := []struct {
		name string
		get  func() *apitoken.Token
	}{
		{"Input", func() *apitoken.Token { return in }},
		{"GetToken", func() *apitoken.Token { tok, _ := s.GetToken(ctx, in.ID); return tok }},
		{"GetTokenByHash", func() *apitoken.Token { tok, _ := s.GetTokenByHash(ctx, storetest.NewHash(t, "deep")); return tok }},
		{"ListTokens", func() *apitoken.Token { l, _, _ := s.ListTokens(ctx, apitoken.ListOptions{}); return l[0] }},
		{"UpdateToken", func() *apitoken.Token { tok, _ := s.UpdateToken(ctx, in.ID, apitoken.Update{}, base); return tok }},
	}
	for _, src := range sources {
		for _, m := range mutations {
			t.Run(src.name+"/"+m.name, func(t *testing.T) {
				m.mutate(src.get())
				got, err := s.GetToken(ctx, in.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Name != "orig" || got.AllowedEndpoints[0] != "/a" || got.Scopes[0] != "s" ||
					got.Metadata["k"] != "v" || !got.ExpiresAt.Equal(exp) {
					t.Errorf("stored token changed: %+v %v %v %v %v", got, got.AllowedEndpoints, got.Scopes, got.Metadata, got.ExpiresAt)
				}
			})
		}
	}
}

// TestRace runs every method from many goroutines; run it with -race.
func TestRace(t *testing.T) {
	const workers, rounds = 16, 200
	ctx := context.Background()
	s := memory.New(memory.WithMaxEvents(500))
	shared := mustCreate(t, s, "shared")
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				name := fmt.Sprintf("w%d-%d", w, i)
				tok := newToken(name)
				if err := s.CreateToken(ctx, tok, storetest.NewHash(t, name)); err != nil {
					t.Error(err)
					return
				}
				now := base.Add(time.Duration(i) * time.Minute)
				evs := events(tok.ID, now, 3, "/w")
				evs = append(evs, events(shared, now, 2, "/s")...)
				if err := s.RecordUsage(ctx, evs); err != nil {
					t.Error(err)
				}
				if _, err := s.UpdateToken(ctx, tok.ID, apitoken.Update{Name: apitoken.Set(name + "!"), Scopes: apitoken.Set([]string{"x"})}, now); err != nil {
					t.Error(err)
				}
				if err := s.TouchTokens(ctx, map[int64]time.Time{tok.ID: now, shared: now}); err != nil {
					t.Error(err)
				}
				if _, err := s.GetTokenByHash(ctx, storetest.NewHash(t, name)); err != nil {
					t.Error(err)
				}
				q := apitoken.Query{From: base, To: base.Add(24 * time.Hour), Limit: 5}
				if _, err := s.TokenUsage(ctx, shared, q); err != nil {
					t.Error(err)
				}
				if i%20 == 0 {
					if _, _, err := s.ListTokens(ctx, apitoken.ListOptions{Search: "w", Limit: 10}); err != nil {
						t.Error(err)
					}
					if _, err := s.Overview(ctx, q); err != nil {
						t.Error(err)
					}
				}
				if _, err := s.TokenStats(ctx, []int64{tok.ID, shared}, now); err != nil {
					t.Error(err)
				}
				if i%3 == 0 {
					if err := s.DeleteToken(ctx, tok.ID); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	stats, err := s.TokenStats(ctx, []int64{shared}, base)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stats[shared].TotalRequests, int64(workers*rounds*2); got != want {
		t.Errorf("shared token total = %d, want %d", got, want)
	}
	_, total, err := s.ListTokens(ctx, apitoken.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + workers*(rounds-(rounds+2)/3); total != want {
		t.Errorf("%d tokens left, want %d", total, want)
	}
}
