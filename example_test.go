package apitoken_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/memory"
)

// A service wraps its API with the middleware; a token created through the
// Manager is then checked, limited and recorded on every request.
func Example() {
	ctx := context.Background()
	m, _ := apitoken.NewManager(memory.New())
	defer m.Close(ctx)

	limit := 2
	_, plaintext, _ := m.Create(ctx, apitoken.CreateParams{
		Name:             "WordPress Plugin - Main Site",
		RateLimit:        &limit,
		AllowedEndpoints: []string{"/products*", "/stores*", "/categories*"},
	})

	api := http.NewServeMux()
	api.HandleFunc("GET /api/products", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := apitoken.FromContext(r.Context())
		fmt.Fprintf(w, "products for %s", tok.Name)
	})
	handler := apitoken.Middleware(m, apitoken.WithBasePath("/api"))(api)

	for _, path := range []string{"/api/products", "/api/orders", "/api/products", "/api/products"} {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+plaintext)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		body, _ := io.ReadAll(w.Body)
		fmt.Printf("%s %d remaining=%s %s\n", path, w.Code, w.Header().Get("X-RateLimit-Remaining"), strings.TrimSpace(string(body)))
	}
	// Output:
	// /api/products 200 remaining=1 products for WordPress Plugin - Main Site
	// /api/orders 403 remaining=1 {"error":"Endpoint not allowed"}
	// /api/products 200 remaining=0 products for WordPress Plugin - Main Site
	// /api/products 429 remaining=0 {"error":"Rate limit exceeded","limit":2,"current":3,"retry_after":60}
}

func ExampleManager_Verify() {
	ctx := context.Background()
	m, _ := apitoken.NewManager(memory.New())
	defer m.Close(ctx)
	tok, plaintext, _ := m.Create(ctx, apitoken.CreateParams{Name: "iOS App - Production"})

	got, err := m.Verify(ctx, plaintext)
	fmt.Println(got.Name, err)

	typo := []byte(plaintext)
	typo[10] ^= 1                        // another base62 character
	_, err = m.Verify(ctx, string(typo)) // the checksum fails: no store lookup

	fmt.Println(errors.Is(err, apitoken.ErrInvalidToken))

	_, _ = m.Update(ctx, tok.ID, apitoken.Update{Active: apitoken.Set(false)})
	_, err = m.Verify(ctx, plaintext)
	fmt.Println(err)
	// Output:
	// iOS App - Production <nil>
	// true
	// apitoken: token is disabled
}

func ExampleManager_Update() {
	ctx := context.Background()
	m, _ := apitoken.NewManager(memory.New())
	defer m.Close(ctx)
	tok, _, _ := m.Create(ctx, apitoken.CreateParams{Name: "WordPress Plugin - Main Site"})

	// Only the fields that are Set change, as with the spec's PUT body.
	tok, _ = m.Update(ctx, tok.ID, apitoken.Update{
		Name:      apitoken.Set("WordPress Plugin - Main Site (Updated)"),
		Active:    apitoken.Set(false),
		RateLimit: apitoken.Set(300),
	})
	fmt.Println(tok.Name, tok.Active, tok.RateLimit)
	// Output: WordPress Plugin - Main Site (Updated) false 300
}

func ExampleParseExpiry() {
	t, _ := apitoken.ParseExpiry("2026-12-31")
	fmt.Println(t.Format("2006-01-02T15:04:05.000Z07:00"))
	_, err := apitoken.ParseExpiry("31/12/2026")
	fmt.Println(err)
	// Output:
	// 2026-12-31T00:00:00.000Z
	// apitoken: invalid expires_at: "31/12/2026" is neither a date (2026-12-31) nor an RFC 3339 time (2026-12-31T00:00:00Z)
}

func ExampleScannerRegexp() {
	re := regexp.MustCompile(apitoken.ScannerRegexp("atk"))
	fmt.Println(re.String())
	fmt.Println(re.MatchString("key = atk_0000000000000000000000000000000000000000000000000"))
	// Output:
	// \batk_[0-9A-Za-z]{49}\b
	// true
}

// Rotating a token: the new secret works at once, the old one until the
// grace period ends. Every change lands in the audit log with its actor.
func ExampleManager_Rotate() {
	ctx := apitoken.WithActor(context.Background(), "ops@example.com")
	m, _ := apitoken.NewManager(memory.New())
	defer m.Close(ctx)

	tok, oldSecret, _ := m.Create(ctx, apitoken.CreateParams{Name: "Billing worker"})
	_, newSecret, _ := m.Rotate(ctx, tok.ID, time.Hour)

	_, errOld := m.Verify(ctx, oldSecret)
	_, errNew := m.Verify(ctx, newSecret)
	fmt.Println("old secret:", errOld == nil, "new secret:", errNew == nil)

	entries, _, _ := m.Audit(ctx, apitoken.AuditQuery{TokenID: tok.ID})
	for _, e := range entries {
		fmt.Println(e.Action, "by", e.Actor, len(e.Changes), "changed fields")
	}
	// Output:
	// old secret: true new secret: true
	// rotate by ops@example.com 2 changed fields
	// create by ops@example.com 3 changed fields
}
