package apitoken

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Authorizer decides whether r may use the admin API. It returns the actor
// (a name for logs and audit records, never a secret) or an error. An error
// matching ErrStoreUnavailable answers 503; any other error answers 401.
type Authorizer func(r *http.Request) (actor string, err error)

// ErrUnauthorized is returned by the package's Authorizers for a request
// without acceptable credentials.
var ErrUnauthorized = errors.New("apitoken: admin request not authorized")

// StaticSecret returns an Authorizer that accepts "Authorization: Bearer
// <secret>", compared in constant time, with the actor "admin". An empty
// secret refuses every request.
func StaticSecret(secret string) Authorizer {
	want := sha256.Sum256([]byte(secret))
	empty := secret == ""
	return func(r *http.Request) (string, error) {
		got, ok := bearerToken(r)
		if !ok || empty {
			return "", ErrUnauthorized
		}
		// Comparing digests keeps the time independent of the length too.
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			return "", ErrUnauthorized
		}
		return "admin", nil
	}
}

// TokenScopeAuthorizer returns an Authorizer that accepts a Bearer API token
// of m only if m.Verify accepts it (well-formed, known, active, not expired)
// and the token has scope, with the actor "token:<id>". API tokens never
// authorize the admin API otherwise. The token's allowed_endpoints and rate
// limit are not applied, and the request is not recorded as usage. A nil m or
// an empty scope refuses every request.
func TokenScopeAuthorizer(m *Manager, scope string) Authorizer {
	return func(r *http.Request) (string, error) {
		plain, ok := bearerToken(r)
		if !ok || m == nil || scope == "" {
			return "", ErrUnauthorized
		}
		t, err := m.Verify(r.Context(), plain)
		if err != nil {
			if errors.Is(err, ErrStoreUnavailable) {
				return "", err
			}
			return "", ErrUnauthorized
		}
		if !t.hasScope(scope) {
			return "", ErrUnauthorized
		}
		return "token:" + strconv.FormatInt(t.ID, 10), nil
	}
}

// bearerToken returns the credentials of the request's single Authorization
// header of the Bearer scheme.
func bearerToken(r *http.Request) (string, bool) {
	v := r.Header.Values("Authorization")
	if len(v) != 1 {
		return "", false
	}
	return bearerCredentials(v[0])
}

// bearerCredentials returns the credentials of an Authorization header value
// of the Bearer scheme (the scheme's name in any case).
func bearerCredentials(v string) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

// HandlerOption configures NewHandler.
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	mount string
}

// defaultMaxBodyBytes is the largest request body the admin handler reads
// (1 MiB, far above any valid token's); a larger one is answered with 413.
const defaultMaxBodyBytes = 1 << 20

// WithMountPath makes the handler serve the API under p (e.g.
// "/api/api-tokens"): a request for p or p+"/..." is routed on the rest of
// its path, and anything else is 404. The default, "", routes on the whole
// path, for a handler mounted with http.StripPrefix.
func WithMountPath(p string) HandlerOption {
	return func(c *handlerConfig) { c.mount = strings.TrimRight(p, "/") }
}

// NewHandler returns the spec's admin and analytics API for m as an
// http.Handler. Every request is first passed to auth; a refused request gets
// 401 {"error":"Unauthorized"} whatever its path or method.
//
// Routes, relative to where the handler is mounted (see WithMountPath; the
// spec mounts it at /api/api-tokens):
//
//	POST   /                 create: 201 {"token": {...token fields, "token": "<plaintext>"}, "message": "..."}
//	GET    /                 list: {"tokens": [...token fields and request counts], "total", "limit", "offset"}
//	                         query: limit (default 50, capped at 100), offset, search, active, user_id,
//	                         status (active|disabled|expired, as Token.Status at the Manager's clock),
//	                         expires_before (date or RFC 3339 time: tokens with an expiry before it)
//	GET    /{id}             {"token": {...token fields and request counts}}
//	PUT    /{id}, PATCH /{id} partial update (only fields present change; null clears
//	                         expires_at, allowed_endpoints, scopes, metadata): {"token": {...}}
//	DELETE /{id}             200 {"message": "API token deleted"}
//	POST   /{id}/rotate      new secret: 200 {"token": {...token fields, "token": "<new plaintext>"}, "message": "..."};
//	                         body (optional) {"grace_period_seconds": n}: how long the old secret
//	                         keeps working (default 0, at most 30 days; see Manager.Rotate)
//	GET    /{id}/usage       TokenUsage JSON; query days (1..90, default 7)
//	GET    /{id}/audit       {"entries": [...AuditEntry], "total", "limit", "offset"}: the token's changes,
//	                         newest first (also after it is deleted); query limit, offset
//	GET    /audit            the same for every token
//	GET    /stats/overview   Overview JSON (with rate_limited_tokens: the tokens answered 429 in
//	                         the range); query days (1..90, default 7)
//	GET    /openapi.json     the OpenAPI 3.1 document of these routes (see OpenAPIDocument)
//
// Errors are {"error": "<what is wrong>"}: 400 for bad input (naming the
// field), 404 for an unknown path or token id, 405 with an Allow header,
// 413 for a body over the limit, 415 for a Content-Type other than JSON, 501
// when the store keeps no usage or audit log, 500 or 503 with a fixed text
// when the store fails. A bad request changes nothing: the body is decoded
// and validated before the Manager is called.
//
// Every change is made with WithActor(ctx, actor), actor being what auth
// returned, so the audit log says who made it.
func NewHandler(m *Manager, auth Authorizer, opts ...HandlerOption) (http.Handler, error) {
	if m == nil {
		return nil, errors.New("apitoken: NewHandler needs a Manager")
	}
	if auth == nil {
		return nil, errors.New("apitoken: NewHandler needs an Authorizer")
	}
	var c handlerConfig
	for _, o := range opts {
		o(&c)
	}
	if c.mount != "" && !strings.HasPrefix(c.mount, "/") {
		return nil, fmt.Errorf("apitoken: WithMountPath: %q must start with \"/\"", truncate(c.mount, 64))
	}
	h := &adminHandler{m: m, auth: auth, cfg: c}
	h.routes = []route{
		// Static segments come before {id} so that future routes such as
		// /audit or /openapi.json win over the id route.
		{path: []string{"stats", "overview"}, methods: []methodHandler{{http.MethodGet, h.overview}}},
		{path: []string{"openapi.json"}, methods: []methodHandler{{http.MethodGet, h.openAPI}}},
		{path: []string{"audit"}, methods: []methodHandler{{http.MethodGet, h.audit}}},
		{path: nil, methods: []methodHandler{{http.MethodGet, h.list}, {http.MethodPost, h.create}}},
		{path: []string{idSegment}, methods: []methodHandler{
			{http.MethodGet, h.get}, {http.MethodPut, h.update}, {http.MethodPatch, h.update}, {http.MethodDelete, h.delete},
		}},
		{path: []string{idSegment, "usage"}, methods: []methodHandler{{http.MethodGet, h.usage}}},
		{path: []string{idSegment, "rotate"}, methods: []methodHandler{{http.MethodPost, h.rotate}}},
		{path: []string{idSegment, "audit"}, methods: []methodHandler{{http.MethodGet, h.audit}}},
	}
	for i := range h.routes {
		var names []string
		for _, mh := range h.routes[i].methods {
			names = append(names, mh.method)
		}
		h.routes[i].allow = strings.Join(names, ", ")
	}
	return h, nil
}

const idSegment = "{id}"

// adminRequest is what a route's handler gets: the actor is kept for the
// audit log.
type adminRequest struct {
	w     http.ResponseWriter
	r     *http.Request
	actor string
	id    int64 // the {id} segment, when the route has one
}

type methodHandler struct {
	method string
	serve  func(*adminRequest)
}

type route struct {
	path    []string
	methods []methodHandler
	allow   string
}

type adminHandler struct {
	m      *Manager
	auth   Authorizer
	cfg    handlerConfig
	routes []route
}

// Fixed response bodies.
var (
	bodyUnauthorized  = []byte(`{"error":"Unauthorized"}` + "\n")
	bodyNotFound      = []byte(`{"error":"Not found"}` + "\n")
	bodyTokenNotFound = []byte(`{"error":"Token not found"}` + "\n")
	bodyMethod        = []byte(`{"error":"Method not allowed"}` + "\n")
	bodyTooLarge      = []byte(`{"error":"Request body too large"}` + "\n")
	bodyBadID         = []byte(`{"error":"Invalid token id: must be a positive integer"}` + "\n")
	bodyMediaType     = []byte(`{"error":"Content-Type must be application/json"}` + "\n")
	bodyInternal      = []byte(`{"error":"Internal server error"}` + "\n")
	bodyUnavailable   = []byte(`{"error":"Service unavailable"}` + "\n")
	bodyNoUsage       = []byte(`{"error":"Usage analytics are not enabled"}` + "\n")
	bodyNoAudit       = []byte(`{"error":"The audit log is not enabled: the store keeps none"}` + "\n")
	bodyDeleted       = []byte(`{"message":"API token deleted"}` + "\n")
)

const (
	createdMessage       = "API token created successfully. Save this token securely - it cannot be retrieved later."
	rotatedMessage       = "API token rotated successfully. Save this token securely - it cannot be retrieved later."
	errBodyNotJSONObject = "Request body must be a JSON object"
)

func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only report types and strings are encoded: cannot happen
		writeBody(w, http.StatusInternalServerError, bodyInternal)
		return
	}
	writeBody(w, status, append(b, '\n'))
}

// badRequest answers 400 with msg as the error text.
func badRequest(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, struct {
		Error string `json:"error"`
	}{msg})
}

func (h *adminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	actor, err := h.auth(r)
	if err != nil {
		if errors.Is(err, ErrStoreUnavailable) {
			w.Header().Set("Retry-After", "1")
			writeBody(w, http.StatusServiceUnavailable, bodyUnavailable)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer`)
		writeBody(w, http.StatusUnauthorized, bodyUnauthorized)
		return
	}
	rel, ok := h.relative(r.URL.Path)
	if !ok {
		writeBody(w, http.StatusNotFound, bodyNotFound)
		return
	}
	var segs []string
	if rel = strings.TrimPrefix(rel, "/"); rel != "" {
		segs = strings.Split(rel, "/")
	}
	for i := range h.routes {
		rt := &h.routes[i]
		idSeg, ok := matchRoute(rt.path, segs)
		if !ok {
			continue
		}
		var serve func(*adminRequest)
		for _, mh := range rt.methods {
			if mh.method == r.Method {
				serve = mh.serve
				break
			}
		}
		if serve == nil {
			w.Header().Set("Allow", rt.allow)
			writeBody(w, http.StatusMethodNotAllowed, bodyMethod)
			return
		}
		req := &adminRequest{w: w, r: r.WithContext(WithActor(r.Context(), actor)), actor: actor}
		if idSeg != "" {
			id, ok := parseID(idSeg)
			if !ok {
				writeBody(w, http.StatusBadRequest, bodyBadID)
				return
			}
			req.id = id
		}
		serve(req)
		return
	}
	writeBody(w, http.StatusNotFound, bodyNotFound)
}

// relative returns the path below the mount path.
func (h *adminHandler) relative(p string) (string, bool) {
	if h.cfg.mount == "" {
		return p, true
	}
	rest, ok := strings.CutPrefix(p, h.cfg.mount)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", false
	}
	return rest, true
}

// matchRoute matches the path segments against a route's pattern and returns
// the {id} segment.
func matchRoute(pattern, segs []string) (id string, ok bool) {
	if len(pattern) != len(segs) {
		return "", false
	}
	for i, p := range pattern {
		switch {
		case p == idSegment:
			id = segs[i]
		case p != segs[i]:
			return "", false
		}
	}
	return id, true
}

// parseID accepts a decimal token id: digits only, at most int64.
func parseID(s string) (int64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil
}

// fail answers err from the Manager: validation errors and unknown tokens
// with their 4xx, everything else with a fixed 5xx body (details are logged).
func (h *adminHandler) fail(q *adminRequest, err error) {
	var ve *ValidationError
	switch {
	case errors.As(err, &ve):
		badRequest(q.w, ve.Field+" "+ve.Message)
		return
	case errors.Is(err, ErrNotFound):
		writeBody(q.w, http.StatusNotFound, bodyTokenNotFound)
		return
	case errors.Is(err, ErrNoUsageStore):
		writeBody(q.w, http.StatusNotImplemented, bodyNoUsage)
		return
	case errors.Is(err, ErrNoAuditStore):
		writeBody(q.w, http.StatusNotImplemented, bodyNoAudit)
		return
	}
	h.m.log.Error("apitoken: admin API request failed",
		"method", q.r.Method, "path", q.r.URL.Path, "actor", q.actor, "error", err.Error())
	if errors.Is(err, ErrStoreUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		q.w.Header().Set("Retry-After", "1")
		writeBody(q.w, http.StatusServiceUnavailable, bodyUnavailable)
		return
	}
	writeBody(q.w, http.StatusInternalServerError, bodyInternal)
}

// tokenView is a copy of a token with its times in UTC.
func tokenView(t *Token) *Token {
	c := t.Clone()
	c.CreatedAt = c.CreatedAt.UTC()
	c.UpdatedAt = c.UpdatedAt.UTC()
	if c.ExpiresAt != nil {
		*c.ExpiresAt = c.ExpiresAt.UTC()
	}
	if c.LastUsedAt != nil {
		*c.LastUsedAt = c.LastUsedAt.UTC()
	}
	return c
}

// createdToken is the create response's token: the token's fields and its
// plaintext, shown this once.
type createdToken struct {
	*Token
	Plaintext string `json:"token"`
}

// listedToken is a token with the list view's request counts.
type listedToken struct {
	*Token
	TokenStats
}

// stats returns the request counts of tokens, all zero when usage is off.
func (h *adminHandler) stats(ctx context.Context, tokens []*Token) (map[int64]TokenStats, error) {
	if h.m.usage == nil || len(tokens) == 0 {
		return map[int64]TokenStats{}, nil
	}
	ids := make([]int64, len(tokens))
	for i, t := range tokens {
		ids[i] = t.ID
	}
	return h.m.TokenStats(ctx, ids)
}

// List paging.
const (
	defaultListLimit = 50
	maxListLimit     = 100
	maxSearchLen     = 255
)

// page reads the limit (default 50, capped at 100) and offset query
// parameters. On failure it has answered the request.
func page(q *adminRequest, query map[string][]string) (limit, offset int, ok bool) {
	limit = defaultListLimit
	if v, ok := queryValue(query, "limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			badRequest(q.w, "limit must be a positive integer")
			return 0, 0, false
		}
		limit = min(n, maxListLimit)
	}
	if v, ok := queryValue(query, "offset"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			badRequest(q.w, "offset must be 0 or a positive integer")
			return 0, 0, false
		}
		offset = n
	}
	return limit, offset, true
}

func (h *adminHandler) list(q *adminRequest) {
	opts, ok := listOptions(q)
	if !ok {
		return
	}
	ctx := q.r.Context()
	tokens, total, err := h.m.List(ctx, opts)
	if err != nil {
		h.fail(q, err)
		return
	}
	st, err := h.stats(ctx, tokens)
	if err != nil {
		h.fail(q, err)
		return
	}
	out := struct {
		Tokens []listedToken `json:"tokens"`
		Total  int           `json:"total"`
		Limit  int           `json:"limit"`
		Offset int           `json:"offset"`
	}{Tokens: make([]listedToken, len(tokens)), Total: total, Limit: opts.Limit, Offset: opts.Offset}
	for i, t := range tokens {
		out.Tokens[i] = listedToken{Token: tokenView(t), TokenStats: st[t.ID]}
	}
	writeJSON(q.w, http.StatusOK, out)
}

// listOptions reads the list's query parameters. On failure it has answered
// the request.
func listOptions(q *adminRequest) (ListOptions, bool) {
	query := q.r.URL.Query()
	var opts ListOptions
	var ok bool
	if opts.Limit, opts.Offset, ok = page(q, query); !ok {
		return opts, false
	}
	if v, ok := queryValue(query, "active"); ok {
		switch v {
		case "true":
			opts.Active = new(bool)
			*opts.Active = true
		case "false":
			opts.Active = new(bool)
		default:
			badRequest(q.w, "active must be true or false")
			return opts, false
		}
	}
	if v, ok := queryValue(query, "search"); ok {
		if !utf8.ValidString(v) || utf8.RuneCountInString(v) > maxSearchLen {
			badRequest(q.w, fmt.Sprintf("search must be valid UTF-8 of at most %d characters", maxSearchLen))
			return opts, false
		}
		opts.Search = v
	}
	if v, ok := queryValue(query, "user_id"); ok {
		if !utf8.ValidString(v) || len(v) > maxShortField {
			badRequest(q.w, fmt.Sprintf("user_id must be valid UTF-8 of at most %d bytes", maxShortField))
			return opts, false
		}
		opts.UserID = v
	}
	if v, ok := queryValue(query, "status"); ok {
		if v == "" || CheckStatus(v) != nil {
			badRequest(q.w, "status must be active, disabled or expired")
			return opts, false
		}
		opts.Status = v
	}
	if v, ok := queryValue(query, "expires_before"); ok {
		t, err := parseQueryTime(v)
		if err != nil {
			badRequest(q.w, "expires_before must be a date (2026-12-31) or an RFC 3339 time (2026-12-31T18:00:00Z)")
			return opts, false
		}
		opts.ExpiresBefore = &t
	}
	return opts, true
}

// parseQueryTime parses a date or an RFC 3339 time from a query parameter,
// as ParseExpiry does. A '+' of the zone offset that reached the query
// unencoded (and so decoded as a space) is taken as a '+'.
func parseQueryTime(v string) (time.Time, error) {
	t, err := ParseExpiry(v)
	if err != nil && strings.Count(v, " ") == 1 {
		t, err = ParseExpiry(strings.Replace(v, " ", "+", 1))
	}
	return t, err
}

// queryValue returns the first value of a query parameter that is present.
func queryValue(q map[string][]string, key string) (string, bool) {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func (h *adminHandler) get(q *adminRequest) {
	ctx := q.r.Context()
	t, err := h.m.Get(ctx, q.id)
	if err != nil {
		h.fail(q, err)
		return
	}
	st, err := h.stats(ctx, []*Token{t})
	if err != nil {
		h.fail(q, err)
		return
	}
	writeJSON(q.w, http.StatusOK, struct {
		Token listedToken `json:"token"`
	}{listedToken{Token: tokenView(t), TokenStats: st[t.ID]}})
}

func (h *adminHandler) create(q *adminRequest) {
	u, ok := h.readUpdate(q)
	if !ok {
		return
	}
	p := CreateParams{
		Name:             u.Name.Value,
		Description:      u.Description.Value,
		UserID:           u.UserID.Value,
		AllowedEndpoints: u.AllowedEndpoints.Value,
		Scopes:           u.Scopes.Value,
		Metadata:         u.Metadata.Value,
		ExpiresAt:        u.ExpiresAt.Value,
		Inactive:         u.Active.Set && !u.Active.Value,
	}
	if u.RateLimit.Set {
		p.RateLimit = &u.RateLimit.Value
	}
	t, plain, err := h.m.Create(q.r.Context(), p)
	h.writeSecret(q, http.StatusCreated, t, plain, createdMessage, err)
}

// readUpdate reads a create or update body into an Update. On failure it
// has answered the request.
func (h *adminHandler) readUpdate(q *adminRequest) (Update, bool) {
	fields, ok := h.readObject(q)
	if !ok {
		return Update{}, false
	}
	u, err := decodeFields(fields)
	if err != nil {
		badRequest(q.w, err.Error())
		return Update{}, false
	}
	return u, true
}

// writeSecret answers a create or rotate: the token with its plaintext,
// shown this once, and message; or err.
func (h *adminHandler) writeSecret(q *adminRequest, status int, t *Token, plain, message string, err error) {
	if err != nil {
		h.fail(q, err)
		return
	}
	writeJSON(q.w, status, struct {
		Token   createdToken `json:"token"`
		Message string       `json:"message"`
	}{createdToken{Token: tokenView(t), Plaintext: plain}, message})
}

func (h *adminHandler) update(q *adminRequest) {
	u, ok := h.readUpdate(q)
	if !ok {
		return
	}
	t, err := h.m.Update(q.r.Context(), q.id, u)
	if err != nil {
		h.fail(q, err)
		return
	}
	writeJSON(q.w, http.StatusOK, struct {
		Token *Token `json:"token"`
	}{tokenView(t)})
}

func (h *adminHandler) rotate(q *adminRequest) {
	fields, ok := h.readBody(q, true)
	if !ok {
		return
	}
	// Unknown members first, in name order: the same error for the same body.
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if k != "grace_period_seconds" {
			badRequest(q.w, unknownField(k))
			return
		}
	}
	var grace time.Duration
	if raw, ok := fields["grace_period_seconds"]; ok {
		var n int64
		max := int64(maxRotationGrace / time.Second)
		if json.Unmarshal(raw, &n) != nil || n < 0 || n > max {
			badRequest(q.w, fmt.Sprintf("grace_period_seconds must be an integer from 0 to %d (30 days)", max))
			return
		}
		grace = time.Duration(n) * time.Second
	}
	t, plain, err := h.m.Rotate(q.r.Context(), q.id, grace)
	h.writeSecret(q, http.StatusOK, t, plain, rotatedMessage, err)
}

// audit serves GET /audit and GET /{id}/audit.
func (h *adminHandler) audit(q *adminRequest) {
	query := q.r.URL.Query()
	aq := AuditQuery{TokenID: q.id}
	var ok bool
	if aq.Limit, aq.Offset, ok = page(q, query); !ok {
		return
	}
	ctx := q.r.Context()
	entries, total, err := h.m.Audit(ctx, aq)
	if err == nil && total == 0 && q.id > 0 {
		// No entries: say whether the token exists at all.
		_, err = h.m.Get(ctx, q.id)
	}
	if err != nil {
		h.fail(q, err)
		return
	}
	for _, e := range entries {
		e.CreatedAt = e.CreatedAt.UTC()
	}
	writeJSON(q.w, http.StatusOK, struct {
		Entries []*AuditEntry `json:"entries"`
		Total   int           `json:"total"`
		Limit   int           `json:"limit"`
		Offset  int           `json:"offset"`
	}{entries, total, aq.Limit, aq.Offset})
}

func (h *adminHandler) delete(q *adminRequest) {
	if err := h.m.Delete(q.r.Context(), q.id); err != nil {
		h.fail(q, err)
		return
	}
	writeBody(q.w, http.StatusOK, bodyDeleted)
}

// days reads the days query parameter (default 7).
func days(q *adminRequest) (int, bool) {
	v, ok := queryValue(q.r.URL.Query(), "days")
	if !ok {
		return 7, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minDays || n > maxDays {
		badRequest(q.w, fmt.Sprintf("days must be an integer between %d and %d", minDays, maxDays))
		return 0, false
	}
	return n, true
}

func (h *adminHandler) usage(q *adminRequest) {
	d, ok := days(q)
	if !ok {
		return
	}
	rep, err := h.m.TokenUsage(q.r.Context(), q.id, d)
	if err != nil {
		h.fail(q, err)
		return
	}
	writeJSON(q.w, http.StatusOK, usageView(rep))
}

func (h *adminHandler) overview(q *adminRequest) {
	d, ok := days(q)
	if !ok {
		return
	}
	rep, err := h.m.Overview(q.r.Context(), d)
	if err != nil {
		h.fail(q, err)
		return
	}
	c := *rep
	if c.TopTokens == nil {
		c.TopTokens = []TopToken{}
	}
	if c.TopEndpoints == nil {
		c.TopEndpoints = []EndpointUsage{}
	}
	if c.RateLimitedTokens == nil {
		c.RateLimitedTokens = []RateLimitedToken{}
	}
	writeJSON(q.w, http.StatusOK, &c)
}

// usageView returns a copy of rep with times in UTC and empty lists as [].
func usageView(rep *TokenUsage) *TokenUsage {
	c := TokenUsage{
		HourlyUsage:    append([]HourlyUsage{}, rep.HourlyUsage...),
		EndpointUsage:  append([]EndpointUsage{}, rep.EndpointUsage...),
		RecentRequests: append([]RecentRequest{}, rep.RecentRequests...),
	}
	for i := range c.HourlyUsage {
		c.HourlyUsage[i].Hour = c.HourlyUsage[i].Hour.UTC()
	}
	for i := range c.RecentRequests {
		c.RecentRequests[i].CreatedAt = c.RecentRequests[i].CreatedAt.UTC()
	}
	return &c
}

// readObject reads the request body as one JSON object (at most the body
// limit, nothing after it) and returns its members undecoded. On failure it
// has answered the request.
func (h *adminHandler) readObject(q *adminRequest) (map[string]json.RawMessage, bool) {
	return h.readBody(q, false)
}

// readBody is readObject; with optional an empty body reads as {}.
func (h *adminHandler) readBody(q *adminRequest, optional bool) (map[string]json.RawMessage, bool) {
	if ct := q.r.Header.Get("Content-Type"); ct != "" && !isJSONMediaType(ct) {
		writeBody(q.w, http.StatusUnsupportedMediaType, bodyMediaType)
		return nil, false
	}
	body := http.MaxBytesReader(q.w, q.r.Body, defaultMaxBodyBytes)
	defer body.Close()
	fields, err := decodeObject(body)
	switch {
	case err == nil:
		return fields, true
	case tooLarge(err):
		writeBody(q.w, http.StatusRequestEntityTooLarge, bodyTooLarge)
	case optional && errors.Is(err, io.EOF):
		return map[string]json.RawMessage{}, true
	default:
		badRequest(q.w, bodyErrorText(err))
	}
	return nil, false
}

// isJSONMediaType reports whether a Content-Type is application/json or
// another JSON type (+json).
func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// errTrailing is decodeObject's error for a body with something after its
// object.
var errTrailing = errors.New("apitoken: trailing data after the JSON object")

// decodeObject reads one JSON object, followed by nothing but white space,
// and returns its members undecoded. An empty body is io.EOF.
func decodeObject(r io.Reader) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(r)
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		return nil, err
	}
	if fields == nil { // the body was null
		return nil, errors.New("apitoken: the body is null")
	}
	if _, err := dec.Token(); err != io.EOF {
		if tooLarge(err) {
			return nil, err
		}
		return nil, errTrailing
	}
	return fields, nil
}

// bodyErrorText is the 400 error text for decodeObject's err.
func bodyErrorText(err error) string {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, errTrailing):
		return "Request body must hold a single JSON object, with nothing after it"
	case errors.Is(err, io.EOF):
		return errBodyNotJSONObject + "; the body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "Malformed JSON: unexpected end of the body"
	case errors.As(err, &se):
		return fmt.Sprintf("Malformed JSON at byte %d: %s", se.Offset, se.Error())
	}
	return errBodyNotJSONObject
}

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// unknownField is the error text for a body member no route accepts.
func unknownField(name string) string {
	return fmt.Sprintf("Unknown field %q", truncate(strings.ToValidUTF8(name, "\uFFFD"), 64))
}

// fieldError is a body field of the wrong type or form.
type fieldError struct{ msg string }

func (e *fieldError) Error() string { return e.msg }

// decodeFields turns the members of a create or update body into an Update:
// a member present sets its field, null clears a nullable one. Unknown
// members (the first in name order) and then wrong types (the first in the
// order of bodyFields) are errors naming the field: the same error for the
// same body. Values are checked by the Manager before anything is written.
func decodeFields(fields map[string]json.RawMessage) (Update, error) {
	var u Update
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if !isBodyField(k) {
			return u, &fieldError{unknownField(k)}
		}
	}
	for _, f := range bodyFields {
		if raw, ok := fields[f.name]; ok {
			if wrong := f.decode(&u, raw); wrong != "" {
				return u, &fieldError{f.name + " " + wrong}
			}
		}
	}
	return u, nil
}
