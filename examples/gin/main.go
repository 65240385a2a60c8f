// Command gin is the apitoken demo API on gin, using adapters/gin.
//
//	go run ./examples/gin
//
// It listens on $ADDR (default 127.0.0.1:8080) and serves a small product
// catalogue under /api behind apitokengin.Middleware with base path /api.
// The admin API is mounted at /api/api-tokens with apitokengin.Mount,
// authorized by $ADMIN_TOKEN (a secret is generated and printed once when it
// is unset). Tokens and usage live in memory.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/gin-gonic/gin"

	"github.com/apitoken/apitoken"
	apitokengin "github.com/apitoken/apitoken/adapters/gin"
	"github.com/apitoken/apitoken/examples/internal/demo"
)

func main() {
	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode)
	}
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gin example:", err)
		os.Exit(1)
	}
}

// run starts the server and blocks until SIGINT/SIGTERM or ctx ends.
func run(ctx context.Context, getenv func(string) string, out io.Writer) error {
	return demo.Run(ctx, "gin", getenv, out, func(m *apitoken.Manager, secret string) (http.Handler, error) {
		return newHandler(m, secret)
	})
}

// newHandler is the gin engine: the admin API at /api/api-tokens, authorized
// by adminSecret, and the demo routes under /api behind the middleware. opts
// are added to the middleware's (tests use them to capture usage events).
func newHandler(m *apitoken.Manager, adminSecret string, opts ...apitoken.MiddlewareOption) (http.Handler, error) {
	admin, err := apitoken.NewHandler(m, apitoken.StaticSecret(adminSecret), apitoken.WithMountPath("/api/api-tokens"))
	if err != nil {
		return nil, err
	}
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })

	api := r.Group("/api")
	// The admin API (the spec's /api/api-tokens endpoints) is authorized by
	// the admin secret, never by an API token: it is outside the group that
	// uses the middleware.
	apitokengin.Mount(api, "/api-tokens", admin)

	mwOpts := append([]apitoken.MiddlewareOption{apitoken.WithBasePath("/api")}, opts...)
	routes := api.Group("", apitokengin.Middleware(m, mwOpts...))
	routes.GET("/products", list("products", "Espresso machine", "Grinder", "Kettle"))
	routes.GET("/products/:id", item("product"))
	routes.GET("/products/meta/brands", list("brands", "Acme", "Globex"))
	routes.GET("/stores", list("stores", "Berlin", "Lisbon"))
	routes.GET("/stores/:id/brands", list("brands", "Acme"))
	routes.GET("/categories", list("categories", "Coffee", "Tea"))
	routes.GET("/orders", list("orders", "#1001", "#1002"))
	routes.GET("/whoami", func(c *gin.Context) {
		tok, _ := apitokengin.Token(c)
		c.JSON(http.StatusOK, demo.Whoami(tok))
	})
	return r, nil
}

func list(kind string, names ...string) gin.HandlerFunc {
	return func(c *gin.Context) { c.JSON(http.StatusOK, demo.List(kind, names...)) }
}

func item(kind string) gin.HandlerFunc {
	return func(c *gin.Context) { c.JSON(http.StatusOK, demo.Item(kind, c.Param("id"))) }
}
