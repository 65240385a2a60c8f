package apitoken_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/memory"
)

func TestTokenFormat(t *testing.T) {
	m, _, _ := newManager(t)
	tok, plain, err := m.Create(context.Background(), apitoken.CreateParams{Name: "fmt"})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^` + apitoken.ScannerRegexp("atk") + `$`).MatchString(plain) {
		t.Fatalf("plaintext %q does not match the scanner regexp %s", plain, apitoken.ScannerRegexp("atk"))
	}
	if len(plain) != len("atk_")+apitoken.SecretLen+6 {
		t.Fatalf("len(plaintext) = %d", len(plain))
	}
	if !strings.HasPrefix(plain, tok.Start) || len(tok.Start) != len("atk_")+6 {
		t.Fatalf("Start = %q, plaintext %q", tok.Start, plain)
	}
	_, plain2 := mustCreate(t, m, apitoken.CreateParams{})
	if plain2 == plain {
		t.Fatal("two tokens are equal")
	}
}

func TestCustomPrefix(t *testing.T) {
	m, _, _ := newManager(t, apitoken.WithPrefix("shop_live"))
	_, plain := mustCreate(t, m, apitoken.CreateParams{})
	if !strings.HasPrefix(plain, "shop_live_") {
		t.Fatalf("plaintext %q lacks the prefix", plain)
	}
	if _, err := m.Verify(context.Background(), plain); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	other, _, _ := newManager(t)
	if _, err := other.Verify(context.Background(), plain); !errors.Is(err, apitoken.ErrInvalidToken) {
		t.Fatalf("a token of another prefix: %v, want ErrInvalidToken", err)
	}
	for _, p := range []string{"", "ATK", "a-b", "_a", "a_", strings.Repeat("a", 33)} {
		if _, err := apitoken.NewManager(memory.New(), apitoken.WithPrefix(p)); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
}

func TestVerifyRejections(t *testing.T) {
	m, st, clk := newManager(t)
	ctx := context.Background()
	_, good := mustCreate(t, m, apitoken.CreateParams{})
	disabled, disabledPlain := mustCreate(t, m, apitoken.CreateParams{Inactive: true})
	exp, expPlain := mustCreate(t, m, apitoken.CreateParams{ExpiresAt: ptr(clk.Now().Add(time.Hour))})
	clk.Advance(2 * time.Hour)

	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	// A well-formed token (valid checksum) that was never stored.
	unknown := func() string {
		other, _, _ := newManager(t)
		_, p := mustCreate(t, other, apitoken.CreateParams{})
		return p
	}()

	tests := []struct {
		name      string
		token     string
		want      error
		wantToken int64
		lookups   int64 // store lookups this call may cause
	}{
		{"valid", good, nil, 1, 1},
		{"empty", "", apitoken.ErrInvalidToken, 0, 0},
		{"garbage", "hello", apitoken.ErrInvalidToken, 0, 0},
		{"secret typo", flip(good, 10), apitoken.ErrInvalidToken, 0, 0},
		{"checksum typo", flip(good, len(good)-1), apitoken.ErrInvalidToken, 0, 0},
		{"truncated", good[:len(good)-1], apitoken.ErrInvalidToken, 0, 0},
		{"extended", good + "a", apitoken.ErrInvalidToken, 0, 0},
		{"wrong prefix", "xyz" + good[3:], apitoken.ErrInvalidToken, 0, 0},
		{"over 255 characters", good + strings.Repeat("a", 300), apitoken.ErrInvalidToken, 0, 0},
		{"unknown but well formed", unknown, apitoken.ErrInvalidToken, 0, 1},
		{"disabled", disabledPlain, apitoken.ErrTokenDisabled, disabled.ID, 1},
		{"expired", expPlain, apitoken.ErrTokenExpired, exp.ID, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := st.byHash.Load()
			tok, err := m.Verify(ctx, tt.token)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
			var id int64
			if tok != nil {
				id = tok.ID
			}
			if id != tt.wantToken {
				t.Fatalf("token id %d, want %d", id, tt.wantToken)
			}
			if got := st.byHash.Load() - before; got > tt.lookups {
				t.Fatalf("%d store lookups, want at most %d", got, tt.lookups)
			}
		})
	}
}

func TestVerifyCache(t *testing.T) {
	ctx := context.Background()
	t.Run("hit does not ask the store", func(t *testing.T) {
		m, st, _ := newManager(t)
		_, plain := mustCreate(t, m, apitoken.CreateParams{})
		for i := 0; i < 100; i++ {
			if _, err := m.Verify(ctx, plain); err != nil {
				t.Fatal(err)
			}
		}
		if n := st.byHash.Load(); n != 1 {
			t.Fatalf("%d store lookups for 100 verifies, want 1", n)
		}
	})
	t.Run("ttl bounds staleness", func(t *testing.T) {
		m, st, clk := newManager(t, apitoken.WithCacheTTL(10*time.Second))
		tok, plain := mustCreate(t, m, apitoken.CreateParams{})
		if _, err := m.Verify(ctx, plain); err != nil {
			t.Fatal(err)
		}
		// A change made behind the Manager's back (another process).
		if _, err := st.Store.UpdateToken(ctx, tok.ID, apitoken.Update{Active: apitoken.Set(false)}, clk.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Verify(ctx, plain); err != nil {
			t.Fatalf("within the TTL the cached token is used: %v", err)
		}
		clk.Advance(11 * time.Second)
		if _, err := m.Verify(ctx, plain); !errors.Is(err, apitoken.ErrTokenDisabled) {
			t.Fatalf("after the TTL: %v, want ErrTokenDisabled", err)
		}
	})
	t.Run("manager changes take effect at once", func(t *testing.T) {
		m, _, _ := newManager(t, apitoken.WithCacheTTL(time.Hour))
		tok, plain := mustCreate(t, m, apitoken.CreateParams{})
		steps := []struct {
			name string
			do   func() error
			want error
		}{
			{"disable", func() error {
				_, err := m.Update(ctx, tok.ID, apitoken.Update{Active: apitoken.Set(false)})
				return err
			}, apitoken.ErrTokenDisabled},
			{"enable", func() error { _, err := m.Update(ctx, tok.ID, apitoken.Update{Active: apitoken.Set(true)}); return err }, nil},
			{"delete", func() error { return m.Delete(ctx, tok.ID) }, apitoken.ErrInvalidToken},
		}
		for _, s := range steps {
			if _, err := m.Verify(ctx, plain); err != nil && s.name != "enable" {
				t.Fatalf("before %s: %v", s.name, err)
			}
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if _, err := m.Verify(ctx, plain); !errors.Is(err, s.want) || (s.want == nil && err != nil) {
				t.Fatalf("after %s: %v, want %v", s.name, err, s.want)
			}
		}
	})
	t.Run("unknown tokens are cached briefly", func(t *testing.T) {
		m, st, clk := newManager(t, apitoken.WithNegativeCacheTTL(2*time.Second, 1000))
		other, _, _ := newManager(t)
		_, unknown := mustCreate(t, other, apitoken.CreateParams{})
		for i := 0; i < 10; i++ {
			_, _ = m.Verify(ctx, unknown)
		}
		if n := st.byHash.Load(); n != 1 {
			t.Fatalf("%d lookups, want 1", n)
		}
		clk.Advance(3 * time.Second)
		_, _ = m.Verify(ctx, unknown)
		if n := st.byHash.Load(); n != 2 {
			t.Fatalf("%d lookups after the negative TTL, want 2", n)
		}
	})
	t.Run("store down", func(t *testing.T) {
		m, st, _ := newManager(t)
		_, cached := mustCreate(t, m, apitoken.CreateParams{})
		_, fresh := mustCreate(t, m, apitoken.CreateParams{})
		if _, err := m.Verify(ctx, cached); err != nil {
			t.Fatal(err)
		}
		st.fail.Store(true)
		if _, err := m.Verify(ctx, cached); err != nil {
			t.Fatalf("cached token with the store down: %v", err)
		}
		_, err := m.Verify(ctx, fresh)
		if !errors.Is(err, apitoken.ErrStoreUnavailable) || errors.Is(err, apitoken.ErrInvalidToken) {
			t.Fatalf("uncached token with the store down: %v, want ErrStoreUnavailable", err)
		}
		st.fail.Store(false)
		if _, err := m.Verify(ctx, fresh); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	})
}

func TestLastUsedIsBatched(t *testing.T) {
	ctx := context.Background()
	m, st, clk := newManager(t, apitoken.WithLastUsedInterval(time.Hour))
	a, pa := mustCreate(t, m, apitoken.CreateParams{})
	b, pb := mustCreate(t, m, apitoken.CreateParams{})
	for i := 0; i < 1000; i++ {
		clk.Advance(10 * time.Millisecond)
		if _, err := m.Verify(ctx, pa); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Verify(ctx, pb); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.touches.Load(); n != 0 {
		t.Fatalf("%d TouchTokens calls before the flush, want 0", n)
	}
	if err := m.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}
	if n := st.touches.Load(); n != 1 {
		t.Fatalf("%d TouchTokens calls for 2,000 verifies, want 1", n)
	}
	for _, tok := range []*apitoken.Token{a, b} {
		got, err := m.Get(ctx, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt == nil || clk.Now().Sub(*got.LastUsedAt) > time.Second {
			t.Fatalf("last_used_at = %v, want within 1s of %v", got.LastUsedAt, clk.Now())
		}
	}
	// Nothing new: no write.
	if err := m.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}
	if n := st.touches.Load(); n != 1 {
		t.Fatalf("%d TouchTokens calls with nothing new, want 1", n)
	}
	// A failed write is retried by the next flush.
	_, _ = m.Verify(ctx, pa)
	clk.Advance(5 * time.Second)
	_, _ = m.Verify(ctx, pa)
	st.fail.Store(true)
	if err := m.FlushLastUsed(ctx); err == nil {
		t.Fatal("flush with the store down succeeded")
	}
	st.fail.Store(false)
	if err := m.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := m.Get(ctx, a.ID)
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(clk.Now()) {
		t.Fatalf("last_used_at after retry = %v, want %v", got.LastUsedAt, clk.Now())
	}
}

func TestCreateValidation(t *testing.T) {
	m, _, clk := newManager(t)
	tests := []struct {
		name  string
		p     apitoken.CreateParams
		field string
		text  string
	}{
		{"name required", apitoken.CreateParams{}, "name", "required"},
		{"name blank", apitoken.CreateParams{Name: "  "}, "name", "required"},
		{"name too long", apitoken.CreateParams{Name: strings.Repeat("é", 256)}, "name", "255"},
		{"negative rate limit", apitoken.CreateParams{Name: "x", RateLimit: ptr(-1)}, "rate_limit", "0"},
		{"bad pattern", apitoken.CreateParams{Name: "x", AllowedEndpoints: []string{"/ok*", "/bad["}}, "allowed_endpoints", `"/bad["`},
		{"pattern without slash", apitoken.CreateParams{Name: "x", AllowedEndpoints: []string{"products"}}, "allowed_endpoints", `"products"`},
		{"past expiry", apitoken.CreateParams{Name: "x", ExpiresAt: ptr(clk.Now().Add(-time.Second))}, "expires_at", "future"},
		{"expiry now", apitoken.CreateParams{Name: "x", ExpiresAt: ptr(clk.Now())}, "expires_at", "future"},
		{"description too long", apitoken.CreateParams{Name: "x", Description: strings.Repeat("d", 4097)}, "description", "4096"},
		{"scope with space", apitoken.CreateParams{Name: "x", Scopes: []string{"a b"}}, "scopes", "white space"},
		{"empty metadata key", apitoken.CreateParams{Name: "x", Metadata: map[string]string{"": "v"}}, "metadata", "key"},
		{"NUL in name", apitoken.CreateParams{Name: "a\x00b"}, "name", "NUL"},
		{"NUL in description", apitoken.CreateParams{Name: "x", Description: "\x00"}, "description", "NUL"},
		{"NUL in pattern", apitoken.CreateParams{Name: "x", AllowedEndpoints: []string{"/a\x00"}}, "allowed_endpoints", "NUL"},
		{"NUL in metadata", apitoken.CreateParams{Name: "x", Metadata: map[string]string{"k": "\x00"}}, "metadata", "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, plain, err := m.Create(context.Background(), tt.p)
			var ve *apitoken.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a ValidationError", err)
			}
			if ve.Field != tt.field || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %q (field %q), want field %q mentioning %q", err, ve.Field, tt.field, tt.text)
			}
			if plain != "" {
				t.Fatal("plaintext returned with an error")
			}
		})
	}
	toks, total, err := m.List(context.Background(), apitoken.ListOptions{})
	if err != nil || total != 0 || len(toks) != 0 {
		t.Fatalf("invalid creates stored something: %d tokens, %v", total, err)
	}
	// Boundaries that are fine.
	ok := []apitoken.CreateParams{
		{Name: strings.Repeat("é", 255)},
		{Name: "x", RateLimit: ptr(0)},
		{Name: "x", Description: strings.Repeat("d", 4096)},
		{Name: "x", AllowedEndpoints: []string{}},
		{Name: "x", AllowedEndpoints: []string{"GET /products*", "/stores/*/brands", "/a/**/b"}},
	}
	for i, p := range ok {
		if _, _, err := m.Create(context.Background(), p); err != nil {
			t.Errorf("valid params %d: %v", i, err)
		}
	}
}

func TestCreateDefaults(t *testing.T) {
	m, _, clk := newManager(t)
	tok, _ := mustCreate(t, m, apitoken.CreateParams{Name: "d"})
	if tok.RateLimit != 100 || !tok.Active || tok.ID <= 0 || !tok.CreatedAt.Equal(clk.Now()) || !tok.UpdatedAt.Equal(clk.Now()) {
		t.Fatalf("defaults: %+v rate=%d active=%t id=%d created=%v", tok, tok.RateLimit, tok.Active, tok.ID, tok.CreatedAt)
	}
	m2, _, _ := newManager(t, apitoken.WithDefaultRateLimit(7))
	tok2, _ := mustCreate(t, m2, apitoken.CreateParams{Name: "d"})
	if tok2.RateLimit != 7 {
		t.Fatalf("WithDefaultRateLimit: %d", tok2.RateLimit)
	}
}

func TestUpdateIsPartial(t *testing.T) {
	ctx := context.Background()
	m, _, clk := newManager(t)
	exp := clk.Now().Add(48 * time.Hour)
	orig, _ := mustCreate(t, m, apitoken.CreateParams{
		Name: "orig", Description: "desc", RateLimit: ptr(200),
		AllowedEndpoints: []string{"/products*"}, ExpiresAt: &exp,
		Metadata: map[string]string{"team": "web"}, Scopes: []string{"read"},
	})
	clk.Advance(time.Minute)
	got, err := m.Update(ctx, orig.ID, apitoken.Update{Name: apitoken.Set("renamed"), RateLimit: apitoken.Set(300)})
	if err != nil {
		t.Fatal(err)
	}
	want := orig.Clone()
	want.Name, want.RateLimit, want.UpdatedAt = "renamed", 300, clk.Now()
	if a, b := mustJSON(t, got), mustJSON(t, want); a != b {
		t.Fatalf("after update\n got %s\nwant %s", a, b)
	}
	// Clearing the nullable fields.
	got, err = m.Update(ctx, orig.ID, apitoken.Update{ExpiresAt: apitoken.Set[*time.Time](nil), AllowedEndpoints: apitoken.Set([]string(nil))})
	if err != nil {
		t.Fatal(err)
	}
	if got.ExpiresAt != nil || len(got.AllowedEndpoints) != 0 || got.Name != "renamed" {
		t.Fatalf("clearing: %s", mustJSON(t, got))
	}
	// Invalid updates change nothing.
	bad := []apitoken.Update{
		{Name: apitoken.Set(""), RateLimit: apitoken.Set(1)},
		{RateLimit: apitoken.Set(-5)},
		{AllowedEndpoints: apitoken.Set([]string{"/x{"})},
		{ExpiresAt: apitoken.Set(ptr(clk.Now().Add(-time.Hour)))},
	}
	for i, u := range bad {
		if _, err := m.Update(ctx, orig.ID, u); !errors.As(err, new(*apitoken.ValidationError)) {
			t.Errorf("bad update %d: %v", i, err)
		}
	}
	after, _ := m.Get(ctx, orig.ID)
	if after.RateLimit != 300 || after.Name != "renamed" {
		t.Fatalf("a rejected update changed the token: %s", mustJSON(t, after))
	}
	if _, err := m.Update(ctx, 999, apitoken.Update{Name: apitoken.Set("x")}); !errors.Is(err, apitoken.ErrNotFound) {
		t.Fatalf("update of a missing token: %v", err)
	}
	if err := m.Delete(ctx, 999); !errors.Is(err, apitoken.ErrNotFound) {
		t.Fatalf("delete of a missing token: %v", err)
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newManager(t)
	for i := 0; i < 5; i++ {
		mustCreate(t, m, apitoken.CreateParams{Name: fmt.Sprintf("Partner %d", i), Inactive: i%2 == 1})
	}
	mustCreate(t, m, apitoken.CreateParams{Name: "WordPress Plugin"})
	tests := []struct {
		name      string
		opts      apitoken.ListOptions
		wantNames []string
		wantTotal int
	}{
		{"all newest first", apitoken.ListOptions{Limit: 3}, []string{"WordPress Plugin", "Partner 4", "Partner 3"}, 6},
		{"offset", apitoken.ListOptions{Limit: 2, Offset: 4}, []string{"Partner 1", "Partner 0"}, 6},
		{"search ignores case", apitoken.ListOptions{Search: "wordpress"}, []string{"WordPress Plugin"}, 1},
		{"inactive", apitoken.ListOptions{Active: ptr(false)}, []string{"Partner 3", "Partner 1"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			toks, total, err := m.List(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, x := range toks {
				names = append(names, x.Name)
			}
			if fmt.Sprint(names) != fmt.Sprint(tt.wantNames) || total != tt.wantTotal {
				t.Fatalf("got %v (total %d), want %v (total %d)", names, total, tt.wantNames, tt.wantTotal)
			}
		})
	}
	if _, _, err := m.List(ctx, apitoken.ListOptions{Limit: -1}); !errors.As(err, new(*apitoken.ValidationError)) {
		t.Fatalf("negative limit: %v", err)
	}
}

func TestParseExpiry(t *testing.T) {
	tests := []struct {
		name, in string
		want     time.Time
		ok       bool
	}{
		{"date", "2026-12-31", time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), true},
		{"rfc3339", "2026-12-31T18:30:00Z", time.Date(2026, 12, 31, 18, 30, 0, 0, time.UTC), true},
		{"offset", "2026-12-31T18:30:00+02:00", time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC), true},
		{"millis", "2026-12-31T00:00:00.000Z", time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), true},
		{"us date", "12/31/2026", time.Time{}, false},
		{"no zone", "2026-12-31T00:00:00", time.Time{}, false},
		{"empty", "", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := apitoken.ParseExpiry(tt.in)
			if tt.ok != (err == nil) || !got.Equal(tt.want) {
				t.Fatalf("ParseExpiry(%q) = %v, %v", tt.in, got, err)
			}
			if err != nil && !strings.Contains(err.Error(), "expires_at") {
				t.Fatalf("error %q does not name the field", err)
			}
		})
	}
}

func TestTokenNeverPrintsSecrets(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, _, _ := newManager(t, apitoken.WithLogger(logger))
	tok, plain := mustCreate(t, m, apitoken.CreateParams{Name: "n"})
	hash := sha256Hex(plain)
	secret := plain[4 : 4+apitoken.SecretLen]
	stored, _ := m.Get(context.Background(), tok.ID)
	j, _ := json.Marshal(stored)
	renderings := map[string]string{
		"String": stored.String(), "%v": fmt.Sprintf("%v", stored), "%+v": fmt.Sprintf("%+v", stored),
		"%#v": fmt.Sprintf("%#v", stored), "value %+v": fmt.Sprintf("%+v", *stored), "JSON": string(j),
	}
	logger.Info("token", "token", stored)
	renderings["slog"] = logs.String()
	for name, s := range renderings {
		for _, needle := range []string{secret[6:], hash, hash[:16]} {
			if strings.Contains(s, needle) {
				t.Errorf("%s reveals a secret: %s", name, s)
			}
		}
	}
	if !strings.Contains(renderings["slog"], tok.Start) || !strings.Contains(renderings["%+v"], `"n"`) {
		t.Errorf("renderings should still identify the token: %q / %q", renderings["slog"], renderings["%+v"])
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hangingStore answers GetTokenByHash only when the test says so,
// whatever the context, as a database behind a black-holed link does.
type hangingStore struct {
	*memory.Store
	hang    atomic.Bool
	entered chan struct{} // a lookup has started to hang
	release chan struct{} // closed: hanging lookups answer
}

func (s *hangingStore) GetTokenByHash(ctx context.Context, h apitoken.Hash) (*apitoken.Token, error) {
	if s.hang.Load() {
		s.entered <- struct{}{}
		<-s.release
	}
	return s.Store.GetTokenByHash(ctx, h)
}

func newHangingManager(t *testing.T, opts ...apitoken.Option) (*apitoken.Manager, *hangingStore, *clock) {
	t.Helper()
	clk := newClock()
	st := &hangingStore{Store: memory.New(), entered: make(chan struct{}, 8), release: make(chan struct{})}
	m, err := apitoken.NewManager(st, append([]apitoken.Option{apitoken.WithClock(clk), apitoken.WithLogger(discardLogger())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(st.release)
		_ = m.Close(context.Background())
	})
	return m, st, clk
}

// A token verified before keeps working past its TTL while the store does
// not answer before the request gives up (stale-if-error), and one never
// verified gets the store's unavailability.
func TestStaleIfErrorWhileTheStoreHangs(t *testing.T) {
	m, st, clk := newHangingManager(t, apitoken.WithCacheTTL(30*time.Second))
	ctx := context.Background()
	_, known := mustCreate(t, m, apitoken.CreateParams{})
	_, fresh := mustCreate(t, m, apitoken.CreateParams{})
	if _, err := m.Verify(ctx, known); err != nil {
		t.Fatal(err)
	}
	clk.Advance(31 * time.Second)
	st.hang.Store(true)
	gone, cancel := context.WithCancel(ctx)
	cancel() // the request's deadline has passed
	if tok, err := m.Verify(gone, known); err != nil || tok == nil {
		t.Fatalf("known token while the store hangs: %v, %v; want its stale entry", tok, err)
	}
	if _, err := m.Verify(gone, fresh); !errors.Is(err, context.Canceled) {
		t.Fatalf("unknown-to-the-cache token: %v, want the request's context error", err)
	}
}

// A request after an invalidation never joins a lookup that started before
// it: that lookup's answer may be the token as it was.
func TestLookupAfterInvalidationIsFresh(t *testing.T) {
	m, st, _ := newHangingManager(t)
	ctx := context.Background()
	tok, plain := mustCreate(t, m, apitoken.CreateParams{})
	st.hang.Store(true)
	first := make(chan error, 1)
	go func() { _, err := m.Verify(ctx, plain); first <- err }()
	<-st.entered // the first lookup hangs in the store
	m.Invalidate(tok.ID)
	second := make(chan error, 1)
	go func() { _, err := m.Verify(ctx, plain); second <- err }()
	select {
	case <-st.entered: // a lookup of its own
	case err := <-second:
		t.Fatalf("the second request was answered (%v) by the lookup started before the invalidation", err)
	case <-time.After(10 * time.Second): // a bound on failure only
		t.Fatal("the second request waits for the lookup started before the invalidation")
	}
	st.hang.Store(false)
	st.release <- struct{}{} // wakes one hanging lookup; Cleanup's close wakes the rest
	st.release <- struct{}{}
	for _, ch := range []chan error{first, second} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
}

// WithNegativeCacheTTL(d, 0) remembers no unknown token.
func TestNegativeCacheOfSizeZero(t *testing.T) {
	m, st, _ := newManager(t, apitoken.WithNegativeCacheTTL(time.Minute, 0))
	other, _, _ := newManager(t)
	_, unknown := mustCreate(t, other, apitoken.CreateParams{})
	for range 3 {
		if _, err := m.Verify(context.Background(), unknown); !errors.Is(err, apitoken.ErrInvalidToken) {
			t.Fatal(err)
		}
	}
	if n := st.byHash.Load(); n != 3 {
		t.Fatalf("%d store lookups for 3 verifications, want 3 (nothing cached)", n)
	}
}

// Invalid option values are errors naming the option.
func TestManagerOptionErrorsNameTheOption(t *testing.T) {
	tests := []struct {
		name string
		opts []apitoken.Option
		want string
	}{
		{"bad prefix", []apitoken.Option{apitoken.WithPrefix("A-B")}, "WithPrefix"},
		{"empty prefix", []apitoken.Option{apitoken.WithPrefix("")}, "WithPrefix"},
		{"empty pepper", []apitoken.Option{apitoken.WithPepper(nil)}, "WithPepper"},
		{"nil clock", []apitoken.Option{apitoken.WithClock(nil)}, "WithClock"},
		{"nil logger", []apitoken.Option{apitoken.WithLogger(nil)}, "WithLogger"},
		{"zero TTL", []apitoken.Option{apitoken.WithCacheTTL(0)}, "WithCacheTTL"},
		{"negative negative TTL", []apitoken.Option{apitoken.WithNegativeCacheTTL(-1, 10)}, "WithNegativeCacheTTL"},
		{"negative stale", []apitoken.Option{apitoken.WithStaleIfError(-1)}, "WithStaleIfError"},
		{"zero last-used interval", []apitoken.Option{apitoken.WithLastUsedInterval(0)}, "WithLastUsedInterval"},
		{"default limit too large", []apitoken.Option{apitoken.WithDefaultRateLimit(apitoken.MaxRateLimit + 1)}, "WithDefaultRateLimit"},
		{"negative batch", []apitoken.Option{apitoken.WithUsageBatch(apitoken.UsageBatch{Size: -1})}, "WithUsageBatch"},
		{"batch without a pipeline", []apitoken.Option{apitoken.WithSink(nil), apitoken.WithUsageBatch(apitoken.UsageBatch{Size: 10})}, "WithUsageBatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := apitoken.NewManager(memory.New(), tt.opts...)
			if err == nil {
				_ = m.Close(context.Background())
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not name %s", err, tt.want)
			}
		})
	}
}
