package apitoken_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apitoken/apitoken"
)

// fuzzBodies seed both targets: the spec's bodies and near misses.
var fuzzBodies = []string{
	`{"name": "WordPress Plugin - Main Site", "description": "Token for the main WordPress website", "rate_limit": 200, "expires_at": "2026-12-31", "allowed_endpoints": ["/products*", "/stores*", "/categories*"]}`,
	`{"name": "WordPress Plugin - Main Site (Updated)", "active": false, "rate_limit": 300}`,
	`{"name": "iOS App - Production", "rate_limit": 500, "allowed_endpoints": null}`,
	`{"name": "x", "expires_at": null, "scopes": ["a"], "metadata": {"k": "v"}, "user_id": "7"}`,
	`{"name": "x", "expires_at": "9999-12-31T23:59:59.999999999-23:59"}`,
	`{"name": "x", "expires_at": "2027-01-01T00:00:00+14:00", "rate_limit": 1000000000}`,
	`{"name": "x", "allowed_endpoints": ["GET /a/**", "/b/{c}", "/[a-"]}`,
	`{"name": "\u0000", "rate_limit": -1, "bogus": true}`,
	`{"name": "x"} trailing`,
	`{"rate_limit": 1e400}`,
	`{}`, `[]`, `null`, ``, `{`, `"x"`,
}

// checkFuzzResponse fails on a 5xx or a body that is not a JSON object.
func checkFuzzResponse(t *testing.T, w *httptest.ResponseRecorder, body []byte) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body.String())
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || v == nil {
		t.Fatalf("response %q for body %q is not a JSON object", w.Body.String(), body)
	}
	if w.Code >= 400 {
		if _, ok := v["error"]; !ok || len(v) != 1 {
			t.Fatalf("error response %q", w.Body.String())
		}
	}
}

func FuzzCreateBody(f *testing.F) {
	for _, b := range fuzzBodies {
		f.Add([]byte(b))
	}
	e := newAdminEnv(f, nil, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
		r.Header.Set("Authorization", "Bearer "+adminSecret)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		checkFuzzResponse(t, w, body)
		if w.Code != http.StatusCreated {
			return
		}
		// A created token is readable back and shows what was stored.
		var resp struct {
			Token struct {
				ID    int64  `json:"id"`
				Token string `json:"token"`
			} `json:"token"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.Token.Token == "" {
			t.Fatalf("201 body %q", w.Body.String())
		}
		g := e.do(t, "GET", fmt.Sprintf("/%d", resp.Token.ID), "")
		if g.Code != http.StatusOK {
			t.Fatalf("GET of a created token: %d %s", g.Code, g.Body.String())
		}
		_ = e.m.Delete(context.Background(), resp.Token.ID) // keep the store small
	})
}

func FuzzUpdateBody(f *testing.F) {
	for _, b := range fuzzBodies {
		f.Add([]byte(b), "PUT")
		f.Add([]byte(b), "PATCH")
	}
	e := newAdminEnv(f, nil, nil)
	tok, _, err := e.m.Create(context.Background(), apitoken.CreateParams{Name: "fuzz target"})
	if err != nil {
		f.Fatal(err)
	}
	path := fmt.Sprintf("/%d", tok.ID)
	f.Fuzz(func(t *testing.T, body []byte, method string) {
		if method != "PATCH" {
			method = "PUT"
		}
		before, err := e.m.Get(context.Background(), tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(method, path, strings.NewReader(string(body)))
		r.Header.Set("Authorization", "Bearer "+adminSecret)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		checkFuzzResponse(t, w, body)
		after, err := e.m.Get(context.Background(), tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusOK && !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Fatalf("status %d but the token changed (body %q)", w.Code, body)
		}
		// Name must stay set, so later iterations always have a token.
		if after.Name == "" {
			t.Fatalf("update left an empty name (body %q)", body)
		}
	})
}

func FuzzRotateBody(f *testing.F) {
	for _, b := range []string{``, `{}`, `{"grace_period_seconds": 3600}`, `{"grace_period_seconds": 0}`,
		`{"grace_period_seconds": 2592000}`, `{"grace_period_seconds": 2592001}`, `{"grace_period_seconds": -1}`,
		`{"grace_period_seconds": 1e3}`, `{"grace_period_seconds": null}`, `{"grace_period_seconds": "60"}`,
		`{"grace": 60}`, `{"grace_period_seconds": 9223372036854775808}`, `[]`, `null`, `{`, `{} {}`} {
		f.Add([]byte(b))
	}
	e := newAdminEnv(f, nil, nil)
	tok, _, err := e.m.Create(context.Background(), apitoken.CreateParams{Name: "fuzz target"})
	if err != nil {
		f.Fatal(err)
	}
	path := fmt.Sprintf("/%d/rotate", tok.ID)
	f.Fuzz(func(t *testing.T, body []byte) {
		before, err := e.m.Get(context.Background(), tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("POST", path, strings.NewReader(string(body)))
		r.Header.Set("Authorization", "Bearer "+adminSecret)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		checkFuzzResponse(t, w, body)
		after, err := e.m.Get(context.Background(), tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusOK {
			if after.Start != before.Start {
				t.Fatalf("status %d but the secret changed (body %q)", w.Code, body)
			}
			return
		}
		var resp struct {
			Token struct {
				Token string `json:"token"`
			} `json:"token"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.Verify(context.Background(), resp.Token.Token); err != nil {
			t.Fatalf("the new secret of body %q does not verify: %v", body, err)
		}
	})
}
