// Package pathmatch implements the allowed_endpoints restriction of an API
// token: a list of glob patterns over request paths, optionally restricted to
// one HTTP method.
//
// # Patterns
//
// A pattern is either a path pattern, or an uppercase method token, exactly
// one space and a path pattern:
//
//	/products*
//	GET /stores/*/brands
//
// The path pattern must start with "/" and the whole entry must be at most
// 1024 bytes. The syntax is that of github.com/gobwas/glob compiled with '/'
// as the separator: `?` is one character other than '/', `[abc]`, `[a-z]`
// and `[!a-z]` are character classes (one list or one range per class; a
// class is not bound to a segment, so `[!a]` matches '/' too), `{a,b}` are
// alternatives and `\` escapes the next character. Note that ServeMux-style
// wildcards are not supported: `{id}` is a one-alternative group that
// matches the literal text "id"; write `*` instead.
//
// # The two meanings of `*`
//
// A `*` at the very end of a pattern is a prefix match that crosses
// segments: it is compiled as `**`, so `/products*` matches /products,
// /products/123 and /products/meta/brands (and also /products-archive, as it
// is a plain prefix: write `/products{,/**}` to stop at the segment
// boundary).
//
// Any other `*` matches within one segment only, that is, any run of
// characters other than '/': `/stores/*/brands` matches /stores/1/brands but
// not /stores/1/2/brands.
//
// A `**` written in the pattern matches any run of characters, '/' included,
// wherever it appears: `/stores/**/brands` matches /stores/1/2/brands. It is
// not the shells' globstar: it does not match an empty run of segments, so
// `/a/**/b` does not match /a/b.
//
// An escaped trailing `\*` is a literal asterisk and is left alone.
//
// # Limits
//
// The matcher backtracks, and some patterns would let a request with a long
// path burn seconds of CPU per match (`/*a*a*a*c`, `/{a,aa}{a,aa}...`,
// `/**/x/**/x/**/y`). As the patterns may come from token owners, Compile
// rejects them ("too complex"), so that matching stays about linear in the
// path length:
//
//   - at most one `*` or `**` per segment of the pattern, the trailing one
//     aside (`/v*-*` is fine, `/*-*-x` and `/v*-*/` are not); segments are
//     split at the '/' outside of `{...}`, and a group belongs to the
//     segment it opens in;
//   - at most one `{...}` group per segment, and no nested groups;
//   - at most one `**` other than the trailing one.
//
// Even so, a `*` followed by more than a literal suffix can cost time
// quadratic in the length of the segment it matches (`/*a?`), so paths
// longer than 8 KiB match no pattern: a non-empty Set refuses them.
//
// # Normalisation of patterns
//
// Request paths are matched in their Clean form, which has no empty, "." or
// ".." segments and no trailing slash. The path part of a pattern is
// normalised the same way where that cannot widen what it means: runs of '/'
// are collapsed, "." segments are dropped and a trailing '/' is removed, so
// `/products/` is the exact pattern `/products`. A ".." segment is rejected,
// since resolving it next to a wildcard (`/a/*/../b`) would be guessing.
// Splitting into segments is done on the raw text; a '/' inside `{...}` or
// `[...]` counts as a separator for this purpose.
//
// A trailing `/*` is still a trailing `*`: `/products/*` matches everything
// below /products, but not /products itself. Only a `*` written last is a
// trailing one: in `/stores/*/` the `*` stays bound to one segment once the
// trailing '/' is removed, so it matches /stores/1 but not /stores/1/2.
//
// # Methods
//
// Without a method a pattern matches any method. With one, the request
// method must be exactly equal (methods are case-sensitive), except that a
// GET pattern also allows HEAD, as net/http's ServeMux does.
//
// # Use in a middleware
//
// Feed the patterns r.URL.Path, which Go has percent-decoded once, after
// Clean and, when the API is mounted under a prefix, Relative:
//
//	p := r.URL.Path
//	c := pathmatch.Clean(p)
//	if p != c && !(len(p) == len(c)+1 && p[len(c)] == '/' && p[:len(c)] == c) {
//		// Not canonical: refuse, or redirect to c (the redirected request
//		// is checked again). See below.
//	}
//	rel, ok := pathmatch.Relative(c, base)
//	if !ok || !set.Allow(r.Method, rel) {
//		// 403
//	}
//
// Refusing non-canonical paths is required when the handler behind the
// middleware routes on the escaped path, as net/http's ServeMux does since Go
// 1.22: for the raw path /api/orders/%2e%2e/products r.URL.Path is
// /api/orders/../products, which cleans to /api/products, while ServeMux sees
// the segment "%2e%2e" as a literal name and serves /api/orders/. Literal
// dot segments and "//" are redirected by ServeMux to the cleaned path
// anyway, so no legitimate client is hurt by the check.
package pathmatch
