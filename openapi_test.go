package apitoken_test

// The OpenAPI document of the admin API (openapi.json) is checked here
// against the handler: every route the handler serves is in the document and
// nothing else is, and real responses of every operation, for every status
// code the document lists, validate against the documented schemas. The
// validator below implements the JSON Schema 2020-12 subset the document
// uses and refuses any other keyword, so the document cannot silently use
// something that is not checked.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/memory"
)

// handlerRoutes mirrors the routes table of NewHandler in handler.go, in its
// order (static segments before {id}), with the methods in the order the
// handler lists them in Allow.
var handlerRoutes = []struct {
	path    string
	methods []string
}{
	{"/stats/overview", []string{"GET"}},
	{"/openapi.json", []string{"GET"}},
	{"/audit", []string{"GET"}},
	{"/", []string{"GET", "POST"}},
	{"/{id}", []string{"GET", "PUT", "PATCH", "DELETE"}},
	{"/{id}/usage", []string{"GET"}},
	{"/{id}/rotate", []string{"POST"}},
	{"/{id}/audit", []string{"GET"}},
}

const oaMount = "/api/api-tokens"

// openAPIDoc is the decoded document (numbers as json.Number).
type openAPIDoc struct {
	root map[string]any
}

func loadOpenAPI(t testing.TB) *openAPIDoc {
	t.Helper()
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeJSON(b)
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	root, ok := v.(map[string]any)
	if !ok {
		t.Fatal("openapi.json is not a JSON object")
	}
	return &openAPIDoc{root: root}
}

// decodeJSON decodes exactly one JSON value, numbers as json.Number.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// resolve follows a local reference ("#/components/...") as a JSON pointer.
func (d *openAPIDoc) resolve(ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not local", ref)
	}
	var cur any = d.root
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("$ref %q does not resolve (no %q)", ref, tok)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("$ref %q does not resolve (index %q)", ref, tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("$ref %q does not resolve", ref)
		}
	}
	return cur, nil
}

// deref returns v, or what it refers to when it is a {"$ref": ...} object.
func (d *openAPIDoc) deref(v any) (map[string]any, error) {
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%v is not an object", v)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, nil
		}
		var err error
		if v, err = d.resolve(ref); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("$ref chain too long")
}

func (d *openAPIDoc) paths() map[string]any {
	p, _ := d.root["paths"].(map[string]any)
	return p
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operations returns "METHOD /template" for every operation.
func (d *openAPIDoc) operations() []string {
	var ops []string
	for p, item := range d.paths() {
		m, _ := item.(map[string]any)
		for _, meth := range httpMethods {
			if _, ok := m[meth]; ok {
				ops = append(ops, strings.ToUpper(meth)+" "+p)
			}
		}
	}
	sort.Strings(ops)
	return ops
}

// matchPath finds the path template of a path relative to the server URL.
// Templates with more literal segments win, as OpenAPI requires.
func (d *openAPIDoc) matchPath(rel string) (string, bool) {
	segs := splitPath(rel)
	best, bestLit := "", -1
	for tmpl := range d.paths() {
		ts := splitPath(tmpl)
		if len(ts) != len(segs) {
			continue
		}
		lit, ok := 0, true
		for i, s := range ts {
			switch {
			case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
				if segs[i] == "" {
					ok = false
				}
			case s == segs[i]:
				lit++
			default:
				ok = false
			}
		}
		if ok && lit > bestLit {
			best, bestLit = tmpl, lit
		}
	}
	return best, bestLit >= 0
}

func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// operation returns the operation object and the parameters that apply to
// it (path-level and operation-level, dereferenced).
func (d *openAPIDoc) operation(tmpl, method string) (op map[string]any, params []map[string]any, err error) {
	item, _ := d.paths()[tmpl].(map[string]any)
	op, ok := item[strings.ToLower(method)].(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("%s %s is not documented", method, tmpl)
	}
	for _, src := range []any{item["parameters"], op["parameters"]} {
		list, _ := src.([]any)
		for _, p := range list {
			pm, err := d.deref(p)
			if err != nil {
				return nil, nil, err
			}
			params = append(params, pm)
		}
	}
	return op, params, nil
}

// statuses returns the documented status codes of an operation.
func statuses(op map[string]any) []string {
	rs, _ := op["responses"].(map[string]any)
	var out []string
	for k := range rs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// --- the JSON Schema subset ---

// schemaKeywords are the keywords the validator understands; annotations are
// accepted and ignored.
var (
	schemaKeywords = map[string]bool{
		"$ref": true, "type": true, "properties": true, "required": true, "additionalProperties": true,
		"items": true, "enum": true, "minimum": true, "maximum": true, "minLength": true, "maxLength": true,
		"maxItems": true, "maxProperties": true, "format": true, "anyOf": true, "oneOf": true,
	}
	schemaAnnotations = map[string]bool{"description": true, "title": true, "default": true, "examples": true}
	schemaFormats     = map[string]bool{"date-time": true, "date": true, "int64": true}
)

// validate appends to errs every way v violates schema, at path.
func (d *openAPIDoc) validate(schema any, v any, path string, errs *[]string) {
	bad := func(format string, args ...any) {
		*errs = append(*errs, path+": "+fmt.Sprintf(format, args...))
	}
	if b, ok := schema.(bool); ok {
		if !b {
			bad("no value is allowed here")
		}
		return
	}
	s, ok := schema.(map[string]any)
	if !ok {
		bad("schema %v is not an object", schema)
		return
	}
	for k := range s {
		if !schemaKeywords[k] && !schemaAnnotations[k] {
			bad("the validator does not support the schema keyword %q", k)
		}
	}
	if ref, ok := s["$ref"].(string); ok {
		target, err := d.resolve(ref)
		if err != nil {
			bad("%v", err)
			return
		}
		d.validate(target, v, path, errs)
	}
	if t, ok := s["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				xs, _ := x.(string)
				types = append(types, xs)
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return hasType(v, t) }) {
			bad("%s is not of type %s", describe(v), strings.Join(types, " or "))
			return // the other keywords would only repeat it
		}
	}
	if e, ok := s["enum"].([]any); ok {
		got, _ := json.Marshal(v)
		if !slices.ContainsFunc(e, func(x any) bool { w, _ := json.Marshal(x); return bytes.Equal(got, w) }) {
			bad("%s is not one of %v", got, e)
		}
	}
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			bad("number %s: %v", v, err)
			break
		}
		if m, ok := s["minimum"].(json.Number); ok {
			if lim, _ := m.Float64(); f < lim {
				bad("%s is below the minimum %s", v, m)
			}
		}
		if m, ok := s["maximum"].(json.Number); ok {
			if lim, _ := m.Float64(); f > lim {
				bad("%s is above the maximum %s", v, m)
			}
		}
		if s["format"] == "int64" {
			if _, err := strconv.ParseInt(v.String(), 10, 64); err != nil {
				bad("%s is not an int64", v)
			}
		}
	case string:
		n := utf8.RuneCountInString(v)
		if m, ok := intKeyword(s, "maxLength"); ok && n > m {
			bad("string of %d characters is longer than maxLength %d", n, m)
		}
		if m, ok := intKeyword(s, "minLength"); ok && n < m {
			bad("string of %d characters is shorter than minLength %d", n, m)
		}
		switch s["format"] {
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				bad("%q is not an RFC 3339 date-time", v)
			}
		case "date":
			if _, err := time.Parse(time.DateOnly, v); err != nil {
				bad("%q is not a date", v)
			}
		}
	case []any:
		if m, ok := intKeyword(s, "maxItems"); ok && len(v) > m {
			bad("%d items, more than maxItems %d", len(v), m)
		}
		if items, ok := s["items"]; ok {
			for i, x := range v {
				d.validate(items, x, fmt.Sprintf("%s[%d]", path, i), errs)
			}
		}
	case map[string]any:
		if m, ok := intKeyword(s, "maxProperties"); ok && len(v) > m {
			bad("%d members, more than maxProperties %d", len(v), m)
		}
		req, _ := s["required"].([]any)
		for _, r := range req {
			if name, _ := r.(string); name != "" {
				if _, ok := v[name]; !ok {
					bad("required member %q is missing", name)
				}
			}
		}
		props, _ := s["properties"].(map[string]any)
		names := make([]string, 0, len(v))
		for k := range v {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			sub := path + "." + k
			if ps, ok := props[k]; ok {
				d.validate(ps, v[k], sub, errs)
			} else if ap, ok := s["additionalProperties"]; ok {
				if ap == false {
					bad("member %q is not in the schema (additionalProperties is false)", k)
				} else {
					d.validate(ap, v[k], sub, errs)
				}
			}
		}
	}
	if subs, ok := s["anyOf"].([]any); ok {
		if d.matching(subs, v) == 0 {
			bad("%s matches none of anyOf", describe(v))
		}
	}
	if one, ok := s["oneOf"].([]any); ok {
		if n := d.matching(one, v); n != 1 {
			bad("%s matches %d of oneOf, want exactly 1", describe(v), n)
		}
	}
}

// matching counts the subschemas v is valid against.
func (d *openAPIDoc) matching(subs []any, v any) int {
	n := 0
	for _, sub := range subs {
		var e []string
		d.validate(sub, v, "", &e)
		if len(e) == 0 {
			n++
		}
	}
	return n
}

func intKeyword(s map[string]any, k string) (int, bool) {
	n, ok := s[k].(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(n.String())
	return i, err == nil
}

func hasType(v any, t string) bool {
	switch v := v.(type) {
	case nil:
		return t == "null"
	case bool:
		return t == "boolean"
	case string:
		return t == "string"
	case []any:
		return t == "array"
	case map[string]any:
		return t == "object"
	case json.Number:
		if t == "number" {
			return true
		}
		if t != "integer" {
			return false
		}
		f, err := v.Float64()
		return err == nil && !math.IsInf(f, 0) && f == math.Trunc(f)
	}
	return false
}

func describe(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// --- driving the handler ---

// oaRecorder sends requests through a handler mounted at oaMount and
// checks each exchange against the document.
type oaRecorder struct {
	t    *testing.T
	doc  *openAPIDoc
	seen map[string]bool // "METHOD /template STATUS"
	errs []string
}

func newOARecorder(t *testing.T) *oaRecorder {
	return &oaRecorder{t: t, doc: loadOpenAPI(t), seen: map[string]bool{}}
}

type oaRequest struct {
	method, path, body string
	contentType        string // "" with a body: application/json
	authz              string // "" : the admin secret; "-": none
	status             int
}

// do sends rq to h, checks the status is rq.status and validates the
// exchange. It returns the decoded response body.
func (c *oaRecorder) do(h http.Handler, rq oaRequest) any {
	c.t.Helper()
	var rd io.Reader
	if rq.body != "" {
		rd = strings.NewReader(rq.body)
	}
	r := httptest.NewRequest(rq.method, oaMount+rq.path, rd)
	switch rq.authz {
	case "":
		r.Header.Set("Authorization", "Bearer "+adminSecret)
	case "-":
	default:
		r.Header.Set("Authorization", rq.authz)
	}
	if rq.body != "" {
		ct := rq.contentType
		if ct == "" {
			ct = "application/json"
		}
		r.Header.Set("Content-Type", ct)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	what := fmt.Sprintf("%s %s → %d", rq.method, rq.path, w.Code)
	if w.Code != rq.status {
		c.t.Errorf("%s, want %d; body %s", what, rq.status, truncateBody(w.Body.String()))
	}
	body, errs := c.check(r, []byte(rq.body), w)
	for _, e := range errs {
		c.errs = append(c.errs, what+": "+e)
	}
	return body
}

func truncateBody(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// check validates one exchange against the document and records the
// operation and status as seen.
func (c *oaRecorder) check(r *http.Request, reqBody []byte, w *httptest.ResponseRecorder) (any, []string) {
	var errs []string
	rel, ok := strings.CutPrefix(r.URL.Path, oaMount)
	if !ok {
		return nil, []string{"path outside the mount point"}
	}
	tmpl, ok := c.doc.matchPath(rel)
	if !ok {
		return nil, []string{"no path of the document matches " + rel}
	}
	op, params, err := c.doc.operation(tmpl, r.Method)
	if err != nil {
		return nil, []string{err.Error()}
	}
	code := strconv.Itoa(w.Code)
	c.seen[r.Method+" "+tmpl+" "+code] = true

	// The request: every query parameter is documented, and a request the
	// handler accepted is valid by the document.
	accepted := w.Code >= 200 && w.Code < 300
	for name, vals := range r.URL.Query() {
		var p map[string]any
		for _, x := range params {
			if x["name"] == name && x["in"] == "query" {
				p = x
			}
		}
		if p == nil {
			errs = append(errs, fmt.Sprintf("query parameter %q is not documented", name))
			continue
		}
		if accepted {
			c.doc.validate(p["schema"], queryValue(p["schema"], vals[0]), "query "+name, &errs)
		}
	}
	if accepted {
		for _, p := range params {
			if p["in"] == "path" {
				seg := splitPath(rel)[slices.Index(splitPath(tmpl), "{"+p["name"].(string)+"}")]
				c.doc.validate(p["schema"], queryValue(p["schema"], seg), "path "+p["name"].(string), &errs)
			}
		}
		if rb, ok := op["requestBody"]; ok {
			rbm, err := c.doc.deref(rb)
			if err != nil {
				errs = append(errs, err.Error())
			} else if schema, ok := mediaSchema(rbm, "application/json"); ok && (len(reqBody) > 0 || rbm["required"] == true) {
				// An optional body may be left out.
				if v, err := decodeJSON(reqBody); err != nil {
					errs = append(errs, "request body: "+err.Error())
				} else {
					c.doc.validate(schema, v, "request", &errs)
				}
			}
		}
	}

	// The response: a documented status, the documented media type and
	// headers, and a body valid by the schema.
	rs, _ := op["responses"].(map[string]any)
	resp, ok := rs[code]
	if !ok {
		resp, ok = rs["default"]
	}
	if !ok {
		return nil, append(errs, fmt.Sprintf("status %s is not documented for %s %s (documented: %v)", code, r.Method, tmpl, statuses(op)))
	}
	rm, err := c.doc.deref(resp)
	if err != nil {
		return nil, append(errs, err.Error())
	}
	if hs, ok := rm["headers"].(map[string]any); ok {
		for name, hv := range hs {
			hm, err := c.doc.deref(hv)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			if hm["required"] == true && w.Header().Get(name) == "" {
				errs = append(errs, fmt.Sprintf("documented header %s is missing", name))
			}
		}
	}
	mt, _, err := mime.ParseMediaType(w.Header().Get("Content-Type"))
	if err != nil {
		return nil, append(errs, fmt.Sprintf("Content-Type %q: %v", w.Header().Get("Content-Type"), err))
	}
	schema, ok := mediaSchema(rm, mt)
	if !ok {
		return nil, append(errs, fmt.Sprintf("media type %s is not documented for status %s", mt, code))
	}
	body, err := decodeJSON(w.Body.Bytes())
	if err != nil {
		return nil, append(errs, fmt.Sprintf("body %s: %v", truncateBody(w.Body.String()), err))
	}
	c.doc.validate(schema, body, "$", &errs)
	return body, errs
}

func mediaSchema(m map[string]any, mt string) (any, bool) {
	content, _ := m["content"].(map[string]any)
	media, ok := content[mt].(map[string]any)
	if !ok {
		return nil, false
	}
	s, ok := media["schema"]
	return s, ok
}

// queryValue turns a parameter's text into the JSON value its schema
// describes, or leaves it a string when it cannot be one.
func queryValue(schema any, s string) any {
	sm, _ := schema.(map[string]any)
	switch sm["type"] {
	case "integer", "number":
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return json.Number(s)
		}
	case "boolean":
		if b, err := strconv.ParseBool(s); err == nil && (s == "true" || s == "false") {
			return b
		}
	}
	return s
}

// finish fails the test with every violation found and every documented
// status that was not produced.
func (c *oaRecorder) finish() {
	c.t.Helper()
	for _, e := range c.errs {
		c.t.Error(e)
	}
	var missing []string
	for _, opName := range c.doc.operations() {
		method, tmpl, _ := strings.Cut(opName, " ")
		op, _, err := c.doc.operation(tmpl, method)
		if err != nil {
			c.t.Error(err)
			continue
		}
		for _, st := range statuses(op) {
			if !c.seen[opName+" "+st] {
				missing = append(missing, opName+" "+st)
			}
		}
	}
	if len(missing) > 0 {
		c.t.Errorf("documented responses never produced by the test:\n\t%s", strings.Join(missing, "\n\t"))
	}
}

// instantiate fills a path template's {id} with id.
func instantiate(tmpl string, id int64) string {
	return strings.ReplaceAll(tmpl, "{id}", strconv.FormatInt(id, 10))
}

// failingUsage is a usage store whose reports fail with a plain error (500).
type failingUsage struct{ *memory.Store }

func (failingUsage) Overview(context.Context, apitoken.Query) (*apitoken.Overview, error) {
	return nil, errors.New("disk on fire")
}

// --- the tests ---

func TestOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	if v := doc.root["openapi"]; v != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", v)
	}
	info, _ := doc.root["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Errorf("info = %v, want a title and a version", info)
	}
	servers, _ := doc.root["servers"].([]any)
	if len(servers) != 1 || servers[0].(map[string]any)["url"] != oaMount {
		t.Errorf("servers = %v, want %s", servers, oaMount)
	}
	if _, err := doc.resolve("#/components/securitySchemes/bearerAuth"); err != nil {
		t.Error(err)
	}

	// Every $ref resolves, and every schema uses only what the validator
	// checks.
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, err := doc.resolve(ref); err != nil {
					t.Errorf("%s: %v", at, err)
				}
			}
			for k, x := range v {
				walk(x, at+"/"+k)
			}
		case []any:
			for i, x := range v {
				walk(x, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(doc.root, "#")
	var schemaCheck func(v any, at string)
	schemaCheck = func(v any, at string) {
		s, ok := v.(map[string]any)
		if !ok {
			if _, isBool := v.(bool); !isBool {
				t.Errorf("%s: schema is not an object", at)
			}
			return
		}
		for k, x := range s {
			switch {
			case schemaAnnotations[k]:
			case !schemaKeywords[k]:
				t.Errorf("%s: schema keyword %q is not supported by the test's validator", at, k)
			case k == "properties":
				for name, ps := range x.(map[string]any) {
					schemaCheck(ps, at+"/properties/"+name)
				}
			case k == "items" || k == "additionalProperties":
				schemaCheck(x, at+"/"+k)
			case k == "anyOf" || k == "oneOf":
				for i, sub := range x.([]any) {
					schemaCheck(sub, fmt.Sprintf("%s/%s/%d", at, k, i))
				}
			case k == "format" && !schemaFormats[x.(string)]:
				t.Errorf("%s: format %q is not checked by the test's validator", at, x)
			case k == "required":
				props, _ := s["properties"].(map[string]any)
				for _, r := range x.([]any) {
					if _, ok := props[r.(string)]; !ok {
						t.Errorf("%s: required %q is not a property", at, r)
					}
				}
			}
		}
	}
	comps, _ := doc.root["components"].(map[string]any)
	for name, s := range comps["schemas"].(map[string]any) {
		schemaCheck(s, "#/components/schemas/"+name)
	}
	// Schemas of parameters, headers and media types anywhere.
	var findSchemas func(v any, at string)
	findSchemas = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "schema" {
					schemaCheck(x, at+"/schema")
				} else if k != "schemas" {
					findSchemas(x, at+"/"+k)
				}
			}
		case []any:
			for i, x := range v {
				findSchemas(x, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	findSchemas(doc.root, "#")

	// Operations: a unique operationId, documented path parameters, a 401
	// (the Authorizer runs first everywhere), JSON content for every response.
	ids := map[string]string{}
	for _, opName := range doc.operations() {
		method, tmpl, _ := strings.Cut(opName, " ")
		op, params, err := doc.operation(tmpl, method)
		if err != nil {
			t.Error(err)
			continue
		}
		id, _ := op["operationId"].(string)
		if id == "" || ids[id] != "" {
			t.Errorf("%s: operationId %q missing or also used by %s", opName, id, ids[id])
		}
		ids[id] = opName
		for _, seg := range splitPath(tmpl) {
			if name, ok := strings.CutPrefix(seg, "{"); ok {
				name = strings.TrimSuffix(name, "}")
				if !slices.ContainsFunc(params, func(p map[string]any) bool {
					return p["name"] == name && p["in"] == "path" && p["required"] == true
				}) {
					t.Errorf("%s: path parameter %s is not declared as required", opName, name)
				}
			}
		}
		rs, _ := op["responses"].(map[string]any)
		if _, ok := rs["401"]; !ok {
			t.Errorf("%s: no 401 response", opName)
		}
		for code, r := range rs {
			rm, err := doc.deref(r)
			if err != nil {
				t.Errorf("%s %s: %v", opName, code, err)
				continue
			}
			if _, ok := mediaSchema(rm, "application/json"); !ok || rm["description"] == nil {
				t.Errorf("%s %s: want a description and an application/json schema", opName, code)
			}
		}
	}

	// The document's routes are the handler's routes.
	var want []string
	for _, rt := range handlerRoutes {
		for _, m := range rt.methods {
			want = append(want, m+" "+rt.path)
		}
	}
	sort.Strings(want)
	if got := doc.operations(); !slices.Equal(got, want) {
		t.Errorf("documented operations:\n\t%s\nhandler routes:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// The handler's routes are what handlerRoutes says: OPTIONS (served by no
// route) answers 405 with the route's methods in Allow, and paths of no
// route answer 404. A route added to handler.go but not to handlerRoutes
// (and so to the document) fails here.
func TestOpenAPIRouteTableMatchesHandler(t *testing.T) {
	e := newAdminEnv(t, nil, nil, apitoken.WithMountPath(oaMount))
	predict := func(path string) (allow string, ok bool) {
		segs := splitPath(path)
		for _, rt := range handlerRoutes {
			ts := splitPath(rt.path)
			if len(ts) != len(segs) {
				continue
			}
			match := true
			for i := range ts {
				if ts[i] != "{id}" && ts[i] != segs[i] {
					match = false
				}
			}
			if match {
				return strings.Join(rt.methods, ", "), true
			}
		}
		return "", false
	}
	paths := []string{"/audits", "/1/audit/x", "/1/rotate/x", "/stats", "/stats/x", "/openapi.json/x", "/openapi.yaml", "/1/usage/x", "/x/y/z"}
	for _, rt := range handlerRoutes {
		paths = append(paths, instantiate(rt.path, 1))
	}
	for _, p := range paths {
		allow, served := predict(p)
		w := e.do(t, "OPTIONS", oaMount+p, "")
		switch {
		case served && (w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != allow):
			t.Errorf("OPTIONS %s = %d Allow %q, want 405 Allow %q", p, w.Code, w.Header().Get("Allow"), allow)
		case !served && w.Code != http.StatusNotFound:
			t.Errorf("OPTIONS %s = %d Allow %q: the handler serves a route missing from handlerRoutes and openapi.json", p, w.Code, w.Header().Get("Allow"))
		}
	}
}

// GET /openapi.json serves the embedded document as JSON, only when
// authorized.
func TestOpenAPIServed(t *testing.T) {
	e := newAdminEnv(t, nil, nil, apitoken.WithMountPath(oaMount))
	file, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	w := e.do(t, "GET", oaMount+"/openapi.json", "")
	wantStatus(t, w, http.StatusOK)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if !bytes.Equal(w.Body.Bytes(), file) {
		t.Error("GET /openapi.json is not openapi.json")
	}
	if !bytes.Equal(apitoken.OpenAPIDocument(), file) {
		t.Error("OpenAPIDocument() is not openapi.json")
	}
	doc := apitoken.OpenAPIDocument()
	doc[0] = 'x' // a copy: the served document is unchanged
	if w := e.do(t, "GET", oaMount+"/openapi.json", ""); !bytes.Equal(w.Body.Bytes(), file) {
		t.Error("OpenAPIDocument returned the served bytes, not a copy")
	}
	w = e.doAuth(t, "GET", oaMount+"/openapi.json", "", "")
	wantStatus(t, w, http.StatusUnauthorized)
}

// Real responses of every operation, for every documented status, validate
// against the document.
func TestOpenAPIResponsesMatchDocument(t *testing.T) {
	c := newOARecorder(t)
	defer c.finish()
	e := newAdminEnv(t, nil, nil, apitoken.WithMountPath(oaMount))
	ctx := context.Background()

	// Two tokens: one with every field, one with the fewest.
	full := c.do(e.h, oaRequest{method: "POST", path: "/", status: 201, body: `{
		"name": "WordPress Plugin - Main Site", "description": "Token for the main WordPress website",
		"user_id": "42", "active": true, "rate_limit": 200, "expires_at": "2027-06-30",
		"allowed_endpoints": ["/products*", "/stores*"], "scopes": ["read"], "metadata": {"team": "web"}}`})
	c.do(e.h, oaRequest{method: "POST", path: "/", status: 201, body: `{"name": "Mobile App", "allowed_endpoints": null, "expires_at": "2027-01-01T18:30:00+02:00"}`})
	c.do(e.h, oaRequest{method: "POST", path: "/", status: 201, body: `{"name": "Minimal"}`})
	plain := ""
	if m, ok := full.(map[string]any); ok {
		if tok, ok := m["token"].(map[string]any); ok {
			plain, _ = tok["token"].(string)
		}
	}
	if plain == "" {
		t.Fatalf("no plaintext in the create response %v", full)
	}

	// Traffic through the middleware, recorded synchronously, so that the
	// counts, last_used_at and every analytics list are filled.
	recorded, err := apitoken.NewManager(e.store, apitoken.WithClock(e.clk), apitoken.WithSink(sinkFunc(func(ev apitoken.Event) {
		_ = e.store.RecordUsage(ctx, []apitoken.Event{ev})
	})))
	if err != nil {
		t.Fatal(err)
	}
	defer recorded.Close(ctx)
	api := apitoken.Middleware(recorded, apitoken.WithBasePath("/api"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	for _, p := range []string{"/api/products", "/api/products/1", "/api/stores", "/api/orders"} {
		r := httptest.NewRequest("GET", p, nil)
		r.Header.Set("Authorization", "Bearer "+plain)
		r.Header.Set("User-Agent", "openapi-test")
		api.ServeHTTP(httptest.NewRecorder(), r)
	}
	// Two requests the limiter refused (recorded as the middleware records
	// them), for rate_limited_tokens.
	refused := apitoken.Event{TokenID: 1, Endpoint: "/api/products", Method: "GET", StatusCode: http.StatusTooManyRequests,
		ResponseTime: time.Millisecond, UserAgent: "openapi-test", Time: e.clk.Now()}
	if err := e.store.RecordUsage(ctx, []apitoken.Event{refused, refused}); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	if err := recorded.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}

	nonEmpty := func(body any, keys ...string) {
		t.Helper()
		m, _ := body.(map[string]any)
		for _, k := range keys {
			if l, _ := m[k].([]any); len(l) == 0 {
				t.Errorf("%s is empty: the response does not exercise its item schema", k)
			}
		}
	}

	// Success of every operation.
	nonEmpty(c.do(e.h, oaRequest{method: "GET", path: "/", status: 200}), "tokens")
	nonEmpty(c.do(e.h, oaRequest{method: "GET", path: "/?limit=10&offset=0&search=word&active=true&user_id=42", status: 200}), "tokens")
	c.do(e.h, oaRequest{method: "GET", path: "/?limit=1000&active=false", status: 200})
	nonEmpty(c.do(e.h, oaRequest{method: "GET", path: "/?status=active&expires_before=2027-07-01", status: 200}), "tokens")
	nonEmpty(c.do(e.h, oaRequest{method: "GET", path: "/?status=active&expires_before=2027-01-01T17:30:00Z&limit=5", status: 200}), "tokens")
	c.do(e.h, oaRequest{method: "GET", path: "/?status=expired", status: 200})
	c.do(e.h, oaRequest{method: "GET", path: "/?status=disabled&search=x", status: 200})
	c.do(e.h, oaRequest{method: "GET", path: "/1", status: 200})
	nonEmpty(c.do(e.h, oaRequest{method: "GET", path: "/1/usage?days=7", status: 200}), "hourly_usage", "endpoint_usage", "recent_requests")
	c.do(e.h, oaRequest{method: "GET", path: "/2/usage", status: 200})
	nonEmpty(c.do(e.h, oaRequest{method: "GET", path: "/stats/overview?days=90", status: 200}), "top_tokens", "top_endpoints", "rate_limited_tokens")
	c.do(e.h, oaRequest{method: "GET", path: "/stats/overview", status: 200})
	c.do(e.h, oaRequest{method: "PUT", path: "/1", status: 200, body: `{"name": "WordPress Plugin - Main Site (Updated)", "active": false, "rate_limit": 300}`})
	c.do(e.h, oaRequest{method: "PATCH", path: "/1", status: 200, body: `{"expires_at": null, "allowed_endpoints": null, "scopes": null, "metadata": null, "user_id": null, "description": null}`})
	c.do(e.h, oaRequest{method: "PATCH", path: "/2", status: 200, body: `{}`})
	c.do(e.h, oaRequest{method: "GET", path: "/openapi.json", status: 200})
	c.do(e.h, oaRequest{method: "POST", path: "/2/rotate", status: 200})
	c.do(e.h, oaRequest{method: "POST", path: "/2/rotate", status: 200, body: `{"grace_period_seconds": 3600}`})
	c.do(e.h, oaRequest{method: "DELETE", path: "/3", status: 200})
	nonEmpty(c.do(e.h, oaRequest{method: "GET", path: "/1/audit", status: 200}), "entries")
	nonEmpty(c.do(e.h, oaRequest{method: "GET", path: "/3/audit?limit=1&offset=0", status: 200}), "entries")
	nonEmpty(c.do(e.h, oaRequest{method: "GET", path: "/audit?limit=100", status: 200}), "entries")

	// 400, 404, 413, 415 and 401 of every operation.
	huge := `{"name":"` + strings.Repeat("x", apitoken.DefaultMaxBodyBytes) + `"}`
	for _, rq := range []oaRequest{
		{method: "POST", path: "/", body: `{"name":"x","bogus":1}`, status: 400},
		{method: "POST", path: "/", body: huge, status: 413},
		{method: "POST", path: "/", body: `{"name":"x"}`, contentType: "text/plain", status: 415},
		{method: "GET", path: "/?limit=0", status: 400},
		{method: "GET", path: "/?status=bogus", status: 400},
		{method: "GET", path: "/?expires_before=next-week", status: 400},
		{method: "GET", path: "/abc", status: 400},
		{method: "GET", path: "/999", status: 404},
		{method: "PUT", path: "/1", body: `{"rate_limit":-1}`, status: 400},
		{method: "PUT", path: "/999", body: `{"name":"x"}`, status: 404},
		{method: "PUT", path: "/1", body: huge, status: 413},
		{method: "PUT", path: "/1", body: `{"name":"x"}`, contentType: "application/x-www-form-urlencoded", status: 415},
		{method: "PATCH", path: "/1", body: `{"expires_at":"2020-01-01"}`, status: 400},
		{method: "PATCH", path: "/999", body: `{}`, status: 404},
		{method: "PATCH", path: "/1", body: huge, status: 413},
		{method: "PATCH", path: "/1", body: `{}`, contentType: "text/json", status: 415},
		{method: "DELETE", path: "/x1", status: 400},
		{method: "DELETE", path: "/999", status: 404},
		{method: "GET", path: "/1/usage?days=0", status: 400},
		{method: "GET", path: "/999/usage", status: 404},
		{method: "GET", path: "/stats/overview?days=91", status: 400},
		{method: "POST", path: "/1/rotate", body: `{"grace_period_seconds": -1}`, status: 400},
		{method: "POST", path: "/999/rotate", status: 404},
		{method: "POST", path: "/1/rotate", body: huge, status: 413},
		{method: "POST", path: "/1/rotate", body: `{}`, contentType: "text/plain", status: 415},
		{method: "GET", path: "/1/audit?offset=-1", status: 400},
		{method: "GET", path: "/999/audit", status: 404},
		{method: "GET", path: "/audit?limit=x", status: 400},
	} {
		c.do(e.h, rq)
	}
	for _, opName := range c.doc.operations() {
		method, tmpl, _ := strings.Cut(opName, " ")
		c.do(e.h, oaRequest{method: method, path: instantiate(tmpl, 1), authz: "-", status: 401, body: `{"name":"x"}`})
		c.do(e.h, oaRequest{method: method, path: instantiate(tmpl, 1), authz: "Bearer wrong", status: 401})
	}

	// 503 of every operation: the Authorizer's store is down.
	down := newAdminEnv(t, func(*http.Request) (string, error) {
		return "", fmt.Errorf("%w: connection refused", apitoken.ErrStoreUnavailable)
	}, nil, apitoken.WithMountPath(oaMount))
	for _, opName := range c.doc.operations() {
		method, tmpl, _ := strings.Cut(opName, " ")
		c.do(down.h, oaRequest{method: method, path: instantiate(tmpl, 1), status: 503, body: `{"name":"x"}`})
	}

	// 500 of every operation that reaches the store.
	broken := newAdminEnv(t, nil, []apitoken.Option{apitoken.WithUsageStore(failingUsage{memory.New()})}, apitoken.WithMountPath(oaMount))
	if _, _, err := broken.m.Create(ctx, apitoken.CreateParams{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	c.do(broken.h, oaRequest{method: "GET", path: "/stats/overview", status: 500})
	broken.store.fail.Store(true)
	for _, rq := range []oaRequest{
		{method: "POST", path: "/", body: `{"name":"y"}`},
		{method: "GET", path: "/"},
		{method: "GET", path: "/1"},
		{method: "PUT", path: "/1", body: `{"name":"z"}`},
		{method: "PATCH", path: "/1", body: `{"active":false}`},
		{method: "DELETE", path: "/1"},
		{method: "GET", path: "/1/usage"},
		{method: "POST", path: "/1/rotate"},
		{method: "GET", path: "/1/audit"},
		{method: "GET", path: "/audit"},
	} {
		rq.status = 500
		c.do(broken.h, rq)
	}

	// 501 without a usage store.
	noUsage := newAdminEnv(t, nil, []apitoken.Option{apitoken.WithUsageStore(nil)}, apitoken.WithMountPath(oaMount))
	if _, _, err := noUsage.m.Create(ctx, apitoken.CreateParams{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	c.do(noUsage.h, oaRequest{method: "GET", path: "/1/usage", status: 501})
	c.do(noUsage.h, oaRequest{method: "GET", path: "/stats/overview", status: 501})
	c.do(noUsage.h, oaRequest{method: "GET", path: "/", status: 200})

	// 501 when the store keeps no audit log.
	noAudit := newManagerHandler(t, noAuditStore{memory.New()}, apitoken.WithMountPath(oaMount))
	c.do(noAudit, oaRequest{method: "GET", path: "/audit", status: 501})
	c.do(noAudit, oaRequest{method: "GET", path: "/1/audit", status: 501})
}

// noAuditStore is a Store without the AuditStore side.
type noAuditStore struct{ apitoken.Store }

// newManagerHandler returns the admin handler of a new Manager over st.
func newManagerHandler(t *testing.T, st apitoken.Store, opts ...apitoken.HandlerOption) http.Handler {
	t.Helper()
	m, err := apitoken.NewManager(st, apitoken.WithLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	h, err := apitoken.NewHandler(m, apitoken.StaticSecret(adminSecret), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// The request schemas list exactly the body members the handler decodes (the
// package's table of body fields, which Update, the Manager's validation and
// the audit log read too), and no others are allowed; name alone is required
// to create.
func TestOpenAPIRequestSchemasListBodyFields(t *testing.T) {
	doc := loadOpenAPI(t)
	want := slices.Sorted(slices.Values(apitoken.BodyFieldNames()))
	for _, tc := range []struct {
		name     string
		required []any
	}{
		{"CreateTokenRequest", []any{"name"}},
		{"UpdateTokenRequest", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := doc.resolve("#/components/schemas/" + tc.name)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := v.(map[string]any)
			props, _ := s["properties"].(map[string]any)
			if got := slices.Sorted(maps.Keys(props)); !slices.Equal(got, want) {
				t.Errorf("properties = %v, want the body fields %v", got, want)
			}
			if s["additionalProperties"] != false {
				t.Errorf("additionalProperties = %v, want false", s["additionalProperties"])
			}
			if req, _ := s["required"].([]any); !slices.Equal(req, tc.required) {
				t.Errorf("required = %v, want %v", req, tc.required)
			}
		})
	}
}

// The request schemas agree with the handler on the inputs a schema can
// judge: what the schema refuses the handler refuses with 400, and what it
// accepts (with values the Manager also accepts) is created.
func TestOpenAPIRequestSchemasMatchHandler(t *testing.T) {
	doc := loadOpenAPI(t)
	create, _ := doc.resolve("#/components/schemas/CreateTokenRequest")
	update, _ := doc.resolve("#/components/schemas/UpdateTokenRequest")
	long := func(n int) string { return strings.Repeat("é", n) }
	refused := []string{
		`{}`,
		`{"name":"x","bogus":1}`,
		`{"name":5}`,
		`{"name":null}`,
		`{"name":""}`,
		`{"name":"` + long(256) + `"}`,
		`{"name":"x","description":"` + long(4097) + `"}`,
		`{"name":"x","description":[]}`,
		`{"name":"x","user_id":42}`,
		`{"name":"x","user_id":"` + strings.Repeat("u", 256) + `"}`,
		`{"name":"x","active":"yes"}`,
		`{"name":"x","active":null}`,
		`{"name":"x","rate_limit":-1}`,
		`{"name":"x","rate_limit":1.5}`,
		`{"name":"x","rate_limit":"100"}`,
		`{"name":"x","rate_limit":null}`,
		`{"name":"x","rate_limit":1000000001}`,
		`{"name":"x","expires_at":"31/12/2026"}`,
		`{"name":"x","expires_at":20261231}`,
		`{"name":"x","allowed_endpoints":"/products*"}`,
		`{"name":"x","allowed_endpoints":[1]}`,
		`{"name":"x","scopes":[""]}`,
		`{"name":"x","scopes":"admin"}`,
		`{"name":"x","metadata":["a"]}`,
		`{"name":"x","metadata":{"a":1}}`,
	}
	accepted := []string{
		`{"name":"x"}`,
		`{"name":"` + long(255) + `","description":"` + long(4096) + `"}`,
		`{"name":"x","description":null,"user_id":null,"allowed_endpoints":null,"scopes":null,"metadata":null,"expires_at":null}`,
		`{"name":"x","active":false,"rate_limit":0,"expires_at":"2030-01-01"}`,
		`{"name":"x","rate_limit":1000000000,"expires_at":"2030-01-01T00:00:00.5-05:00"}`,
		`{"name":"x","allowed_endpoints":[],"scopes":["a","b"],"metadata":{"k":"v"},"user_id":"` + strings.Repeat("u", 255) + `"}`,
	}
	e := newAdminEnv(t, nil, nil)
	id, _, err := e.m.Create(context.Background(), apitoken.CreateParams{Name: "target"})
	if err != nil {
		t.Fatal(err)
	}
	schemaOK := func(schema any, body string) (bool, []string) {
		v, err := decodeJSON([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		var errs []string
		doc.validate(schema, v, "$", &errs)
		return len(errs) == 0, errs
	}
	for _, body := range refused {
		short := truncateBody(body)
		if ok, _ := schemaOK(create, body); ok {
			t.Errorf("CreateTokenRequest accepts %s", short)
		}
		if w := e.do(t, "POST", "/", body); w.Code != http.StatusBadRequest {
			t.Errorf("POST / %s = %d, want 400", short, w.Code)
		}
		if body == `{}` || body == `{"name":"x"}` {
			continue
		}
		// The update schema is the create schema without required.
		if ok, _ := schemaOK(update, body); ok {
			t.Errorf("UpdateTokenRequest accepts %s", short)
		}
		if w := e.do(t, "PATCH", fmt.Sprintf("/%d", id.ID), body); w.Code != http.StatusBadRequest {
			t.Errorf("PATCH /{id} %s = %d, want 400", short, w.Code)
		}
	}
	for _, body := range accepted {
		short := truncateBody(body)
		if ok, errs := schemaOK(create, body); !ok {
			t.Errorf("CreateTokenRequest refuses %s: %v", short, errs)
		}
		if w := e.do(t, "POST", "/", body); w.Code != http.StatusCreated {
			t.Errorf("POST / %s = %d %s, want 201", short, w.Code, truncateBody(w.Body.String()))
		}
		if ok, errs := schemaOK(update, body); !ok {
			t.Errorf("UpdateTokenRequest refuses %s: %v", short, errs)
		}
		if w := e.do(t, "PATCH", fmt.Sprintf("/%d", id.ID), body); w.Code != http.StatusOK {
			t.Errorf("PATCH /{id} %s = %d %s, want 200", short, w.Code, truncateBody(w.Body.String()))
		}
	}
}

// The validator itself finds what it should.
func TestOpenAPIValidator(t *testing.T) {
	doc := loadOpenAPI(t)
	tokenSchema := map[string]any{"$ref": "#/components/schemas/Token"}
	good := `{"id":1,"name":"n","description":"","start":"atk_abcdef","active":true,"rate_limit":0,
		"allowed_endpoints":null,"expires_at":null,"last_used_at":"2026-11-23T12:00:00Z",
		"created_at":"2026-11-23T12:00:00Z","updated_at":"2026-11-23T12:00:00.123Z"}`
	tests := []struct {
		name   string
		schema any
		json   string
		want   string // "" for valid, else a substring of a violation
	}{
		{"token", tokenSchema, good, ""},
		{"missing member", tokenSchema, `{"id":1}`, `required member "name" is missing`},
		{"extra member", tokenSchema, strings.Replace(good, `"id":1`, `"id":1,"hash":"x"`, 1), `member "hash" is not in the schema`},
		{"wrong type", tokenSchema, strings.Replace(good, `"active":true`, `"active":"true"`, 1), "$.active: \"true\" is not of type boolean"},
		{"fraction for integer", tokenSchema, strings.Replace(good, `"rate_limit":0`, `"rate_limit":0.5`, 1), "is not of type integer"},
		{"1.0 is an integer", tokenSchema, strings.Replace(good, `"rate_limit":0`, `"rate_limit":1.0`, 1), ""},
		{"below minimum", tokenSchema, strings.Replace(good, `"rate_limit":0`, `"rate_limit":-1`, 1), "below the minimum"},
		{"bad date-time", tokenSchema, strings.Replace(good, `"expires_at":null`, `"expires_at":"2026-12-31"`, 1), "not an RFC 3339 date-time"},
		{"null not allowed", tokenSchema, strings.Replace(good, `"created_at":"2026-11-23T12:00:00Z"`, `"created_at":null`, 1), "is not of type string"},
		{"items", tokenSchema, strings.Replace(good, `"allowed_endpoints":null`, `"allowed_endpoints":["/a",2]`, 1), "$.allowed_endpoints[1]"},
		{"enum", map[string]any{"$ref": "#/components/schemas/DeleteResponse"}, `{"message":"deleted"}`, "is not one of"},
		{"maxLength", map[string]any{"type": "string", "maxLength": json.Number("2")}, `"éée"`, "longer than maxLength"},
		{"anyOf", map[string]any{"anyOf": []any{map[string]any{"type": "string", "format": "date"}, map[string]any{"type": "null"}}}, `"2026-02-30"`, "matches none of anyOf"},
		{"oneOf", map[string]any{"oneOf": []any{map[string]any{"type": "integer"}, map[string]any{"type": "number"}}}, `1`, "matches 2 of oneOf"},
		{"unknown keyword", map[string]any{"pattern": "^a"}, `"a"`, "does not support the schema keyword"},
		{"dangling ref", map[string]any{"$ref": "#/components/schemas/Nope"}, `1`, "does not resolve"},
		{"false", false, `1`, "no value is allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := decodeJSON([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			var errs []string
			doc.validate(tt.schema, v, "$", &errs)
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Errorf("violations %v, want none", errs)
			case tt.want != "" && !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, tt.want) }):
				t.Errorf("violations %v, want one containing %q", errs, tt.want)
			}
		})
	}
}
