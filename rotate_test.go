package apitoken_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/memory"
)

// verifyErr returns the error of Verify for plain.
func verifyErr(m *apitoken.Manager, plain string) error {
	_, err := m.Verify(context.Background(), plain)
	return err
}

func TestManagerRotate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
	}{{"NoGrace", 0}, {"Grace", time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, clk := newManager(t)
			tok, old := mustCreate(t, m, apitoken.CreateParams{RateLimit: ptr(7), AllowedEndpoints: []string{"/a*"}})
			// The old secret is cached before the rotation: the rotation
			// must still reach the cache.
			if err := verifyErr(m, old); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Second)
			rot, plain, err := m.Rotate(context.Background(), tok.ID, tc.grace)
			if err != nil {
				t.Fatal(err)
			}
			if plain == old || !strings.HasPrefix(plain, "atk_") || rot.Start != plain[:len(rot.Start)] || rot.Start == tok.Start {
				t.Errorf("new plaintext %q / start %q (old start %q)", plain, rot.Start, tok.Start)
			}
			if rot.ID != tok.ID || rot.RateLimit != 7 || rot.AllowedEndpoints[0] != "/a*" || rot.Name != tok.Name {
				t.Errorf("rotation changed more than the secret: %+v", rot)
			}
			if want := clk.Now().Add(tc.grace); rot.PreviousExpiresAt == nil || !rot.PreviousExpiresAt.Equal(want) {
				t.Errorf("PreviousExpiresAt = %v, want %v", rot.PreviousExpiresAt, want)
			}
			if err := verifyErr(m, plain); err != nil {
				t.Errorf("new secret: %v", err)
			}
			if tc.grace == 0 {
				if err := verifyErr(m, old); !errors.Is(err, apitoken.ErrTokenExpired) {
					t.Errorf("old secret right after a rotation without grace: %v, want ErrTokenExpired", err)
				}
				return
			}
			if err := verifyErr(m, old); err != nil {
				t.Errorf("old secret within the grace period: %v", err)
			}
			clk.Advance(tc.grace - time.Nanosecond)
			if err := verifyErr(m, old); err != nil {
				t.Errorf("old secret just before the grace period ends: %v", err)
			}
			clk.Advance(time.Nanosecond)
			if err := verifyErr(m, old); !errors.Is(err, apitoken.ErrTokenExpired) {
				t.Errorf("old secret when the grace period ends: %v, want ErrTokenExpired", err)
			}
			if err := verifyErr(m, plain); err != nil {
				t.Errorf("new secret after the grace period: %v", err)
			}
			// Disabling the token stops both secrets.
			if _, err := m.Update(context.Background(), tok.ID, apitoken.Update{Active: apitoken.Set(false)}); err != nil {
				t.Fatal(err)
			}
			if err := verifyErr(m, plain); !errors.Is(err, apitoken.ErrTokenDisabled) {
				t.Errorf("new secret of a disabled token: %v", err)
			}
		})
	}
	t.Run("Invalid", func(t *testing.T) {
		m, _, _ := newManager(t)
		tok, plain := mustCreate(t, m, apitoken.CreateParams{})
		for _, g := range []time.Duration{-time.Second, apitoken.MaxRotationGrace + time.Second} {
			_, _, err := m.Rotate(context.Background(), tok.ID, g)
			var ve *apitoken.ValidationError
			if !errors.As(err, &ve) || ve.Field != "grace_period_seconds" {
				t.Errorf("Rotate with grace %v: %v, want a ValidationError naming grace_period_seconds", g, err)
			}
		}
		if _, _, err := m.Rotate(context.Background(), tok.ID+1, 0); !errors.Is(err, apitoken.ErrNotFound) {
			t.Errorf("Rotate of an unknown id: %v", err)
		}
		if err := verifyErr(m, plain); err != nil {
			t.Errorf("refused rotations changed the token: %v", err)
		}
	})
}

func TestManagerAudit(t *testing.T) {
	m, _, clk := newManager(t)
	ctx := apitoken.WithActor(context.Background(), "ops@example.com")
	tok, plain, err := m.Create(ctx, apitoken.CreateParams{Name: "audited"})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if _, err := m.Update(ctx, tok.ID, apitoken.Update{Active: apitoken.Set(false)}); err != nil {
		t.Fatal(err)
	}
	_, newPlain, err := m.Rotate(context.Background(), tok.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	entries, total, err := m.Audit(context.Background(), apitoken.AuditQuery{TokenID: tok.ID})
	if err != nil || total != 3 {
		t.Fatalf("Audit: %d entries, %v", total, err)
	}
	got := fmt.Sprintf("%s by %q at %s; %s by %q at %s; %s by %q",
		entries[0].Action, entries[0].Actor, entries[0].CreatedAt.Format(time.RFC3339),
		entries[1].Action, entries[1].Actor, entries[1].CreatedAt.Format(time.RFC3339),
		entries[2].Action, entries[2].Actor)
	if want := `rotate by "" at 2026-11-23T12:01:00Z; disable by "ops@example.com" at 2026-11-23T12:01:00Z; create by "ops@example.com"`; got != want {
		t.Errorf("audit log:\n\tgot  %s\n\twant %s", got, want)
	}
	// No secret (plaintext, its hash in hex, or the secret part) in the log.
	var all strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&all, "%+v %s\n", *e, changeString(e.Changes))
	}
	for _, secret := range []string{plain, newPlain, plain[len(tok.Start):], newPlain[len(tok.Start):], sha256Hex(plain), sha256Hex(newPlain)} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("the audit log holds a secret: %s", all.String())
		}
	}

	noAudit, err := apitoken.NewManager(noAuditStore{memory.New()}, apitoken.WithLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer noAudit.Close(context.Background())
	if _, _, err := noAudit.Audit(context.Background(), apitoken.AuditQuery{}); !errors.Is(err, apitoken.ErrNoAuditStore) {
		t.Errorf("Audit without an audit store: %v, want ErrNoAuditStore", err)
	}
}

func changeString(cs []apitoken.Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s:%s->%s ", c.Field, c.From, c.To)
	}
	return b.String()
}

func TestHandlerRotate(t *testing.T) {
	e := newAdminEnv(t, nil, nil)
	w := e.do(t, "POST", "/", `{"name": "rotating", "rate_limit": 5}`)
	created := decodeObject(t, w)["token"].(map[string]any)
	old := created["token"].(string)
	id := int64(created["id"].(float64))
	path := fmt.Sprintf("/%d/rotate", id)

	// Bad input changes nothing.
	for _, tc := range []struct{ body, ct, want string }{
		{`{"grace_period_seconds": -1}`, "", "grace_period_seconds must be an integer from 0 to 2592000"},
		{`{"grace_period_seconds": 2592001}`, "", "grace_period_seconds must be an integer"},
		{`{"grace_period_seconds": "3600"}`, "", "grace_period_seconds must be an integer"},
		{`{"grace_period_seconds": 1.5}`, "", "grace_period_seconds must be an integer"},
		{`{"grace": 60}`, "", `Unknown field "grace"`},
		{`{"zz": 1, "grace_period_seconds": -1, "aa": 2}`, "", `Unknown field "aa"`},
		{`[]`, "", "Request body must be a JSON object"},
		{`{"grace_period_seconds": 60`, "", "Malformed JSON"},
		{`{} {}`, "", "single JSON object"},
	} {
		w := e.do(t, "POST", path, tc.body)
		if msg, _ := decodeObject(t, w)["error"].(string); w.Code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
			t.Errorf("POST %s %s: %d %q, want 400 containing %q", path, tc.body, w.Code, msg, tc.want)
		}
	}
	if w := e.do(t, "POST", "/999/rotate", ""); w.Code != http.StatusNotFound {
		t.Errorf("rotate of an unknown token: %d", w.Code)
	}
	if w := e.do(t, "GET", path, ""); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET %s: %d, Allow %q", path, w.Code, w.Header().Get("Allow"))
	}
	if err := verifyErr(e.m, old); err != nil {
		t.Fatalf("refused rotations changed the token: %v", err)
	}

	w = e.do(t, "POST", path, `{"grace_period_seconds": 60}`)
	if w.Code != http.StatusOK {
		t.Fatalf("rotate: %d %s", w.Code, w.Body)
	}
	body := decodeObject(t, w)
	rot := body["token"].(map[string]any)
	plain, _ := rot["token"].(string)
	if body["message"] != "API token rotated successfully. Save this token securely - it cannot be retrieved later." ||
		plain == "" || plain == old || rot["rate_limit"] != float64(5) || rot["previous_expires_at"] != "2026-11-23T12:01:00Z" {
		t.Errorf("rotate response: %s", w.Body)
	}
	if err := verifyErr(e.m, old); err != nil {
		t.Errorf("old secret within the grace period: %v", err)
	}
	e.clk.Advance(time.Minute)
	if err := verifyErr(e.m, old); !errors.Is(err, apitoken.ErrTokenExpired) {
		t.Errorf("old secret after the grace period: %v", err)
	}
	if err := verifyErr(e.m, plain); err != nil {
		t.Errorf("new secret: %v", err)
	}
	// The plaintext is shown once: GET and the list never show it.
	for _, p := range []string{fmt.Sprintf("/%d", id), "/", fmt.Sprintf("/%d/audit", id), "/audit"} {
		if w := e.do(t, "GET", p, ""); strings.Contains(w.Body.String(), plain[len("atk_")+6:]) || strings.Contains(w.Body.String(), old[len("atk_")+6:]) {
			t.Errorf("GET %s shows a secret: %s", p, w.Body)
		}
	}
	// An empty body rotates with no grace period.
	if w := e.do(t, "POST", path, ""); w.Code != http.StatusOK {
		t.Fatalf("rotate without a body: %d %s", w.Code, w.Body)
	}
	if err := verifyErr(e.m, plain); !errors.Is(err, apitoken.ErrTokenExpired) {
		t.Errorf("the replaced secret after a rotation without grace: %v", err)
	}
}

func TestHandlerAudit(t *testing.T) {
	actor := "admin"
	e := newAdminEnv(t, func(r *http.Request) (string, error) {
		if r.Header.Get("Authorization") != "Bearer "+adminSecret {
			return "", apitoken.ErrUnauthorized
		}
		return actor, nil
	}, nil)
	w := e.do(t, "POST", "/", `{"name": "first", "rate_limit": 5}`)
	id := int64(decodeObject(t, w)["token"].(map[string]any)["id"].(float64))
	e.do(t, "POST", "/", `{"name": "second"}`)
	actor = "jwt:alice"
	e.clk.Advance(time.Hour)
	for _, rq := range []struct{ method, body string }{
		{"PUT", `{"active": false}`},
		{"PATCH", `{"active": true, "rate_limit": 10}`},
		{"POST", ""},
		{"DELETE", ""},
	} {
		p := fmt.Sprintf("/%d", id)
		if rq.method == "POST" {
			p += "/rotate"
		}
		if w := e.do(t, rq.method, p, rq.body); w.Code != http.StatusOK {
			t.Fatalf("%s %s: %d %s", rq.method, p, w.Code, w.Body)
		}
	}
	w = e.do(t, "GET", fmt.Sprintf("/%d/audit", id), "")
	if w.Code != http.StatusOK {
		t.Fatalf("audit of a deleted token: %d %s", w.Code, w.Body)
	}
	var got []string
	for _, x := range decodeObject(t, w)["entries"].([]any) {
		en := x.(map[string]any)
		var fields []string
		for _, c := range en["changes"].([]any) {
			c := c.(map[string]any)
			fields = append(fields, fmt.Sprintf("%s=%v", c["field"], c["to"]))
		}
		got = append(got, fmt.Sprintf("%s %s %s [%s]", en["action"], en["actor"], en["created_at"], strings.Join(fields, " ")))
	}
	wantPrefixes := []string{
		"delete jwt:alice 2026-11-23T13:00:00Z []",
		"rotate jwt:alice 2026-11-23T13:00:00Z [start=atk_",
		"update jwt:alice 2026-11-23T13:00:00Z [active=true rate_limit=10]",
		"disable jwt:alice 2026-11-23T13:00:00Z [active=false]",
		"create admin 2026-11-23T12:00:00Z [name=first active=true rate_limit=5]",
	}
	if len(got) != len(wantPrefixes) {
		t.Fatalf("audit entries:\n\t%s", strings.Join(got, "\n\t"))
	}
	for i := range got {
		if !strings.HasPrefix(got[i], wantPrefixes[i]) {
			t.Errorf("entry %d: %s, want %s...", i, got[i], wantPrefixes[i])
		}
	}
	all := decodeObject(t, e.do(t, "GET", "/audit?limit=2", ""))
	if all["total"] != float64(6) || len(all["entries"].([]any)) != 2 || all["limit"] != float64(2) {
		t.Errorf("GET /audit?limit=2: %v", all)
	}
	if w := e.do(t, "GET", "/999/audit", ""); w.Code != http.StatusNotFound {
		t.Errorf("audit of a token that never existed: %d", w.Code)
	}
	for _, p := range []string{"/audit?limit=0", "/audit?offset=x", fmt.Sprintf("/%d/audit?limit=-1", id)} {
		if w := e.do(t, "GET", p, ""); w.Code != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", p, w.Code)
		}
	}
}
