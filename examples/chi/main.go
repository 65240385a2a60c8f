// Command chi is the apitoken demo API on chi. chi needs no adapter: its
// middleware is func(http.Handler) http.Handler, so apitoken.Middleware is
// used as it is, with a route function that reads chi's route pattern.
//
//	go run ./examples/chi
//
// It listens on $ADDR (default 127.0.0.1:8080) and serves a small product
// catalogue under /api behind apitoken.Middleware with base path /api. The
// admin API (apitoken.NewHandler) is mounted at /api/api-tokens,
// authorized by $ADMIN_TOKEN (a secret is generated and printed once when it
// is unset). Tokens and usage live in memory.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/go-chi/chi/v5"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/examples/internal/demo"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chi example:", err)
		os.Exit(1)
	}
}

// run starts the server and blocks until SIGINT/SIGTERM or ctx ends.
func run(ctx context.Context, getenv func(string) string, out io.Writer) error {
	return demo.Run(ctx, "chi", getenv, out, func(m *apitoken.Manager, secret string) (http.Handler, error) {
		return newHandler(m, secret)
	})
}

// chiRoute is the route function for chi: the pattern of the matched route,
// e.g. "/api/products/{id}" (the middleware makes it relative to the base
// path). The middleware calls it after the handler has returned, when chi
// has finished routing through every subrouter, so the pattern is complete.
func chiRoute(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		return rc.RoutePattern()
	}
	return ""
}

// newHandler is the chi router: the admin API at /api/api-tokens, authorized
// by adminSecret, and the demo routes under /api behind the middleware. opts
// are added to the middleware's (tests use them to capture usage events).
func newHandler(m *apitoken.Manager, adminSecret string, opts ...apitoken.MiddlewareOption) (http.Handler, error) {
	admin, err := apitoken.NewHandler(m, apitoken.StaticSecret(adminSecret), apitoken.WithMountPath("/api/api-tokens"))
	if err != nil {
		return nil, err
	}
	mwOpts := append([]apitoken.MiddlewareOption{apitoken.WithBasePath("/api"), apitoken.WithRouteFunc(chiRoute)}, opts...)
	mw := apitoken.Middleware(m, mwOpts...)

	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	r.Route("/api", func(r chi.Router) {
		// The admin API (the spec's /api/api-tokens endpoints) is
		// authorized by the admin secret, never by an API token: it is
		// outside the group that uses the middleware.
		r.Handle("/api-tokens", admin)
		r.Handle("/api-tokens/*", admin)

		r.Group(func(r chi.Router) {
			r.Use(mw)
			r.Get("/products", list("products", "Espresso machine", "Grinder", "Kettle"))
			r.Get("/products/{id}", item("product"))
			r.Get("/products/meta/brands", list("brands", "Acme", "Globex"))
			r.Get("/stores", list("stores", "Berlin", "Lisbon"))
			r.Get("/stores/{id}/brands", list("brands", "Acme"))
			r.Get("/categories", list("categories", "Coffee", "Tea"))
			r.Get("/orders", list("orders", "#1001", "#1002"))
			r.Get("/whoami", func(w http.ResponseWriter, r *http.Request) {
				tok, _ := apitoken.FromContext(r.Context())
				demo.WriteJSON(w, demo.Whoami(tok))
			})
		})
	})
	return r, nil
}

func list(kind string, names ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { demo.WriteJSON(w, demo.List(kind, names...)) }
}

func item(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		demo.WriteJSON(w, demo.Item(kind, chi.URLParam(r, "id")))
	}
}
