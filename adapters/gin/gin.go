// Package apitokengin runs the apitoken middleware in a gin chain.
//
//	r := gin.New()
//	api := r.Group("/api")
//	apitokengin.Mount(api, "/api-tokens", admin) // admin built with apitoken.WithMountPath("/api/api-tokens")
//	demo := api.Group("", apitokengin.Middleware(m, apitoken.WithBasePath("/api")))
//	demo.GET("/products/:id", func(c *gin.Context) {
//		tok, _ := apitokengin.Token(c)
//		...
//	})
//
// The usage Event's Route is gin's route pattern (c.FullPath()) relative to
// the base path, in gin's own syntax: "/products/:id", "/files/*path". It is
// not rewritten to the "{id}" form of net/http and chi, so that it names the
// route exactly as the service registered it.
//
// It is a module of its own (go get github.com/apitoken/apitoken/adapters/gin),
// so that only a service that uses gin has gin in its module graph.
package apitokengin

import (
	"bufio"
	"context"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/apitoken/apitoken"
)

// Middleware returns apitoken.Middleware as a gin.HandlerFunc. Options are
// the core's; the route reported for usage defaults to c.FullPath() (an
// apitoken.WithRouteFunc option replaces it).
//
// A refused request gets the core's response (the spec's JSON error) and the
// chain is aborted. An accepted request has c.Request replaced by the request
// carrying the token (see Token and apitoken.FromContext), and the rest of
// the chain runs inside the core middleware, so the usage Event has the
// status code and response size that the later handlers wrote. The status is
// taken when the response is committed or, if the handlers wrote no body,
// when the chain returns (so c.Status(204) alone is recorded as 204).
func Middleware(m *apitoken.Manager, opts ...apitoken.MiddlewareOption) gin.HandlerFunc {
	all := make([]apitoken.MiddlewareOption, 0, len(opts)+1)
	all = append(all, apitoken.WithRouteFunc(Route))
	all = append(all, opts...)
	h := apitoken.Middleware(m, all...)(http.HandlerFunc(serveNext))
	return func(c *gin.Context) {
		// The call rides in the request's context to serveNext and Route.
		call := &ginCall{c: c}
		r := c.Request
		h.ServeHTTP(c.Writer, r.WithContext(context.WithValue(r.Context(), ginKey{}, call)))
		if !call.served {
			c.Abort()
		}
	}
}

// Route returns gin's route pattern (c.FullPath()) of a request that went
// through Middleware, or "" for any other request. It is Middleware's default
// route function.
func Route(r *http.Request) string {
	if call, ok := r.Context().Value(ginKey{}).(*ginCall); ok {
		return call.c.FullPath()
	}
	return ""
}

// Token returns the verified token of the request, set by Middleware. It is
// shared: do not modify it.
func Token(c *gin.Context) (*apitoken.Token, bool) {
	if c == nil || c.Request == nil {
		return nil, false
	}
	return apitoken.FromContext(c.Request.Context())
}

// Mount routes every method for path and everything under it (path+"/...")
// on r to h, typically the admin handler of apitoken.NewHandler. h sees the
// full request path, so build it with apitoken.WithMountPath set to the
// group's base path joined with path (e.g. "/api/api-tokens"). Mount it
// outside the groups that use Middleware: the admin API is authorized by its
// own Authorizer, never by an API token.
func Mount(r gin.IRoutes, path string, h http.Handler) {
	wrapped := gin.WrapH(h)
	for len(path) > 1 && path[len(path)-1] == '/' {
		path = path[:len(path)-1]
	}
	r.Any(path, wrapped)
	if path == "/" {
		r.Any("/*rest", wrapped)
		return
	}
	r.Any(path+"/*rest", wrapped)
}

// ginKey is the context key of the request's ginCall during Middleware.
type ginKey struct{}

// ginCall is one request through Middleware: its gin context, and whether
// the core passed it on (a refused request aborts the chain).
type ginCall struct {
	c      *gin.Context
	served bool
}

// serveNext is the core middleware's next handler: it runs the rest of the
// gin chain with c.Writer writing through the core's recording writer w.
func serveNext(w http.ResponseWriter, r *http.Request) {
	call := r.Context().Value(ginKey{}).(*ginCall)
	call.served = true
	c := call.c
	c.Request = r
	orig := c.Writer
	gw := &writer{ResponseWriter: orig, rec: w}
	c.Writer = gw
	defer func() { c.Writer = orig }()
	c.Next()
	gw.commit() // the handlers set a status (or none) but wrote nothing
}

// writer is the gin.ResponseWriter of the handlers after Middleware. gin's
// writer keeps the status until the response is committed (a later
// c.Status or c.JSON may change it), so writer hands the status to the
// recording writer rec only when something is written, and sends every
// byte through rec. Status, Size and Written come from gin's writer, which
// sees everything rec writes.
type writer struct {
	gin.ResponseWriter
	rec       http.ResponseWriter
	committed bool
}

var _ gin.ResponseWriter = (*writer)(nil)

// commit gives rec the status gin holds, once.
func (w *writer) commit() {
	if !w.committed {
		w.committed = true
		w.rec.WriteHeader(w.ResponseWriter.Status())
	}
}

func (w *writer) Write(b []byte) (int, error) {
	w.commit()
	return w.rec.Write(b)
}

func (w *writer) WriteString(s string) (int, error) {
	w.commit()
	if sw, ok := w.rec.(interface{ WriteString(string) (int, error) }); ok {
		return sw.WriteString(s)
	}
	return w.rec.Write([]byte(s))
}

func (w *writer) WriteHeaderNow() {
	w.commit()
	w.ResponseWriter.WriteHeaderNow()
}

func (w *writer) Flush() {
	w.commit()
	_ = http.NewResponseController(w.rec).Flush()
}

func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.rec).Hijack()
	if err == nil {
		w.committed = true // the recorder has recorded 101
	}
	return conn, rw, err
}

// Unwrap returns the recording writer, for http.ResponseController.
func (w *writer) Unwrap() http.ResponseWriter { return w.rec }
