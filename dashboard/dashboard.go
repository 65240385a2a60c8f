// Package dashboard serves the admin page of apitoken: a browser UI for the
// admin API that apitoken.NewHandler serves. Administrators sign in with the
// admin secret and can list, search, create, edit, enable and disable,
// rotate and delete tokens, read each token's usage (hourly requests,
// endpoints, recent requests, audit log) and an overview of every token's
// usage.
//
// The page is a few hand-written ES modules, a style sheet and an icon,
// embedded in the binary with go:embed: it needs no Node.js, no build step
// and no network access beyond the service itself. It talks only to the
// admin API, sending the admin secret as "Authorization: Bearer <secret>"
// from the browser's sessionStorage (so no cookies, and no CSRF).
//
// Mount it beside the admin API:
//
//	admin, _ := apitoken.NewHandler(m, apitoken.StaticSecret(secret), apitoken.WithMountPath("/api/api-tokens"))
//	mux.Handle("/api/api-tokens", admin)
//	mux.Handle("/api/api-tokens/", admin)
//	mux.Handle("/api/api-tokens/ui/", dashboard.MustNew(dashboard.WithMountPath("/api/api-tokens/ui")))
//
// By default the page calls the admin API at the parent path of the page
// (the UI at /api/api-tokens/ui/ calls /api/api-tokens); WithAPIBase names
// another place.
//
// Every response carries a strict Content-Security-Policy (scripts, styles
// and images only from the service itself, no inline script or style, no
// framing, Trusted Types required), X-Content-Type-Options: nosniff,
// Referrer-Policy: no-referrer and X-Frame-Options: DENY.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Option configures New.
type Option func(*config)

type config struct {
	mount   string
	apiBase string
	title   string
}

// WithMountPath makes the handler serve the page under p (e.g.
// "/api/api-tokens/ui"): the page at p+"/", its assets below it, a redirect
// from p to p+"/", and 404 for anything else. The default, "", serves paths
// as they arrive, for a handler behind http.StripPrefix. A trailing "/" is
// ignored.
func WithMountPath(p string) Option {
	return func(c *config) { c.mount = strings.TrimRight(p, "/") }
}

// WithAPIBase sets where the page finds the admin API: a path such as
// "/api/api-tokens", a path relative to the page such as "..", or an
// absolute http(s) URL (whose origin is then added to the
// Content-Security-Policy's connect-src; the API must answer CORS requests
// from the page's origin with the Authorization header allowed). The
// default is the parent path of the page: with WithMountPath("/a/ui") it is
// "/a"; without a mount path it is "..", which the browser resolves against
// the page's address, so the UI at /api/api-tokens/ui/ calls
// /api/api-tokens.
func WithAPIBase(u string) Option {
	return func(c *config) { c.apiBase = u }
}

// WithTitle sets the page's title and heading (default "API tokens").
func WithTitle(t string) Option {
	return func(c *config) { c.title = t }
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// contentTypes are the media types of the embedded files, by extension.
// They are fixed here rather than read from the system's MIME tables, which
// may name JavaScript differently (browsers refuse a module script with a
// wrong type when nosniff is set).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

type handler struct {
	mount  string
	assets map[string]*asset // by path relative to the page, e.g. "app.js"
	index  *asset
	csp    string
}

var _ http.Handler = (*handler)(nil)

var originRe = regexp.MustCompile(`^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// New returns the dashboard's http.Handler. It answers GET and HEAD (other
// methods get 405) and serves only its embedded files: no directory
// listings. The error reports an invalid option.
func New(opts ...Option) (http.Handler, error) {
	c := config{title: "API tokens"}
	for _, o := range opts {
		o(&c)
	}
	if c.mount != "" && !strings.HasPrefix(c.mount, "/") {
		return nil, fmt.Errorf("apitoken: dashboard mount path %q must start with \"/\"", c.mount)
	}
	if strings.TrimSpace(c.title) == "" {
		return nil, errors.New("apitoken: dashboard title must not be empty")
	}
	apiBase := c.apiBase
	if apiBase == "" {
		apiBase = ".."
		if c.mount != "" {
			apiBase = path.Dir(c.mount)
		}
	}
	connect := "'self'"
	u, err := url.Parse(apiBase)
	if err != nil || u.User != nil || u.Fragment != "" || u.RawQuery != "" || strings.ContainsAny(apiBase, " \t\r\n\"'`<>\\") {
		return nil, fmt.Errorf("apitoken: dashboard API base %q is not a URL path or an http(s) URL without query, fragment or credentials", apiBase)
	}
	if u.Scheme != "" || u.Host != "" {
		origin := u.Scheme + "://" + u.Host
		if (u.Scheme != "http" && u.Scheme != "https") || !originRe.MatchString(origin) {
			return nil, fmt.Errorf("apitoken: dashboard API base %q must be a path or an http(s) URL", apiBase)
		}
		connect += " " + origin
	}
	h := &handler{
		mount:  c.mount,
		assets: map[string]*asset{},
		csp: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src " + connect +
			"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'",
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == "index.html" {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return nil // not served
		}
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		h.assets[name] = newAsset(b, ct)
		return nil
	})
	if err != nil {
		return nil, err
	}
	tpl, err := template.ParseFS(sub, "index.html")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tpl.Execute(&buf, struct{ APIBase, Title string }{apiBase, c.title}); err != nil {
		return nil, err
	}
	h.index = newAsset(buf.Bytes(), contentTypes[".html"])
	return h, nil
}

// MustNew is New that panics on an invalid option, for mounting the
// dashboard in one line.
func MustNew(opts ...Option) http.Handler {
	h, err := New(opts...)
	if err != nil {
		panic(err)
	}
	return h
}

func newAsset(b []byte, ct string) *asset {
	sum := sha256.Sum256(b)
	return &asset{body: b, contentType: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rel, ok := h.relative(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch rel {
	case "":
		// The page's relative links (assets, the API base "..") need its
		// address to end with "/".
		if !strings.HasSuffix(originalPath(r), "/") {
			h.redirect(w, r, path.Base(originalPath(r))+"/")
			return
		}
		h.serve(w, r, "index.html", h.index, "no-cache")
		return
	case "/", "/index.html":
		if rel == "/index.html" {
			h.redirect(w, r, "./")
			return
		}
		h.serve(w, r, "index.html", h.index, "no-cache")
		return
	}
	if a, ok := h.assets[rel[1:]]; ok && rel[0] == '/' {
		h.serve(w, r, rel, a, "no-cache")
		return
	}
	http.NotFound(w, r)
}

// relative returns the request path below the mount path: "" for the mount
// path itself, otherwise a path starting with "/".
func (h *handler) relative(p string) (string, bool) {
	if h.mount == "" {
		if p != "" && p[0] != '/' {
			p = "/" + p
		}
		return p, true
	}
	rest, ok := strings.CutPrefix(p, h.mount)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", false
	}
	return rest, true
}

// originalPath is the path the client asked for, before any
// http.StripPrefix.
func originalPath(r *http.Request) string {
	if r.RequestURI != "" {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil && u.Path != "" {
			return u.Path
		}
	}
	return r.URL.Path
}

func (h *handler) redirect(w http.ResponseWriter, r *http.Request, to string) {
	if r.URL.RawQuery != "" {
		to += "?" + r.URL.RawQuery
	}
	// A relative Location keeps working behind proxies that rewrite the
	// path prefix.
	w.Header().Set("Location", to)
	w.WriteHeader(http.StatusMovedPermanently)
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request, name string, a *asset, cache string) {
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("Cache-Control", cache)
	hd.Set("ETag", a.etag)
	// Revalidated by ETag; no Last-Modified (the zero time omits it).
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}
