package apitoken

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apitoken/apitoken/internal/clientip"
	"github.com/apitoken/apitoken/internal/pathmatch"
)

// ErrorHandler writes the response for a refused request. err matches one of
// ErrInvalidToken, ErrTokenExpired, ErrTokenDisabled, ErrEndpointNotAllowed,
// ErrRateLimited (then errors.As gives a *RateLimitError),
// ErrStoreUnavailable or ErrLimiterUnavailable. The X-RateLimit-* headers are
// already set when the token was known.
type ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

// RateLimitError is the error of a request refused by the rate limit.
type RateLimitError struct {
	Decision Decision
}

func (e *RateLimitError) Error() string { return ErrRateLimited.Error() }

// Unwrap makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// MiddlewareOption configures Middleware. An invalid value makes Middleware
// panic with a message naming the option.
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	base      string
	headers   []string
	query     string
	limiter   Limiter
	noLimiter bool
	onError   ErrorHandler
	ips       clientip.Resolver
	route     func(*http.Request) string
	errs      []error // invalid option values
}

// invalid records that option was given an invalid value.
func (c *middlewareConfig) invalid(option, why string) {
	c.errs = append(c.errs, fmt.Errorf("apitoken: %s: %s", option, why))
}

// WithBasePath sets the path prefix that allowed_endpoints patterns are
// relative to (default none). With WithBasePath("/api") the pattern
// "/products*" allows /api/products/123. A token with endpoint restrictions
// is refused on paths outside the base path.
func WithBasePath(p string) MiddlewareOption {
	return func(c *middlewareConfig) {
		if c.base = pathmatch.Clean(p); c.base == "/" {
			c.base = ""
		}
	}
}

// WithHeader also accepts the token as the whole value of the named header,
// e.g. WithHeader("X-API-Key"). Authorization: Bearer is always accepted and
// takes precedence.
func WithHeader(name string) MiddlewareOption {
	return func(c *middlewareConfig) {
		if strings.TrimSpace(name) == "" {
			c.invalid("WithHeader", "empty header name")
			return
		}
		c.headers = append(c.headers, http.CanonicalHeaderKey(name))
	}
}

// WithQueryParam also accepts the token in the named query parameter. Off by
// default: URLs end up in access logs, browser history and Referer headers,
// so enable it only for clients that cannot send headers. Handlers behind
// the middleware see the URL without it.
func WithQueryParam(name string) MiddlewareOption {
	return func(c *middlewareConfig) {
		if name == "" {
			c.invalid("WithQueryParam", "empty parameter name")
		}
		c.query = name
	}
}

// WithLimiter sets the rate limiter (default: a MemoryLimiter of
// one minute on the Manager's clock, one per Middleware call; use
// adapters/redis to share limits between replicas). WithLimiter(nil) turns
// rate limiting off.
func WithLimiter(l Limiter) MiddlewareOption {
	return func(c *middlewareConfig) { c.limiter, c.noLimiter = l, l == nil }
}

// WithErrorHandler replaces the spec's JSON error responses (WriteError).
func WithErrorHandler(h ErrorHandler) MiddlewareOption {
	return func(c *middlewareConfig) {
		if h == nil {
			c.invalid("WithErrorHandler", "nil handler")
		}
		c.onError = h
	}
}

// WithTrustedProxies makes the middleware take the client IP from
// X-Forwarded-For (the right-most address that is not a trusted proxy) or
// X-Real-IP when the connection comes from one of these IP addresses or
// CIDR prefixes ("10.0.0.0/8", "::1"). By default nobody is trusted and the
// IP is the connection's peer.
func WithTrustedProxies(list ...string) MiddlewareOption {
	return func(c *middlewareConfig) {
		prefixes, err := clientip.ParseTrusted(list)
		if err != nil {
			c.invalid("WithTrustedProxies", strings.TrimPrefix(err.Error(), "apitoken: "))
			return
		}
		c.ips = clientip.New(prefixes)
	}
}

// WithRouteFunc sets how the router's route pattern of a request is found,
// after the handler has run, for usage analytics (default: the path part of
// Go 1.22 ServeMux's r.Pattern). For chi:
//
//	apitoken.WithRouteFunc(func(r *http.Request) string {
//		return chi.RouteContext(r.Context()).RoutePattern()
//	})
func WithRouteFunc(f func(*http.Request) string) MiddlewareOption {
	return func(c *middlewareConfig) {
		if f == nil {
			c.invalid("WithRouteFunc", "nil function")
		}
		c.route = f
	}
}

// serveMuxRoute returns the path part of r.Pattern ("GET /products/{id}"
// gives "/products/{id}").
func serveMuxRoute(r *http.Request) string {
	p := r.Pattern
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = p[i+1:]
	}
	if i := strings.IndexByte(p, '/'); i > 0 { // drop a host
		p = p[i:]
	}
	return p
}

// Middleware returns net/http middleware that, in the spec's order, takes the
// token from the request (Authorization: Bearer, or the options' header or
// query parameter), verifies it is valid, active and not expired, checks the
// endpoint is allowed and the rate limit, sets X-RateLimit-Limit,
// X-RateLimit-Remaining and X-RateLimit-Reset, calls next with the token in
// the context (FromContext), and records one usage Event to the Manager's
// sink.
//
// Refusals are the spec's JSON bodies: 401 {"error":"Invalid API token"}
// (missing, malformed or unknown), 401 {"error":"Token has expired"}, 403
// {"error":"Token is disabled"}, 403 {"error":"Endpoint not allowed"}, 429
// {"error":"Rate limit exceeded","limit":…,"current":…,"retry_after":…} with
// Retry-After, 503 {"error":"Token store unavailable"} when the store cannot
// be reached (never 401, which would tell a client to discard a valid token)
// and 503 {"error":"Rate limiter unavailable"} when the Limiter returns an
// error (both with Retry-After). Refusals of a known token are recorded
// too, but for the limiter's 503; refused requests never count against the
// rate limit. Tokens with rate limit 0 (unlimited) get no X-RateLimit-*
// headers, nor do responses for which the limiter could not answer.
//
// It panics when m is nil or an option's value is invalid.
func Middleware(m *Manager, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	if m == nil {
		panic("apitoken: Middleware needs a Manager")
	}
	c := middlewareConfig{route: serveMuxRoute, onError: WriteError}
	for _, o := range opts {
		o(&c)
	}
	if err := errors.Join(c.errs...); err != nil {
		panic(err.Error())
	}
	if c.limiter == nil && !c.noLimiter {
		c.limiter = NewMemoryLimiter(defaultWindow, m.clock)
	}
	return func(next http.Handler) http.Handler {
		return &middleware{m: m, c: c, next: next}
	}
}

type middleware struct {
	m    *Manager
	c    middlewareConfig
	next http.Handler
}

type ctxKey struct{}

// FromContext returns the verified token of the request, put there by
// Middleware. It is shared: do not modify it.
func FromContext(ctx context.Context) (*Token, bool) {
	t, ok := ctx.Value(ctxKey{}).(*Token)
	return t, ok && t != nil
}

// newContext returns ctx carrying t.
func newContext(ctx context.Context, t *Token) context.Context {
	return context.WithValue(ctx, ctxKey{}, t)
}

// exchange is one request of a known token on its way through the
// middleware.
type exchange struct {
	r        *http.Request // as it came in
	e        *cacheEntry
	endpoint string        // the cleaned path, relative to the base path
	wall     time.Time     // when it came in, on the wall clock
	start    time.Duration // and on the monotonic clock
	rec      recorder      // the writer the next handler gets
}

// ServeHTTP implements http.Handler: the request pipeline.
func (mw *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	wall, mono := mw.m.clock.Read()
	x := &exchange{r: r, start: mono, wall: wall, rec: recorder{ResponseWriter: w}}
	raw := mw.credentials(r)
	if raw == "" {
		mw.c.onError(w, r, ErrInvalidToken)
		return
	}
	e, err := mw.m.verify(r.Context(), raw, x.wall, x.start)
	if e == nil {
		if !errors.Is(err, ErrInvalidToken) {
			err = ErrStoreUnavailable // includes a cancelled request context
		}
		mw.c.onError(w, r, err)
		return
	}
	x.e = e
	var allowed bool
	x.endpoint, allowed = mw.endpoint(r, e)
	if err == nil && !allowed {
		err = ErrEndpointNotAllowed
	}
	if err == nil {
		err = mw.rateLimit(x)
	} else {
		mw.setPeekedHeaders(x) // refused before the limiter was asked
	}
	switch {
	case errors.Is(err, ErrLimiterUnavailable):
		mw.c.onError(w, r, err) // no decision was made: nothing to record
	case err != nil:
		mw.c.onError(&x.rec, r, err)
		mw.record(x, nil, bodySize(r, nil))
	default:
		mw.serveNext(x)
	}
}

// credentials returns the token the request carries, or "". A request with
// more than one Authorization header carries none: which one counts would
// depend on who reads it (the admin API refuses such a request too).
func (mw *middleware) credentials(r *http.Request) string {
	switch a := r.Header.Values("Authorization"); {
	case len(a) > 1:
		return ""
	case len(a) == 1:
		if cred, ok := bearerCredentials(a[0]); ok {
			return cred
		}
	}
	for _, h := range mw.c.headers {
		if v := strings.TrimSpace(r.Header.Get(h)); v != "" {
			return v
		}
	}
	if mw.c.query != "" {
		return r.URL.Query().Get(mw.c.query)
	}
	return ""
}

// endpoint returns the request's cleaned path relative to the base path,
// and whether e's token may use it.
func (mw *middleware) endpoint(r *http.Request, e *cacheEntry) (string, bool) {
	clean := pathmatch.Clean(r.URL.Path)
	endpoint, under := clean, true
	if mw.c.base != "" {
		if endpoint, under = pathmatch.Relative(clean, mw.c.base); !under {
			endpoint = clean
		}
	}
	if !e.endpoints.Restricted() {
		return endpoint, true
	}
	return endpoint, under && canonical(r.URL.Path, clean) && e.endpoints.Allow(r.Method, endpoint)
}

// canonical reports whether the decoded path p equals its cleaned form c, but
// for one trailing slash. A restricted token is refused on other paths: the
// router behind may route on the escaped path, where /orders/%2e%2e/products
// is under /orders while its decoded form cleans to /products. (ServeMux
// redirects literal dot segments and "//" to the clean path, so no
// well-behaved client sends one.)
func canonical(p, c string) bool {
	return p == c || (len(p) == len(c)+1 && p[len(c)] == '/' && p[:len(c)] == c)
}

// rateLimit asks the limiter about x and sets the X-RateLimit-* headers. It
// returns a *RateLimitError when the limit is reached and
// ErrLimiterUnavailable when the limiter cannot decide.
func (mw *middleware) rateLimit(x *exchange) error {
	limit := x.e.tok.RateLimit
	if limit <= 0 || mw.c.limiter == nil {
		return nil
	}
	d, err := mw.c.limiter.Allow(x.r.Context(), x.e.key, limit)
	if err != nil {
		mw.m.limiterLog.Do(func() {
			mw.m.log.Warn("apitoken: rate limiter failed; requests get 503 (logged at most every 10 s)", "error", err.Error())
		})
		return ErrLimiterUnavailable
	}
	setLimitHeaders(x.rec.Header(), d)
	if !d.Allowed {
		return &RateLimitError{Decision: d}
	}
	return nil
}

// setPeekedHeaders sets the X-RateLimit-* headers of a request refused
// before the limiter was asked, as the limiter sees them without counting.
func (mw *middleware) setPeekedHeaders(x *exchange) {
	limit := x.e.tok.RateLimit
	if limit <= 0 || mw.c.limiter == nil {
		return
	}
	if d, err := mw.c.limiter.Peek(x.r.Context(), x.e.key, limit); err == nil {
		setLimitHeaders(x.rec.Header(), d)
	}
}

// setLimitHeaders sets X-RateLimit-Limit, X-RateLimit-Remaining and
// X-RateLimit-Reset. The reset is rounded up to the second (a slot is free
// by then) and shown in RFC 3339 with milliseconds, as the spec shows it
// ("2025-01-15T10:31:00.000Z"): time.RFC3339 with ".000" before the "Z".
//
// The three values are formatted into one buffer and are substrings of one
// string; the keys are written in net/http's canonical form, as Header.Set
// would store them.
func setLimitHeaders(h http.Header, d Decision) {
	reset := d.Reset.Truncate(time.Second)
	if reset.Before(d.Reset) {
		reset = reset.Add(time.Second)
	}
	var buf [64]byte
	b := strconv.AppendInt(buf[:0], int64(d.Limit), 10)
	limitEnd := len(b)
	b = strconv.AppendInt(b, int64(max(d.Remaining, 0)), 10)
	remainingEnd := len(b)
	b = reset.UTC().AppendFormat(b, time.RFC3339)
	b = append(b[:len(b)-1], ".000Z"...)
	s := string(b)
	v := []string{s[:limitEnd], s[limitEnd:remainingEnd], s[remainingEnd:]}
	h["X-Ratelimit-Limit"] = v[0:1:1]
	h["X-Ratelimit-Remaining"] = v[1:2:2]
	h["X-Ratelimit-Reset"] = v[2:3:3]
}

// serveNext calls the next handler with the token in the context and
// records the request, also when the handler panics.
func (mw *middleware) serveNext(x *exchange) {
	r := x.r.WithContext(newContext(x.r.Context(), x.e.tok))
	if mw.c.query != "" && r.URL.Query().Has(mw.c.query) {
		// Handlers and their access logs must not see the token.
		u := *r.URL
		q := u.Query()
		q.Del(mw.c.query)
		u.RawQuery = q.Encode()
		r.URL, r.RequestURI = &u, u.RequestURI()
	}
	var body *countingBody
	if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		// A body of unknown length is counted as it is read (chunked
		// uploads, HTTP/2 without Content-Length).
		body = &countingBody{ReadCloser: r.Body}
		r.Body = body
	}
	panicked := true
	defer func() {
		if panicked && !x.rec.wrote {
			// Record the request as a 500 and let the panic go on.
			x.rec.status = http.StatusInternalServerError
		}
		mw.record(x, r, bodySize(r, body))
	}()
	mw.next.ServeHTTP(&x.rec, r)
	panicked = false
}

// bodySize is the request body's size: its Content-Length, or what was
// read of a body of unknown length.
func bodySize(r *http.Request, body *countingBody) int64 {
	switch {
	case r.ContentLength >= 0:
		return r.ContentLength
	case body != nil:
		return body.n
	}
	return 0
}

// record sends the request's Event to the Manager (Manager.Record). routed is the
// request the router saw (nil for a refusal, which no route served); the
// route is recorded relative to the base path, like the endpoint.
func (mw *middleware) record(x *exchange, routed *http.Request, size int64) {
	var route string
	if routed != nil {
		route = mw.c.route(routed)
		if route != "" && mw.c.base != "" {
			if rel, ok := pathmatch.Relative(route, mw.c.base); ok {
				route = rel
			}
		}
	}
	_, end := mw.m.clock.Read()
	status := x.rec.status
	if status == 0 {
		status = http.StatusOK
	}
	mw.m.Record(Event{
		TokenID:      x.e.tok.ID,
		Endpoint:     x.endpoint,
		Route:        route,
		Method:       x.r.Method,
		StatusCode:   status,
		ResponseTime: (end - x.start).Round(time.Microsecond),
		RequestSize:  size,
		ResponseSize: x.rec.size,
		IP:           mw.c.ips.ClientIP(x.r.RemoteAddr, x.r.Header),
		UserAgent:    x.r.UserAgent(),
		Time:         x.wall.UTC(),
	})
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// recorder is the ResponseWriter handed to the next handler. It records the
// status and the body size, and keeps Flush, Hijack, ReadFrom and
// http.ResponseController working.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	size   int64
}

var (
	_ http.Flusher  = (*recorder)(nil)
	_ http.Hijacker = (*recorder)(nil)
	_ io.ReaderFrom = (*recorder)(nil)
)

// wroteStatus notes the status of the response once it is sent.
func (w *recorder) wroteStatus(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
}

func (w *recorder) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wroteStatus(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	w.wroteStatus(http.StatusOK)
	n, err := w.ResponseWriter.Write(b)
	w.size += int64(n)
	return n, err
}

func (w *recorder) WriteString(s string) (int, error) {
	w.wroteStatus(http.StatusOK)
	n, err := io.WriteString(w.ResponseWriter, s)
	w.size += int64(n)
	return n, err
}

// ReadFrom lets io.Copy use the underlying writer's ReadFrom (sendfile).
func (w *recorder) ReadFrom(src io.Reader) (int64, error) {
	w.wroteStatus(http.StatusOK)
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
	}
	w.size += n
	return n, err
}

// Flush flushes the underlying writer when it can.
func (w *recorder) Flush() {
	w.wroteStatus(http.StatusOK)
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands over the connection when the underlying writer allows it.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.wroteStatus(http.StatusSwitchingProtocols)
	}
	return c, rw, err
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Pre-encoded error bodies: the spec's texts.
var (
	bodyInvalid     = []byte(`{"error":"Invalid API token"}` + "\n")
	bodyExpired     = []byte(`{"error":"Token has expired"}` + "\n")
	bodyDisabled    = []byte(`{"error":"Token is disabled"}` + "\n")
	bodyEndpoint    = []byte(`{"error":"Endpoint not allowed"}` + "\n")
	bodyStore       = []byte(`{"error":"Token store unavailable"}` + "\n")
	bodyLimiterDown = []byte(`{"error":"Rate limiter unavailable"}` + "\n")
)

// WriteError is the default ErrorHandler: the spec's status codes and JSON
// bodies with Content-Type: application/json.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	var rl *RateLimitError
	switch {
	case errors.As(err, &rl):
		d := rl.Decision
		secs := int64((d.RetryAfter + time.Second - 1) / time.Second)
		if secs < 1 {
			secs = 1
		}
		h["Retry-After"] = []string{strconv.FormatInt(secs, 10)}
		w.WriteHeader(http.StatusTooManyRequests)
		var b []byte
		b = append(b, `{"error":"Rate limit exceeded","limit":`...)
		b = strconv.AppendInt(b, int64(d.Limit), 10)
		b = append(b, `,"current":`...)
		b = strconv.AppendInt(b, int64(d.Current), 10)
		b = append(b, `,"retry_after":`...)
		b = strconv.AppendInt(b, secs, 10)
		b = append(b, "}\n"...)
		_, _ = w.Write(b)
	case errors.Is(err, ErrTokenExpired):
		h["Www-Authenticate"] = []string{`Bearer error="invalid_token"`}
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write(bodyExpired)
	case errors.Is(err, ErrTokenDisabled):
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(bodyDisabled)
	case errors.Is(err, ErrEndpointNotAllowed):
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(bodyEndpoint)
	case errors.Is(err, ErrStoreUnavailable):
		h["Retry-After"] = []string{"1"}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(bodyStore)
	case errors.Is(err, ErrLimiterUnavailable):
		h["Retry-After"] = []string{"1"}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(bodyLimiterDown)
	default:
		h["Www-Authenticate"] = []string{`Bearer`}
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write(bodyInvalid)
	}
}
