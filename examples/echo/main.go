// Command echo is the apitoken demo API on Echo, using adapters/echo.
//
//	go run ./examples/echo
//
// It listens on $ADDR (default 127.0.0.1:8080) and serves a small product
// catalogue under /api behind apitokenecho.Middleware with base path /api.
// The admin API is mounted at /api/api-tokens with apitokenecho.Mount,
// authorized by $ADMIN_TOKEN (a secret is generated and printed once when it
// is unset). Tokens and usage live in memory.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/labstack/echo/v4"

	"github.com/apitoken/apitoken"
	apitokenecho "github.com/apitoken/apitoken/adapters/echo"
	"github.com/apitoken/apitoken/examples/internal/demo"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "echo example:", err)
		os.Exit(1)
	}
}

// run starts the server and blocks until SIGINT/SIGTERM or ctx ends.
func run(ctx context.Context, getenv func(string) string, out io.Writer) error {
	return demo.Run(ctx, "echo", getenv, out, func(m *apitoken.Manager, secret string) (http.Handler, error) {
		return newHandler(m, secret)
	})
}

// newHandler is the Echo server: the admin API at /api/api-tokens,
// authorized by adminSecret, and the demo routes under /api behind the
// middleware. opts are added to the middleware's (tests use them to capture
// usage events).
func newHandler(m *apitoken.Manager, adminSecret string, opts ...apitoken.MiddlewareOption) (http.Handler, error) {
	admin, err := apitoken.NewHandler(m, apitoken.StaticSecret(adminSecret), apitoken.WithMountPath("/api/api-tokens"))
	if err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	// The admin API (the spec's /api/api-tokens endpoints) is authorized by
	// the admin secret, never by an API token: it is registered on the Echo,
	// outside the group that uses the middleware. Echo prefers this static
	// route to the group's catch-all.
	apitokenecho.Mount(e, "/api/api-tokens", admin)

	mwOpts := append([]apitoken.MiddlewareOption{apitoken.WithBasePath("/api")}, opts...)
	api := e.Group("/api", apitokenecho.Middleware(m, mwOpts...))
	api.GET("/products", list("products", "Espresso machine", "Grinder", "Kettle"))
	api.GET("/products/:id", item("product"))
	api.GET("/products/meta/brands", list("brands", "Acme", "Globex"))
	api.GET("/stores", list("stores", "Berlin", "Lisbon"))
	api.GET("/stores/:id/brands", list("brands", "Acme"))
	api.GET("/categories", list("categories", "Coffee", "Tea"))
	api.GET("/orders", list("orders", "#1001", "#1002"))
	api.GET("/whoami", func(c echo.Context) error {
		tok, _ := apitokenecho.Token(c)
		return c.JSON(http.StatusOK, demo.Whoami(tok))
	})
	return e, nil
}

func list(kind string, names ...string) echo.HandlerFunc {
	return func(c echo.Context) error { return c.JSON(http.StatusOK, demo.List(kind, names...)) }
}

func item(kind string) echo.HandlerFunc {
	return func(c echo.Context) error { return c.JSON(http.StatusOK, demo.Item(kind, c.Param("id"))) }
}
