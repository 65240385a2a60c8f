package pathmatch

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/gobwas/glob"
	"github.com/gobwas/glob/syntax"
)

// maxPatternLen is the maximum length in bytes of one pattern entry,
// method included.
const maxPatternLen = 1024

// maxPathLen is the length in bytes above which a path matches no pattern.
// The backtracking matcher is quadratic in the length of a segment for some
// patterns (e.g. `/*a?`), so the length must be bounded.
const maxPathLen = 8 << 10

// Clean returns the canonical form of an already once-decoded URL path
// (r.URL.Path): a leading "/" is ensured, and "." and ".." segments and
// repeated slashes are resolved as path.Clean does; a trailing slash is
// removed, except for the root "/". The empty path is "/".
//
// Clean does not allocate when p is already clean.
func Clean(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	return path.Clean(p)
}

// Relative returns p, which must be Clean, relative to base: the rest of p
// after base, starting with "/". Base is a clean path without a trailing
// slash; "" and "/" mean no base, and p is returned as is. It reports false
// when p is not base itself or below it:
//
//	Relative("/api/products", "/api") == "/products", true
//	Relative("/api", "/api")          == "/", true
//	Relative("/apix", "/api")         == "", false
func Relative(p, base string) (string, bool) {
	base = strings.TrimSuffix(base, "/")
	if base == "" {
		return p, true
	}
	if !strings.HasPrefix(p, base) {
		return "", false
	}
	rest := p[len(base):]
	switch {
	case rest == "":
		return "/", true
	case rest[0] == '/':
		return rest, true
	}
	return "", false
}

// Pattern is one compiled allowed_endpoints entry. The zero Pattern matches
// nothing.
type Pattern struct {
	// Raw is the pattern as written.
	Raw string
	// Method is the method the pattern is restricted to; "" is any method.
	Method string

	g *glob.Pattern
}

// Compile compiles one allowed_endpoints entry: an optional uppercase method
// and one space, then a path pattern starting with "/". See the package
// documentation for the syntax.
func Compile(pattern string) (Pattern, error) {
	if pattern == "" {
		return Pattern{}, patternErr(pattern, "empty pattern", nil)
	}
	if len(pattern) > maxPatternLen {
		return Pattern{}, patternErr(pattern, fmt.Sprintf("longer than %d bytes", maxPatternLen), nil)
	}
	method, p, err := splitMethod(pattern)
	if err != nil {
		return Pattern{}, patternErr(pattern, err.Error(), nil)
	}
	// The trailing `*` is the one written last: a `*` exposed by the
	// removal of a trailing "/" or "." segment stays a one-segment `*`.
	trailing := endsWithStar(p)
	compiled, err := normalise(p)
	if err != nil {
		return Pattern{}, patternErr(pattern, err.Error(), nil)
	}
	if trailing && endsWithStar(compiled) {
		compiled += "*"
	}
	g, err := glob.Compile(compiled, '/')
	if err != nil {
		reason := err.Error()
		var se *glob.SyntaxError
		if errors.As(err, &se) {
			reason = "syntax error: " + se.Reason
		}
		return Pattern{}, patternErr(pattern, reason, err)
	}
	if err := checkComplexity(compiled); err != nil {
		return Pattern{}, patternErr(pattern, err.Error(), nil)
	}
	return Pattern{Raw: pattern, Method: method, g: g}, nil
}

// Match reports whether the pattern allows a request with the given method
// and path. The path must be Clean and relative to the API base (see
// Relative). A GET pattern also matches HEAD. A path longer than 8 KiB
// matches no pattern. Match does not allocate.
func (p Pattern) Match(method, path string) bool {
	if p.g == nil || len(path) > maxPathLen {
		return false
	}
	if p.Method != "" && method != p.Method && (p.Method != "GET" || method != "HEAD") {
		return false
	}
	return p.g.Match(path)
}

// Set is a compiled allowed_endpoints list. The zero Set, like the Set of an
// empty or nil list, allows every endpoint.
type Set struct {
	patterns []Pattern
	// deny is set on the Set CompileAll returns with an error, so that a
	// caller that drops the error fails closed.
	deny bool
}

// CompileAll compiles an allowed_endpoints list. A nil or empty list gives a
// Set that allows everything. The error names the first invalid pattern;
// with an error, the returned Set refuses everything.
func CompileAll(patterns []string) (Set, error) {
	if len(patterns) == 0 {
		return Set{}, nil
	}
	s := Set{patterns: make([]Pattern, 0, len(patterns))}
	for _, raw := range patterns {
		p, err := Compile(raw)
		if err != nil {
			return Set{deny: true}, err
		}
		s.patterns = append(s.patterns, p)
	}
	return s, nil
}

// Allow reports whether a request with the given method and path is allowed:
// true when the Set is empty or any of its patterns matches. The path must
// be Clean and relative to the API base. A non-empty Set refuses paths
// longer than 8 KiB. Allow does not allocate.
func (s Set) Allow(method, path string) bool {
	if s.deny {
		return false
	}
	if len(s.patterns) == 0 {
		return true
	}
	for i := range s.patterns {
		if s.patterns[i].Match(method, path) {
			return true
		}
	}
	return false
}

// Len returns the number of patterns in the Set.
func (s Set) Len() int {
	return len(s.patterns)
}

// Restricted reports whether the Set limits endpoints at all: false only for
// the allow-all Set of an empty list. The refuse-all Set CompileAll returns
// with an error is restricted although it has no patterns.
func (s Set) Restricted() bool {
	return s.deny || len(s.patterns) > 0
}

// Validate reports the error CompileAll would, without keeping the compiled
// Set; it is meant for validating input.
func Validate(patterns []string) error {
	_, err := CompileAll(patterns)
	return err
}

// splitMethod splits "GET /x" into "GET" and "/x"; a pattern starting with
// "/" has no method.
func splitMethod(s string) (method, rest string, err error) {
	if s[0] == '/' {
		return "", s, nil
	}
	i := strings.IndexByte(s, ' ')
	if i < 0 {
		return "", "", errors.New(`path must start with "/"`)
	}
	method, rest = s[:i], s[i+1:]
	for j := 0; j < len(method); j++ {
		if c := method[j]; c < 'A' || c > 'Z' {
			return "", "", errors.New(`method must be an uppercase token of letters followed by one space`)
		}
	}
	if i == 0 {
		return "", "", errors.New(`path must start with "/"`)
	}
	if !strings.HasPrefix(rest, "/") {
		return "", "", errors.New(`path must start with "/" after the method and one space`)
	}
	return method, rest, nil
}

// normalise applies to the path pattern p (starting with "/") the parts of
// path cleaning that cannot widen its meaning: repeated slashes are
// collapsed, "." segments are dropped and a trailing slash is removed. A ".."
// segment is an error. Segments are split on the raw text, ignoring the glob
// syntax.
func normalise(p string) (string, error) {
	if isNormal(p) {
		return p, nil
	}
	var b strings.Builder
	b.Grow(len(p))
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
			continue
		case "..":
			return "", errors.New(`contains a ".." segment`)
		}
		b.WriteByte('/')
		b.WriteString(seg)
	}
	if b.Len() == 0 {
		return "/", nil
	}
	return b.String(), nil
}

// isNormal reports whether normalise would return p unchanged.
func isNormal(p string) bool {
	if p == "/" {
		return true
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// endsWithStar reports whether the last token of p is a single `*`; an
// escaped `\*` is not.
func endsWithStar(p string) bool {
	last, _ := lastToken(p)
	return last.Type == syntax.Any
}

// lastToken returns the last token of p before the EOF, and the number of
// tokens; it returns an Error token when the lexer fails.
func lastToken(p string) (syntax.Token, int) {
	var last syntax.Token
	n := 0
	for l := syntax.NewLexer(p); ; n++ {
		t := l.Next()
		switch t.Type {
		case syntax.EOF:
			return last, n
		case syntax.Error:
			return t, n
		}
		last = t
	}
}

// checkComplexity rejects the patterns gobwas/glob's backtracking matcher
// can take a time exponential in the pattern, or polynomial of a high
// degree in the path length, to match; p is the pattern as compiled (with
// the trailing `*` turned into `**`). With the limits below, every wildcard
// but a `**` is confined to one segment, which the '/' of the pattern pins
// to a segment of the path. A trailing `**` matches whatever is left, so it
// is free; a trailing `*` is not, as it fails on a '/'. The limits are:
//
//   - at most one `*` or `**` per segment of the pattern (the segments are
//     split at the '/' outside of `{...}`; a group belongs to the segment it
//     opens in);
//   - at most one `{...}` group per segment, and no nested groups;
//   - at most one `**` other than the trailing one.
func checkComplexity(p string) error {
	_, total := lastToken(p)
	var stars, groups, supers, depth int
	inClass := false
	l := syntax.NewLexer(p)
	for i := 0; i < total; i++ {
		t := l.Next()
		switch t.Type {
		case syntax.RangeOpen:
			inClass = true
		case syntax.RangeClose:
			inClass = false
		case syntax.Text:
			if !inClass && depth == 0 && strings.Contains(t.Data, "/") {
				stars, groups = 0, 0
			}
		case syntax.TermsOpen:
			if depth > 0 {
				return errors.New("too complex: nested {...} groups")
			}
			depth++
			if groups++; groups > 1 {
				return errors.New("too complex: more than one {...} group in a path segment")
			}
		case syntax.TermsClose:
			depth--
		case syntax.Any, syntax.Super:
			if i == total-1 && depth == 0 && t.Type == syntax.Super {
				break // the trailing `**`
			}
			if stars++; stars > 1 {
				return errors.New("too complex: more than one * in a path segment (a trailing * aside)")
			}
			if t.Type == syntax.Super {
				if supers++; supers > 1 {
					return errors.New("too complex: more than one ** before the end of the pattern")
				}
			}
		}
	}
	return nil
}

// patternError is the error of an invalid pattern.
type patternError struct {
	pattern string
	reason  string
	err     error
}

func (e *patternError) Error() string {
	return fmt.Sprintf("apitoken: invalid endpoint pattern %q: %s", e.pattern, e.reason)
}

func (e *patternError) Unwrap() error { return e.err }

func patternErr(pattern, reason string, err error) error {
	if len(pattern) > 64 {
		pattern = pattern[:64] + "..."
	}
	return &patternError{pattern: pattern, reason: reason, err: err}
}
