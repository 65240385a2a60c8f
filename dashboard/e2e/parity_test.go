package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// formCase is what an administrator types into the token form.
type formCase struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	RateLimit   string `json:"rateLimit"`
	Expires     string `json:"expires"`
	Endpoints   string `json:"endpoints"`
}

func parityCases() []formCase {
	future := time.Now().UTC().AddDate(0, 1, 0).Format("2006-01-02")
	today := time.Now().UTC().Format("2006-01-02")
	ok := func(mod func(*formCase)) formCase {
		c := formCase{Name: "Parity", RateLimit: "100", Expires: future, Endpoints: "/products*"}
		mod(&c)
		return c
	}
	many := strings.Repeat("/p*\n", 101)
	return []formCase{
		ok(func(*formCase) {}),
		ok(func(c *formCase) { c.RateLimit, c.Expires, c.Endpoints = "", "", "" }),
		ok(func(c *formCase) { c.Name = "   " }),
		ok(func(c *formCase) { c.Name = strings.Repeat("é", 255) }),
		ok(func(c *formCase) { c.Name = strings.Repeat("é", 256) }),
		ok(func(c *formCase) { c.Name = "nul\x00" }),
		ok(func(c *formCase) { c.Description = strings.Repeat("d", 4096) }),
		ok(func(c *formCase) { c.Description = strings.Repeat("d", 4097) }),
		ok(func(c *formCase) { c.RateLimit = "0" }),
		ok(func(c *formCase) { c.RateLimit = "1000000000" }),
		ok(func(c *formCase) { c.RateLimit = "1000000001" }),
		ok(func(c *formCase) { c.RateLimit = "-1" }),
		ok(func(c *formCase) { c.RateLimit = "1.5" }),
		ok(func(c *formCase) { c.RateLimit = "abc" }),
		ok(func(c *formCase) { c.Expires = "2020-01-01" }),
		ok(func(c *formCase) { c.Expires = today }),
		ok(func(c *formCase) { c.Expires = "2030-02-30" }),
		ok(func(c *formCase) { c.Expires = "31.12.2030" }),
		ok(func(c *formCase) { c.Endpoints = "products" }),
		ok(func(c *formCase) { c.Endpoints = "GET /orders" }),
		ok(func(c *formCase) { c.Endpoints = "get /orders" }),
		ok(func(c *formCase) { c.Endpoints = "GET  /orders" }),
		ok(func(c *formCase) { c.Endpoints = "/a/../b" }),
		ok(func(c *formCase) { c.Endpoints = "/a/*x*" }),
		ok(func(c *formCase) { c.Endpoints = "/a*b*" }),
		ok(func(c *formCase) { c.Endpoints = "/a/**/b/**/c" }),
		ok(func(c *formCase) { c.Endpoints = "/a/**/b" }),
		ok(func(c *formCase) { c.Endpoints = "/a/**" }),
		ok(func(c *formCase) { c.Endpoints = "/{a,{b}}" }),
		ok(func(c *formCase) { c.Endpoints = "/{a,b}{c,d}" }),
		ok(func(c *formCase) { c.Endpoints = "/{a,b}/{c,d}" }),
		ok(func(c *formCase) { c.Endpoints = "/a/{b,c*}" }),
		ok(func(c *formCase) { c.Endpoints = "/[abc" }),
		ok(func(c *formCase) { c.Endpoints = "/{a,b" }),
		ok(func(c *formCase) { c.Endpoints = "/a[*]b" }),
		ok(func(c *formCase) { c.Endpoints = `/x\*y*` }),
		ok(func(c *formCase) { c.Endpoints = "/stores/*/brands\n\n  /categories*  " }),
		ok(func(c *formCase) { c.Endpoints = many }),
		ok(func(c *formCase) { c.Endpoints = "/" + strings.Repeat("a", 1024) }),
	}
}

// serverBody is the JSON the form's values would be if sent as they are.
func serverBody(c formCase) []byte {
	m := map[string]any{"name": c.Name}
	if c.Description != "" {
		m["description"] = c.Description
	}
	if c.RateLimit != "" {
		if json.Valid([]byte(c.RateLimit)) {
			m["rate_limit"] = json.RawMessage(c.RateLimit)
		} else {
			m["rate_limit"] = c.RateLimit
		}
	}
	if c.Expires != "" {
		m["expires_at"] = c.Expires
	}
	var eps []string
	for _, l := range strings.Split(c.Endpoints, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			eps = append(eps, l)
		}
	}
	if eps != nil {
		m["allowed_endpoints"] = eps
	}
	b, _ := json.Marshal(m)
	return b
}

// checkValidationParity runs the form's client-side validation (validate.js,
// in the page) and the server on the same inputs: each must accept exactly
// what the other accepts.
func checkValidationParity(t *testing.T, b *browser, base string) {
	t.Helper()
	cases := parityCases()
	in, _ := json.Marshal(cases)
	var client [][]string
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.Evaluate[string](`import('./validate.js').then((m) => JSON.stringify(`+string(in)+`.map((c) => Object.values(m.validateToken(c).errors))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("running validate.js: %v", err)
	}
	if err := json.Unmarshal([]byte(res), &client); err != nil {
		t.Fatal(err)
	}
	t.Logf("validation parity: %d form inputs, client and server", len(cases))
	for i, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/api-tokens", bytes.NewReader(serverBody(c)))
		req.Header.Set("Authorization", "Bearer "+adminSecret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Token struct{ ID int64 } `json:"token"`
			Error string             `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		serverOK := resp.StatusCode == http.StatusCreated
		if serverOK {
			del, _ := http.NewRequest(http.MethodDelete, base+"/api/api-tokens/"+strconv.FormatInt(out.Token.ID, 10), nil)
			del.Header.Set("Authorization", "Bearer "+adminSecret)
			if r, err := http.DefaultClient.Do(del); err == nil {
				r.Body.Close()
			}
		} else if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("case %d: server answered %d", i, resp.StatusCode)
			continue
		}
		clientOK := len(client[i]) == 0
		if clientOK != serverOK {
			t.Errorf("case %d %s: client accepts=%v %q, server accepts=%v %q", i, short(c), clientOK, client[i], serverOK, out.Error)
		}
	}
}

func short(c formCase) string {
	b, _ := json.Marshal(c)
	if len(b) > 160 {
		return fmt.Sprintf("%s…", b[:160])
	}
	return string(b)
}
