// Package apitokenecho runs the apitoken middleware in an Echo (v4) chain.
//
//	e := echo.New()
//	apitokenecho.Mount(e, "/api/api-tokens", admin) // admin built with apitoken.WithMountPath("/api/api-tokens")
//	api := e.Group("/api", apitokenecho.Middleware(m, apitoken.WithBasePath("/api")))
//	api.GET("/products/:id", func(c echo.Context) error {
//		tok, _ := apitokenecho.Token(c)
//		...
//	})
//
// The usage Event's Route is Echo's route pattern (c.Path()) relative to the
// base path, in Echo's own syntax: "/products/:id", "/files/*". It is not
// rewritten to the "{id}" form of net/http and chi, so that it names the
// route exactly as the service registered it.
//
// It is a module of its own (go get github.com/apitoken/apitoken/adapters/echo),
// so that only a service that uses Echo has Echo in its module graph.
package apitokenecho

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/apitoken/apitoken"
)

// Middleware returns apitoken.Middleware as an echo.MiddlewareFunc. Options
// are the core's; the route reported for usage defaults to c.Path() (an
// apitoken.WithRouteFunc option replaces it).
//
// A refused request gets the core's response (the spec's JSON error) and the
// next handler is not called. An accepted request has its request replaced by
// the one carrying the token (see Token and apitoken.FromContext), and the
// next handler runs inside the core middleware with a Response that writes
// through the core's recording writer, so the usage Event has the status code
// and response size the handler wrote. An error returned by the next handler
// is passed to c.Error (Echo's HTTPErrorHandler) there and then, so that the
// error response is the one recorded; the middleware then returns nil.
func Middleware(m *apitoken.Manager, opts ...apitoken.MiddlewareOption) echo.MiddlewareFunc {
	all := make([]apitoken.MiddlewareOption, 0, len(opts)+1)
	all = append(all, apitoken.WithRouteFunc(Route))
	all = append(all, opts...)
	h := apitoken.Middleware(m, all...)(http.HandlerFunc(serveNext))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			// The state rides in the request's context to serveNext and
			// Route.
			st := &reqState{c: c, next: next}
			r := c.Request()
			h.ServeHTTP(c.Response(), r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
			return nil
		}
	}
}

// Route returns Echo's route pattern (c.Path()) of a request that went
// through Middleware, or "" for any other request. It is Middleware's default
// route function.
func Route(r *http.Request) string {
	if st, ok := r.Context().Value(stateKey{}).(*reqState); ok {
		return st.c.Path()
	}
	return ""
}

// Token returns the verified token of the request, set by Middleware. It is
// shared: do not modify it.
func Token(c echo.Context) (*apitoken.Token, bool) {
	if c == nil || c.Request() == nil {
		return nil, false
	}
	return apitoken.FromContext(c.Request().Context())
}

// Router is what Mount registers routes on: *echo.Echo and *echo.Group.
type Router interface {
	Any(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) []*echo.Route
}

var (
	_ Router = (*echo.Echo)(nil)
	_ Router = (*echo.Group)(nil)
)

// Mount routes every method for path and everything under it (path+"/...")
// on r to h, typically the admin handler of apitoken.NewHandler. h sees the
// full request path, so build it with apitoken.WithMountPath set to the
// group's prefix joined with path (e.g. "/api/api-tokens"). Mount it where
// Middleware does not run (on the Echo, or a group without it): the admin
// API is authorized by its own Authorizer, never by an API token.
func Mount(r Router, path string, h http.Handler) {
	wrapped := echo.WrapHandler(h)
	for len(path) > 1 && path[len(path)-1] == '/' {
		path = path[:len(path)-1]
	}
	if path == "/" {
		path = ""
	}
	if path != "" {
		r.Any(path, wrapped)
	}
	r.Any(path+"/*", wrapped)
}

type stateKey struct{}

// reqState is what serveNext and the route function need of a request during
// Middleware: the Echo context and the next handler.
type reqState struct {
	c    echo.Context
	next echo.HandlerFunc
}

// serveNext is the core middleware's next handler. w is the core's recording
// writer around Echo's Response; the next handler gets a Response that
// writes to w, so the bytes go through the recorder and on to the original
// Response, which keeps its Status, Size and Committed for the middlewares
// before this one.
func serveNext(w http.ResponseWriter, r *http.Request) {
	st := r.Context().Value(stateKey{}).(*reqState)
	c := st.c
	c.SetRequest(r)
	orig := c.Response()
	c.SetResponse(echo.NewResponse(w, c.Echo()))
	defer c.SetResponse(orig)
	if err := st.next(c); err != nil {
		c.Error(err)
	}
}
