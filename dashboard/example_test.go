package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/dashboard"
	"github.com/apitoken/apitoken/store/memory"
)

// The dashboard is mounted beside the admin API; it calls the API at the
// parent of its own path.
func Example() {
	m, err := apitoken.NewManager(memory.New())
	if err != nil {
		panic(err)
	}
	defer m.Close(context.Background())
	admin, err := apitoken.NewHandler(m, apitoken.StaticSecret("s3cret"), apitoken.WithMountPath("/api/api-tokens"))
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/api/api-tokens", admin)
	mux.Handle("/api/api-tokens/", admin)
	mux.Handle("/api/api-tokens/ui/", dashboard.MustNew(dashboard.WithMountPath("/api/api-tokens/ui")))

	for _, path := range []string{"/api/api-tokens/ui", "/api/api-tokens/ui/", "/api/api-tokens/ui/app.js"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		fmt.Println(path, rec.Code, rec.Header().Get("Content-Type"))
	}
	// Output:
	// /api/api-tokens/ui 307 text/html; charset=utf-8
	// /api/api-tokens/ui/ 200 text/html; charset=utf-8
	// /api/api-tokens/ui/app.js 200 text/javascript; charset=utf-8
}

// Behind http.StripPrefix the dashboard needs no mount path; it then finds
// the admin API with a path relative to the page ("..").
func ExampleNew_stripPrefix() {
	ui, err := dashboard.New()
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/tokens/ui/", http.StripPrefix("/admin/tokens/ui", ui))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/admin/tokens/ui/style.css", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	// Output:
	// 200 text/css; charset=utf-8
}

// An admin API elsewhere: its origin is added to the page's
// Content-Security-Policy, and it must allow the page's origin by CORS.
func ExampleWithAPIBase() {
	ui, err := dashboard.New(dashboard.WithAPIBase("https://admin.example.com/api/api-tokens"))
	if err != nil {
		panic(err)
	}
	rec := httptest.NewRecorder()
	ui.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	fmt.Println(rec.Code)
	// Output:
	// 200
}
