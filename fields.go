package apitoken

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// bodyFields are the members of a create or update body, one per field of
// Update, in Update's order. Everything that knows the fields by name reads
// this table: the admin handler's decoder (decodeFields), the Manager's
// validation (validateUpdate), Update.fields and the audit log's Changes.
// The order is theirs too: the first bad field in it is the one an error
// names, and Changes list fields in it.
var bodyFields = []bodyField{
	bind(fieldSpec[string]{
		name:   "name",
		of:     func(u *Update) *Field[string] { return &u.Name },
		decode: decodeAs[string](false, "a string"),
		nul:    nulInString,
		check:  checkName,
		show:   func(t *Token) any { return t.Name },
	}),
	bind(fieldSpec[string]{
		name:   "description",
		of:     func(u *Update) *Field[string] { return &u.Description },
		decode: decodeAs[string](true, "a string"),
		nul:    nulInString,
		check:  checkDescription,
		show:   func(t *Token) any { return t.Description },
	}),
	bind(fieldSpec[string]{
		name:   "user_id",
		of:     func(u *Update) *Field[string] { return &u.UserID },
		decode: decodeAs[string](true, "a string"),
		nul:    nulInString,
		check:  checkUserID,
		show:   func(t *Token) any { return t.UserID },
	}),
	bind(fieldSpec[bool]{
		name:   "active",
		of:     func(u *Update) *Field[bool] { return &u.Active },
		decode: decodeAs[bool](false, "true or false"),
		show:   func(t *Token) any { return t.Active },
	}),
	bind(fieldSpec[int]{
		name:   "rate_limit",
		of:     func(u *Update) *Field[int] { return &u.RateLimit },
		decode: decodeAs[int](false, fmt.Sprintf("an integer from 0 (unlimited) to %d", MaxRateLimit)),
		check:  checkRateLimit,
		show:   func(t *Token) any { return t.RateLimit },
	}),
	bind(fieldSpec[[]string]{
		name:   "allowed_endpoints",
		of:     func(u *Update) *Field[[]string] { return &u.AllowedEndpoints },
		decode: decodeAs[[]string](true, "an array of strings or null"),
		nul:    nulInList,
		check:  checkAllowedEndpoints,
		show:   func(t *Token) any { return nullIfEmpty(t.AllowedEndpoints) },
	}),
	bind(fieldSpec[[]string]{
		name:   "scopes",
		of:     func(u *Update) *Field[[]string] { return &u.Scopes },
		decode: decodeAs[[]string](true, "an array of strings or null"),
		nul:    nulInList,
		check:  checkScopes,
		show:   func(t *Token) any { return nullIfEmpty(t.Scopes) },
	}),
	bind(fieldSpec[map[string]string]{
		name:   "metadata",
		of:     func(u *Update) *Field[map[string]string] { return &u.Metadata },
		decode: decodeAs[map[string]string](true, "an object of strings or null"),
		nul:    nulInMap,
		check:  checkMetadata,
		show:   func(t *Token) any { return nullIfEmpty(t.Metadata) },
	}),
	bind(fieldSpec[*time.Time]{
		name:   "expires_at",
		of:     func(u *Update) *Field[*time.Time] { return &u.ExpiresAt },
		decode: decodeExpiry,
		check:  checkExpiresAt,
		show:   func(t *Token) any { return utcTime(t.ExpiresAt) },
	}),
}

// auditField is a field an audit Change can name: its JSON name and how a
// token shows its value.
type auditField struct {
	name string
	show func(t *Token) any // t's value as the admin API shows it
}

// bodyField is one entry of bodyFields: a fieldSpec with its type erased.
type bodyField struct {
	auditField
	isSet  func(u *Update) bool
	decode func(u *Update, raw json.RawMessage) (wrong string)
	hasNUL func(u *Update) bool
	check  func(u *Update, now time.Time) (wrong string)
}

// fieldSpec describes a body field whose value is a T.
type fieldSpec[T any] struct {
	name string
	of   func(u *Update) *Field[T] // the field of u
	// decode turns the member's JSON value into a T, or says what is wrong
	// with it (the error text after the name, e.g. "must be a string").
	decode func(raw json.RawMessage) (v T, wrong string)
	// nul reports whether v holds a NUL character; nil for a value without
	// text.
	nul func(v T) bool
	// check says what the Manager refuses in v ("" when nothing); nil for a
	// field that any value of its type suits.
	check func(v T, now time.Time) (wrong string)
	show  func(t *Token) any
}

// bind returns the bodyField of s.
func bind[T any](s fieldSpec[T]) bodyField {
	return bodyField{
		auditField: auditField{name: s.name, show: s.show},
		isSet:      func(u *Update) bool { return s.of(u).Set },
		decode: func(u *Update, raw json.RawMessage) string {
			v, wrong := s.decode(raw)
			if wrong == "" {
				*s.of(u) = Set(v)
			}
			return wrong
		},
		hasNUL: func(u *Update) bool {
			f := s.of(u)
			return f.Set && s.nul != nil && s.nul(f.Value)
		},
		check: func(u *Update, now time.Time) string {
			if f := s.of(u); f.Set && s.check != nil {
				return s.check(f.Value, now)
			}
			return ""
		},
	}
}

// isBodyField reports whether a create or update body may have the member.
func isBodyField(name string) bool {
	return slices.ContainsFunc(bodyFields, func(f bodyField) bool { return f.name == name })
}

// decodeAs returns the decoder of a JSON value of type T: null gives the
// zero T when nullable is true; anything else that is not a T "must be "+want.
func decodeAs[T any](nullable bool, want string) func(json.RawMessage) (T, string) {
	return func(raw json.RawMessage) (T, string) {
		var v T
		if isNull(raw) {
			if nullable {
				return v, ""
			}
		} else if json.Unmarshal(raw, &v) == nil {
			return v, ""
		}
		return v, "must be " + want
	}
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// decodeExpiry decodes expires_at: null, or a string that ParseExpiry reads.
func decodeExpiry(raw json.RawMessage) (*time.Time, string) {
	if isNull(raw) {
		return nil, ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil, "must be a date (2026-12-31), an RFC 3339 time or null"
	}
	t, err := ParseExpiry(s)
	if err != nil {
		return nil, notAnExpiry(s)
	}
	return &t, ""
}

func nulInString(s string) bool { return strings.IndexByte(s, 0) >= 0 }

func nulInList(l []string) bool { return slices.ContainsFunc(l, nulInString) }

func nulInMap(m map[string]string) bool {
	for k, v := range m {
		if nulInString(k) || nulInString(v) {
			return true
		}
	}
	return false
}

// nullIfEmpty shows an empty list or map as null, as the admin API does.
func nullIfEmpty[S ~[]string | ~map[string]string](v S) any {
	if len(v) == 0 {
		return nil
	}
	return v
}
