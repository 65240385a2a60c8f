package apitoken

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

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

// MiddlewareOption configures Middleware.
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	base      string
	headers   []string
	query     string
	limiter   Limiter
	onError   ErrorHandler
	ips       clientip.Resolver
	route     func(*http.Request) string
	sink      Sink
	sinkSet   bool
	noLimiter bool
}

// WithBasePath sets the path prefix that allowed_endpoints patterns are
// relative to (default none). With WithBasePath("/api") the pattern
// "/products*" allows /api/products/123. A token with endpoint restrictions
// is refused on paths outside the base path.
func WithBasePath(p string) MiddlewareOption {
	return func(c *middlewareConfig) {
		p = pathmatch.Clean(p)
		if p == "/" {
			p = ""
		}
		c.base = p
	}
}

// WithHeader also accepts the token as the whole value of the named header,
// e.g. WithHeader("X-API-Key"). Authorization: Bearer is always accepted and
// takes precedence.
func WithHeader(name string) MiddlewareOption {
	return func(c *middlewareConfig) { c.headers = append(c.headers, http.CanonicalHeaderKey(name)) }
}

// WithQueryParam also accepts the token in the named query parameter. Off by
// default: URLs end up in access logs, browser history and Referer headers,
// so enable it only for clients that cannot send headers.
func WithQueryParam(name string) MiddlewareOption {
	return func(c *middlewareConfig) { c.query = name }
}

// WithLimiter sets the rate limiter (default: a NewMemoryLimiter per
// Middleware call; use adapters/redis to share limits between replicas).
// WithLimiter(nil) turns rate limiting off.
func WithLimiter(l Limiter) MiddlewareOption {
	return func(c *middlewareConfig) { c.limiter, c.noLimiter = l, l == nil }
}

// WithErrorHandler replaces the spec's JSON error responses.
func WithErrorHandler(h ErrorHandler) MiddlewareOption {
	return func(c *middlewareConfig) { c.onError = h }
}

// WithTrustedProxies makes the middleware take the client IP from
// X-Forwarded-For (the right-most address that is not a trusted proxy) or
// X-Real-IP when the connection comes from one of these prefixes. By default
// nobody is trusted and the IP is the connection's peer. See
// ParseTrustedProxies.
func WithTrustedProxies(prefixes ...netip.Prefix) MiddlewareOption {
	return func(c *middlewareConfig) { c.ips = clientip.New(prefixes) }
}

// ParseTrustedProxies parses IP addresses and CIDR prefixes ("10.0.0.0/8",
// "::1") for WithTrustedProxies.
func ParseTrustedProxies(list ...string) ([]netip.Prefix, error) {
	return clientip.ParseTrusted(list)
}

// WithRouteFunc sets how the router's route pattern of a request is found,
// after the handler has run, for usage analytics (default: the path part of
// Go 1.22 ServeMux's r.Pattern). For chi:
//
//	apitoken.WithRouteFunc(func(r *http.Request) string {
//		return chi.RouteContext(r.Context()).RoutePattern()
//	})
func WithRouteFunc(f func(*http.Request) string) MiddlewareOption {
	return func(c *middlewareConfig) { c.route = f }
}

// WithUsageSink sets where usage events go (default: the Manager's Sink).
// WithUsageSink(nil) records nothing.
func WithUsageSink(s Sink) MiddlewareOption {
	return func(c *middlewareConfig) { c.sink, c.sinkSet = s, true }
}

// ServeMuxRoute returns the path part of r.Pattern ("GET /products/{id}" gives
// "/products/{id}"), the default route function.
func ServeMuxRoute(r *http.Request) string {
	p := r.Pattern
	if p == "" {
		return ""
	}
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
// the context (FromContext), and records one usage Event.
//
// Refusals are the spec's JSON bodies: 401 {"error":"Invalid API token"}
// (missing, malformed or unknown), 401 {"error":"Token has expired"}, 403
// {"error":"Token is disabled"}, 403 {"error":"Endpoint not allowed"}, 429
// {"error":"Rate limit exceeded","limit":…,"current":…,"retry_after":…} with
// Retry-After, and 503 {"error":"Token store unavailable"} when the store
// cannot be reached (never 401, which would tell a client to discard a valid
// token). Refusals of a known token are recorded too; refused requests never
// count against the rate limit. Tokens with rate limit 0 (unlimited) get no
// X-RateLimit-* headers.
//
// The handlers it returns implement ValueHandler, for router adapters.
func Middleware(m *Manager, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	if m == nil {
		panic("apitoken: Middleware needs a Manager")
	}
	c := middlewareConfig{route: ServeMuxRoute, onError: WriteError}
	for _, o := range opts {
		o(&c)
	}
	if c.limiter == nil && !c.noLimiter {
		c.limiter = NewMemoryLimiter()
	}
	if !c.sinkSet {
		c.sink = m.Sink()
	}
	if c.onError == nil {
		c.onError = WriteError
	}
	if c.route == nil {
		c.route = func(*http.Request) string { return "" }
	}
	peeker, _ := c.limiter.(Peeker)
	// The in-process limiter is called directly, and on the real clock it
	// uses the middleware's own clock reading.
	mem, _ := c.limiter.(*MemoryLimiter)
	// A BatchSink parses the peer's address off the request path when that
	// is the client's address.
	batch, _ := c.sink.(*BatchSink)
	if c.ips.TrustsProxies() {
		batch = nil
	}
	return func(next http.Handler) http.Handler {
		return &middleware{m: m, c: c, peek: peeker, mem: mem, batch: batch, next: next}
	}
}

type middleware struct {
	m     *Manager
	c     middlewareConfig
	peek  Peeker
	mem   *MemoryLimiter // c.limiter when it is a MemoryLimiter
	batch *BatchSink     // c.sink when it is a BatchSink and no proxy is trusted
	next  http.Handler
}

type ctxKey struct{}

// FromContext returns the verified token of the request, put there by
// Middleware. It is shared: do not modify it.
func FromContext(ctx context.Context) (*Token, bool) {
	t, ok := ctx.Value(ctxKey{}).(*Token)
	return t, ok && t != nil
}

// NewContext returns ctx carrying t, for tests of handlers and for adapters.
func NewContext(ctx context.Context, t *Token) context.Context {
	return context.WithValue(ctx, ctxKey{}, t)
}

func (mw *middleware) token(r *http.Request) string {
	if a := r.Header["Authorization"]; len(a) > 0 {
		v := a[0]
		// The common form, "Bearer " and a token with nothing around it, is
		// what bearerCredentials returns for it, without its trimming.
		if len(v) > len("Bearer ") && v[:len("Bearer ")] == "Bearer " && visibleASCII(v[len("Bearer ")]) && visibleASCII(v[len(v)-1]) {
			return v[len("Bearer "):]
		}
		if cred, ok := bearerCredentials(v); ok {
			return cred
		}
	}
	for _, h := range mw.c.headers {
		if v := r.Header[h]; len(v) > 0 && v[0] != "" {
			return strings.TrimSpace(v[0])
		}
	}
	if mw.c.query != "" {
		return r.URL.Query().Get(mw.c.query)
	}
	return ""
}

// visibleASCII reports whether b is a printable ASCII character other than
// space: no trimming function removes it.
func visibleASCII(b byte) bool { return b > ' ' && b < 0x7f }

// ValueHandler is implemented by the http.Handler that Middleware's function
// returns. It is for router adapters (adapters/gin, adapters/echo) that keep
// per-request state of their own in the request's context: they need not
// copy the request to add it, on top of the copy the middleware makes.
type ValueHandler interface {
	http.Handler
	// ServeHTTPWithValue serves r as ServeHTTP does, except that the
	// context of the request the next handler and the route function see
	// also maps key to val, as context.WithValue(ctx, key, val) would. key
	// must be comparable and not nil, as for context.WithValue; refused
	// requests (and the ErrorHandler) see r unchanged. It reports whether
	// the request was passed to the next handler.
	ServeHTTPWithValue(w http.ResponseWriter, r *http.Request, key, val any) (served bool)
}

var _ ValueHandler = (*middleware)(nil)

// ServeHTTP implements http.Handler.
func (mw *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mw.serve(w, r, nil, nil)
}

// ServeHTTPWithValue implements ValueHandler.
func (mw *middleware) ServeHTTPWithValue(w http.ResponseWriter, r *http.Request, key, val any) bool {
	if key == nil {
		panic("apitoken: nil key")
	}
	if !reflect.TypeOf(key).Comparable() {
		panic("apitoken: key is not comparable")
	}
	return mw.serve(w, r, key, val)
}

func (mw *middleware) serve(w http.ResponseWriter, r *http.Request, key, val any) (served bool) {
	// One clock reading serves verification, the limiter, the event's time
	// and its response time.
	start := readClock()
	raw := mw.token(r)
	if raw == "" {
		mw.c.onError(w, r, ErrInvalidToken)
		return false
	}
	now := start.wall
	if !mw.m.realClock {
		now = mw.m.now()
	}
	e, err := mw.m.verifyAt(r.Context(), raw, now)
	if e == nil {
		if !errors.Is(err, ErrInvalidToken) {
			err = ErrStoreUnavailable // includes a cancelled request context
		}
		mw.c.onError(w, r, err)
		return false
	}
	path := r.URL.Path
	clean := cleanPath(path)
	endpoint, under := clean, true
	if mw.c.base != "" {
		if endpoint, under = pathmatch.Relative(clean, mw.c.base); !under {
			endpoint = clean
		}
	}
	if err == nil && e.endpoints.Restricted() && (!under || !canonical(path, clean) || !e.endpoints.Allow(r.Method, endpoint)) {
		err = ErrEndpointNotAllowed
	}
	tok := e.tok
	c := &reqCtx{Context: r.Context(), tok: tok}
	c.rec.ResponseWriter = w
	if err != nil {
		mw.refuse(c, r, e, endpoint, start, err)
		return false
	}
	if limit := e.rateLimit; limit > 0 && mw.c.limiter != nil {
		if l := mw.mem; l != nil {
			// The in-process limiter, called directly: an allowed request
			// needs no Decision.
			at := start.wall // the clock was just read
			if l.customClock {
				at = l.now()
			}
			now := at.UnixNano()
			hint := e.limLog.Load()
			current, reset, allowed, log := l.decideHinted(now, e.key, limit, hint)
			if log != hint {
				e.limLog.Store(log)
			}
			remaining := 0
			if allowed {
				remaining = limit - current
			}
			c.setLimitHeaders(w.Header(), e, remaining, ceilSecond(reset))
			if !allowed {
				mw.refuse(c, r, e, endpoint, start, &RateLimitError{Decision: refusal(limit, now, current, reset)})
				return false
			}
		} else {
			d, lerr := mw.c.limiter.Allow(r.Context(), e.key, limit)
			if lerr != nil {
				mw.m.limiterLog.Do(func() {
					mw.m.log.Warn("apitoken: rate limiter failed; requests get 503 (logged at most every 10 s)", "error", lerr.Error())
				})
				mw.c.onError(w, r, ErrLimiterUnavailable)
				return false
			}
			c.setLimitHeaders(w.Header(), e, d.Remaining, resetSecond(d.Reset))
			if !d.Allowed {
				mw.refuse(c, r, e, endpoint, start, &RateLimitError{Decision: d})
				return false
			}
		}
	}
	c.key, c.val = key, val
	r2 := r.WithContext(c)
	if mw.c.query != "" && r.URL.RawQuery != "" {
		// Handlers and their access logs must not see the token.
		u := *r.URL
		q := u.Query()
		if q.Has(mw.c.query) {
			q.Del(mw.c.query)
			u.RawQuery = q.Encode()
			r2.URL = &u
			r2.RequestURI = u.RequestURI()
		}
	}
	if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		// A body of unknown length is counted as it is read (rare: chunked
		// uploads, HTTP/2 without Content-Length).
		c.body = &countingBody{ReadCloser: r.Body}
		r2.Body = c.body
	}
	panicked := true
	defer func() {
		if panicked {
			// Record the request as a 500 and let the panic go on.
			if !c.rec.wrote {
				c.rec.status = http.StatusInternalServerError
			}
			mw.record(c, r2, r2, e, endpoint, start)
		}
	}()
	mw.next.ServeHTTP(&c.rec, r2)
	panicked = false
	mw.record(c, r2, r2, e, endpoint, start)
	return true
}

// clockReading is the time a request started: the wall-clock time, for
// verification, the limiter and the event, and the monotonic clock's
// reading, for the response time.
type clockReading struct {
	wall time.Time
	ep   *clockEpoch
	mono time.Duration // since ep.at
}

// since returns the monotonic time elapsed since r.
func (r clockReading) since() time.Duration { return time.Since(r.ep.at) - r.mono }

// clockEpoch is a time.Now reading, with its wall-clock time in Unix
// nanoseconds.
type clockEpoch struct {
	at   time.Time
	wall int64
}

// clockEpochLen is how long a clockEpoch serves readClock.
const clockEpochLen = 100 * time.Millisecond

var clockEpochs atomic.Pointer[clockEpoch]

// readClock reads the clock at the cost of one clock reading: time.Now
// reads both the wall clock and the monotonic clock, and costs twice as
// much. It reads the monotonic clock and adds the time elapsed since the
// current epoch, a time.Now reading at most clockEpochLen old, to the
// epoch's wall-clock time. So a step of the wall clock shows within
// clockEpochLen, and the two clocks' drift apart (NTP slews the wall clock
// by at most 0.05%) stays under 50 µs. The wall-clock time has no monotonic
// reading: durations are measured with since.
func readClock() clockReading {
	if ep := clockEpochs.Load(); ep != nil {
		if d := time.Since(ep.at); d >= 0 && d < clockEpochLen {
			return clockReading{wall: time.Unix(0, ep.wall+int64(d)), ep: ep, mono: d}
		}
	}
	t := time.Now()
	ep := &clockEpoch{at: t, wall: t.UnixNano()}
	clockEpochs.Store(ep)
	return clockReading{wall: t.Round(0), ep: ep}
}

// cleanPath is pathmatch.Clean(p), without its work for a path that is
// already clean: one that starts with "/", has no empty, "." or ".."
// segment and no trailing slash, which is nearly every request's.
func cleanPath(p string) string {
	if len(p) > 0 && p[0] == '/' && (len(p) == 1 || p[len(p)-1] != '/') &&
		!strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p
	}
	return pathmatch.Clean(p)
}

// firstHeader is r.Header.Get for a key already in canonical form, without
// canonicalising it again.
func firstHeader(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
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

// refuse answers a refused request of a known token and records it.
func (mw *middleware) refuse(c *reqCtx, r *http.Request, e *cacheEntry, endpoint string, start clockReading, err error) {
	if !errors.Is(err, ErrRateLimited) && e.rateLimit > 0 && mw.peek != nil {
		if d, perr := mw.peek.Peek(r.Context(), e.key, e.rateLimit); perr == nil {
			c.setLimitHeaders(c.rec.ResponseWriter.Header(), e, d.Remaining, resetSecond(d.Reset))
		}
	}
	mw.c.onError(&c.rec, r, err)
	mw.record(c, nil, r, e, endpoint, start)
}

// record sends the request's Event. routed is the request the router saw
// (nil for a refusal, which no route served); the route is recorded relative
// to the base path, like the endpoint.
func (mw *middleware) record(c *reqCtx, routed, r *http.Request, e *cacheEntry, endpoint string, start clockReading) {
	if mw.c.sink == nil {
		return
	}
	elapsed := start.since() // the monotonic clock, read once more
	evTime := start.wall     // the Manager's clock, when a test sets one
	if !mw.m.realClock {
		evTime = mw.m.now()
	}
	var route string
	if routed != nil {
		route = mw.c.route(routed)
		if route != "" && mw.c.base != "" {
			if rel, ok := pathmatch.Relative(route, mw.c.base); ok {
				route = rel
			}
		}
	}
	status := int(c.rec.status)
	if !c.rec.wrote && status == 0 {
		status = http.StatusOK
	}
	size := r.ContentLength
	if size < 0 {
		size = 0
		if c.body != nil {
			size = c.body.n
		}
	}
	ev := Event{
		TokenID:      e.id,
		Endpoint:     endpoint,
		Route:        route,
		Method:       r.Method,
		StatusCode:   status,
		ResponseTime: roundMicro(elapsed),
		RequestSize:  size,
		ResponseSize: c.rec.size,
		UserAgent:    firstHeader(r.Header, "User-Agent"),
		Time:         evTime.UTC(),
	}
	if mw.batch != nil {
		ev.peer = r.RemoteAddr // parsed into IP by the BatchSink's writer
		mw.batch.Record(ev)
		return
	}
	ev.IP = mw.c.ips.ClientIP(r.RemoteAddr, r.Header)
	mw.c.sink.Record(ev)
}

// roundMicro is d.Round(time.Microsecond) with a constant divisor, which
// the compiler turns into a multiplication (Round divides).
func roundMicro(d time.Duration) time.Duration {
	if d < 0 || d > math.MaxInt64-time.Microsecond/2 {
		return d.Round(time.Microsecond)
	}
	return (d + time.Microsecond/2) / time.Microsecond * time.Microsecond
}

// reqCtx is the request's context carrying the token (and the pair of
// ServeHTTPWithValue), the backing of the rate-limit header values and the
// recording writer: the middleware's one allocation per request besides the
// request copy WithContext makes (and a countingBody for a body of unknown
// length). It cannot come from a pool: handlers may keep the context, and
// the header map may be read after ServeHTTP returns.
type reqCtx struct {
	context.Context
	tok      *Token
	key, val any // ServeHTTPWithValue's pair; key is nil for ServeHTTP
	hdr      [3]string
	num      [20]byte // X-RateLimit-Remaining's text when it is smallIntsLen or more
	rec      recorder
	body     *countingBody // counts a body of unknown length
}

func (c *reqCtx) Value(key any) any {
	if key == (ctxKey{}) {
		return c.tok
	}
	if c.key != nil && key == c.key {
		return c.val
	}
	return c.Context.Value(key)
}

func (c *reqCtx) String() string { return "apitoken.requestContext" }

const resetLayout = "2006-01-02T15:04:05.000Z07:00"

// resetSecond is the X-RateLimit-Reset second of reset: the time rounded up
// to the whole second (a slot is free by then).
func resetSecond(reset time.Time) int64 {
	sec := reset.Unix()
	if reset.Nanosecond() > 0 {
		sec++
	}
	return sec
}

// ceilSecond is resetSecond for a time in Unix nanoseconds.
func ceilSecond(ns int64) int64 {
	sec, frac := ns/int64(time.Second), ns%int64(time.Second)
	if frac < 0 {
		sec, frac = sec-1, frac+int64(time.Second)
	}
	if frac > 0 {
		sec++
	}
	return sec
}

// resetTextFor is the X-RateLimit-Reset value for the Unix second sec, RFC
// 3339 with milliseconds as the spec shows it ("2025-01-15T10:31:00.000Z").
// The texts are kept in one table shared by every token, a slot per second
// modulo its size: the reset times of all tokens lie within a window of
// now, so a few dozen slots serve them all and stay in the CPU's caches,
// where a text per token would be a trip to memory for each one of many
// tokens. A slot is formatted again when a second far apart takes it.
func resetTextFor(sec int64) string {
	slot := &resetTexts[uint64(sec)%uint64(len(resetTexts))]
	if rt := slot.Load(); rt != nil && rt.unix == sec {
		return rt.text
	}
	rt := &resetText{unix: sec, text: formatReset(sec)}
	slot.Store(rt)
	return rt.text
}

// resetTexts covers a little over an hour of seconds.
var resetTexts [4096]atomic.Pointer[resetText]

// formatReset is time.Unix(sec, 0).UTC().Format(resetLayout), written out
// for the years 0 to 9999: a third of Format's time, paid each time a busy
// token's reset moves on by a second.
func formatReset(sec int64) string {
	t := time.Unix(sec, 0).UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.Format(resetLayout)
	}
	hour, minute, second := t.Clock()
	b := []byte("0000-00-00T00:00:00.000Z")
	put := func(i, n, width int) {
		for j := i + width - 1; j >= i; j-- {
			b[j] = byte('0' + n%10)
			n /= 10
		}
	}
	put(0, year, 4)
	put(5, int(month), 2)
	put(8, day, 2)
	put(11, hour, 2)
	put(14, minute, 2)
	put(17, second, 2)
	return string(b)
}

// setLimitHeaders sets the three X-RateLimit-* headers. The values come
// from caches (the limit's text from the cache entry, the remaining count
// from a table of small numbers, the reset time from a table of recent
// seconds), so it does not allocate in the common case.
func (c *reqCtx) setLimitHeaders(h http.Header, e *cacheEntry, remaining int, resetSec int64) {
	var rem string
	switch {
	case remaining < smallIntsLen:
		rem = intText(remaining)
	case c.hdr[1] == "":
		// A large limit's count is written into the request's own
		// buffer, and the string aliases it: a reqCtx is never reused,
		// and this is the first time its headers are set (serve sets
		// them once, and refuse only when serve has not), so the bytes
		// never change.
		b := strconv.AppendInt(c.num[:0], int64(remaining), 10)
		rem = unsafe.String(&b[0], len(b))
	default:
		rem = strconv.Itoa(remaining) // the buffer may be in use
	}
	c.hdr = [3]string{e.limitHdr, rem, resetTextFor(resetSec)}
	h["X-Ratelimit-Limit"] = c.hdr[0:1:1]
	h["X-Ratelimit-Remaining"] = c.hdr[1:2:2]
	h["X-Ratelimit-Reset"] = c.hdr[2:3:3]
}

// smallInts holds the decimal text of 0..smallIntsLen-1 back to back, and
// smallIntsEnd where each one ends: one string and a table without pointers,
// built on first use, that the garbage collector need not scan.
var (
	smallIntsOnce sync.Once
	smallInts     string
	smallIntsEnd  [smallIntsLen]uint16
)

const smallIntsLen = 10_000

func intText(n int) string {
	if n < 0 {
		n = 0
	}
	if n >= smallIntsLen {
		return strconv.Itoa(n)
	}
	smallIntsOnce.Do(initSmallInts)
	start := uint16(0)
	if n > 0 {
		start = smallIntsEnd[n-1]
	}
	return smallInts[start:smallIntsEnd[n]]
}

func initSmallInts() {
	b := make([]byte, 0, 4*smallIntsLen)
	for i := range smallIntsEnd {
		b = strconv.AppendInt(b, int64(i), 10)
		smallIntsEnd[i] = uint16(len(b))
	}
	smallInts = string(b)
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
	status int32 // with wrote, one word
	wrote  bool
	size   int64
}

var (
	_ http.Flusher  = (*recorder)(nil)
	_ http.Hijacker = (*recorder)(nil)
	_ io.ReaderFrom = (*recorder)(nil)
)

func (w *recorder) WriteHeader(code int) {
	if !w.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status, w.wrote = int32(code), true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.size += int64(n)
	return n, err
}

func (w *recorder) WriteString(s string) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	n, err := io.WriteString(w.ResponseWriter, s)
	w.size += int64(n)
	return n, err
}

// ReadFrom lets io.Copy use the underlying writer's ReadFrom (sendfile).
func (w *recorder) ReadFrom(src io.Reader) (int64, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
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
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands over the connection when the underlying writer allows it.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && !w.wrote {
		w.status, w.wrote = http.StatusSwitchingProtocols, true
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
