package apitoken_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/memory"
)

// A stored pattern that does not compile (written behind the Manager's
// back, or by another version) must refuse every endpoint, not allow all.
func TestUncompilableStoredPatternRefusesAll(t *testing.T) {
	d := newDemoAPI(t, nil)
	tok, plain := mustCreate(t, d.m, apitoken.CreateParams{AllowedEndpoints: []string{"/products*"}})
	if _, err := d.st.Store.UpdateToken(context.Background(), tok.ID,
		apitoken.Update{AllowedEndpoints: apitoken.Set([]string{"products*"})}, d.clk.Now()); err != nil {
		t.Fatal(err)
	}
	d.m.Invalidate(tok.ID)
	for _, p := range []string{"/api/orders", "/api/products"} {
		if w := d.do("GET", p, plain); w.Code != 403 {
			t.Fatalf("%s with an uncompilable stored pattern: %d, want 403", p, w.Code)
		}
	}
}

func TestStaleIfError(t *testing.T) {
	tests := []struct {
		name    string
		opts    []apitoken.Option
		advance time.Duration
		want    int
	}{
		{"within the ttl", nil, 10 * time.Second, 200},
		{"past the ttl, within the grace", nil, 31 * time.Second, 200},
		{"past the ttl and the grace", nil, 30*time.Second + 15*time.Minute + time.Second, 503},
		{"grace off", []apitoken.Option{apitoken.WithStaleIfError(0)}, 31 * time.Second, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDemoAPI(t, tt.opts)
			_, plain := mustCreate(t, d.m, apitoken.CreateParams{})
			if w := d.do("GET", "/api/products", plain); w.Code != 200 {
				t.Fatal(w.Code)
			}
			d.st.fail.Store(true)
			d.clk.Advance(tt.advance)
			if w := d.do("GET", "/api/products", plain); w.Code != tt.want {
				t.Fatalf("during the outage: %d %s, want %d", w.Code, w.Body, tt.want)
			}
			d.st.fail.Store(false)
			if w := d.do("GET", "/api/products", plain); w.Code != 200 {
				t.Fatalf("after the outage: %d", w.Code)
			}
		})
	}
	// A disable that reached the store before the outage is seen once the
	// store answers again.
	d := newDemoAPI(t, nil)
	tok, plain := mustCreate(t, d.m, apitoken.CreateParams{})
	d.do("GET", "/api/products", plain)
	if _, err := d.st.Store.UpdateToken(context.Background(), tok.ID, apitoken.Update{Active: apitoken.Set(false)}, d.clk.Now()); err != nil {
		t.Fatal(err)
	}
	d.clk.Advance(31 * time.Second)
	if w := d.do("GET", "/api/products", plain); w.Code != 403 {
		t.Fatalf("store reachable, token disabled: %d", w.Code)
	}
}

func TestConcurrentMissesShareOneLookup(t *testing.T) {
	clk := newClock()
	st := &countingStore{Store: memory.New(), delay: 50 * time.Millisecond}
	m, err := apitoken.NewManager(st, apitoken.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	_, plain := mustCreate(t, m, apitoken.CreateParams{})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.Verify(context.Background(), plain); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := st.byHash.Load(); n != 1 {
		t.Fatalf("%d store lookups for 200 concurrent first uses, want 1", n)
	}
	// A waiter whose own context ends stops waiting: a token verified
	// before is then served from its stale entry, one never verified gets
	// the context's error.
	_, unseen := mustCreate(t, m, apitoken.CreateParams{})
	clk.Advance(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if tok, err := m.Verify(ctx, plain); err != nil || tok == nil {
		t.Fatalf("Verify of a known token with a short context during a slow lookup: %v", err)
	}
	if _, err := m.Verify(ctx, unseen); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify of an unseen token with a short context during a slow lookup: %v", err)
	}
}

func TestRefusalsRecordNoRoute(t *testing.T) {
	d := newDemoAPI(t, nil)
	_, plain := mustCreate(t, d.m, apitoken.CreateParams{AllowedEndpoints: []string{"/products*"}})
	d.do("GET", "/api/orders", plain)
	d.do("GET", "/api/products/5", plain)
	evs := d.ev.list()
	if len(evs) != 2 || evs[0].Route != "" || evs[1].Route != "/products/{id}" {
		t.Fatalf("routes: %+v", evs)
	}
}

func TestQueryTokenHiddenFromHandler(t *testing.T) {
	m, _, _ := newManager(t)
	_, plain := mustCreate(t, m, apitoken.CreateParams{})
	var seen string
	h := apitoken.Middleware(m, apitoken.WithQueryParam("api_key"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.URL.String() + " " + r.RequestURI }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x?store_id=1&api_key="+plain, nil))
	if strings.Contains(seen, plain) || !strings.Contains(seen, "store_id=1") {
		t.Fatalf("handler saw %q", seen)
	}
}

func TestHashIsRedactedEverywhere(t *testing.T) {
	var h apitoken.Hash
	for i := range h {
		h[i] = 0xab
	}
	j, _ := json.Marshal(map[string]any{"h": h})
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "hash", h)
	for name, s := range map[string]string{"json": string(j), "slog": logs.String(), "String": h.String()} {
		if strings.Contains(s, "abab") || strings.Contains(s, "171") || !strings.Contains(s, "redacted") {
			t.Errorf("%s: %s", name, s)
		}
	}
	if h.Hex() != strings.Repeat("ab", 32) {
		t.Fatal("Hex must still give the digest to stores")
	}
}

func TestNegativeCacheSizeRejected(t *testing.T) {
	if _, err := apitoken.NewManager(memory.New(), apitoken.WithNegativeCacheTTL(time.Second, -1)); err == nil {
		t.Fatal("a negative size was accepted")
	}
}

func TestDropsAreLoggedWhileTheStoreIsDown(t *testing.T) {
	var logs syncBuffer
	st := memory.New()
	m, err := apitoken.NewManager(st, apitoken.WithUsageStore(failingWrites{st}),
		apitoken.WithUsageBatch(apitoken.UsageBatch{QueueSize: 10, Size: 5, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond}),
		apitoken.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	_, plain := mustCreate(t, m, apitoken.CreateParams{RateLimit: ptr(0)})
	h := apitoken.Middleware(m)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 100 {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Authorization", "Bearer "+plain)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "usage events dropped") {
		if time.Now().After(deadline) {
			t.Fatalf("no drop report while writes fail; log: %s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = m.Close(ctx)
	if plain != "" && strings.Contains(logs.String(), plain) {
		t.Fatal("the log holds the token")
	}
}

// failingWrites is a UsageStore whose writes all fail.
type failingWrites struct{ apitoken.UsageStore }

func (failingWrites) RecordUsage(ctx context.Context, _ []apitoken.Event) error {
	return errUnreachable
}
