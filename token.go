package apitoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apitoken/apitoken/internal/base62"
)

// defaultPrefix is the token prefix used unless WithPrefix says otherwise.
const defaultPrefix = "atk"

// secretLen is the number of base62 characters in a token's secret part:
// 43 characters of 5.954 bits each carry 256 bits, as much as 32 random bytes.
const secretLen = 43

// startLen is how many characters of the secret are kept in Token.Start.
const startLen = 6

// Token is a stored API token: everything about it except its secret.
//
// A Token never holds the plaintext or its hash, so printing it, logging it
// or encoding it as JSON cannot leak a credential. The plaintext exists only
// in the value returned by Manager.Create.
//
// Tokens returned by a Manager or a Store are copies owned by the caller,
// except the one FromContext returns, which is shared by concurrent requests
// and must be treated as read-only.
type Token struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// UserID is the host application's owner of the token, opaque to this
	// package ("" when there is none).
	UserID string `json:"user_id,omitempty"`
	// Start is the prefix and the first characters of the secret, e.g.
	// "atk_3xK9aQ", for telling tokens apart in a list.
	Start  string `json:"start"`
	Active bool   `json:"active"`
	// RateLimit is the number of requests allowed per minute; 0 means
	// unlimited.
	RateLimit int `json:"rate_limit"`
	// AllowedEndpoints are path patterns (see the package documentation);
	// nil or empty allows every endpoint.
	AllowedEndpoints []string          `json:"allowed_endpoints"`
	Scopes           []string          `json:"scopes,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	ExpiresAt        *time.Time        `json:"expires_at"`
	LastUsedAt       *time.Time        `json:"last_used_at"`
	CreatedAt        time.Time         `json:"created_at"`
	UpdatedAt        time.Time         `json:"updated_at"`
	// PreviousExpiresAt is set by a rotation (Manager.Rotate): when the
	// secret it replaced stops (or stopped) working. nil for a token never
	// rotated.
	PreviousExpiresAt *time.Time `json:"previous_expires_at,omitempty"`
}

// Status values reported by Token.Status.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
	StatusExpired  = "expired"
)

// expired reports whether the token has an expiry at or before now.
func (t *Token) expired(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
}

// Status returns StatusDisabled, StatusExpired or StatusActive, in that order
// of precedence.
func (t *Token) Status(now time.Time) string {
	switch {
	case !t.Active:
		return StatusDisabled
	case t.expired(now):
		return StatusExpired
	}
	return StatusActive
}

// hasScope reports whether the token carries scope s.
func (t *Token) hasScope(s string) bool {
	for _, x := range t.Scopes {
		if x == s {
			return true
		}
	}
	return false
}

// String describes the token by id, name and start characters.
func (t Token) String() string {
	return fmt.Sprintf("Token{id=%d name=%q start=%q active=%t}", t.ID, t.Name, t.Start, t.Active)
}

// Format makes %v, %+v, %#v and %s print String(), so no verb can reveal
// more than the id, name and start characters.
func (t Token) Format(f fmt.State, verb rune) {
	_, _ = io.WriteString(f, t.String())
}

// LogValue implements slog.LogValuer with the token's non-secret identity.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("id", t.ID),
		slog.String("name", t.Name),
		slog.String("start", t.Start),
		slog.Bool("active", t.Active),
	)
}

// LimiterKey is the key under which the Middleware asks its Limiter about t
// (for MemoryLimiter.Reset, say): t's id and its creation time in
// microseconds, "42.1764806400123456". The time keeps two stores' tokens of
// one id apart when they share a Limiter (a Redis for staging and
// production, a database reset under a running Redis); it is stable across
// rotations and updates.
func (t *Token) LimiterKey() string {
	return strconv.FormatInt(t.ID, 10) + "." + strconv.FormatInt(t.CreatedAt.UnixMicro(), 10)
}

// Clone returns a deep copy of t.
func (t *Token) Clone() *Token {
	if t == nil {
		return nil
	}
	c := *t
	c.AllowedEndpoints = cloneStrings(t.AllowedEndpoints)
	c.Scopes = cloneStrings(t.Scopes)
	if t.Metadata != nil {
		c.Metadata = make(map[string]string, len(t.Metadata))
		for k, v := range t.Metadata {
			c.Metadata[k] = v
		}
	}
	c.ExpiresAt = cloneTime(t.ExpiresAt)
	c.LastUsedAt = cloneTime(t.LastUsedAt)
	c.PreviousExpiresAt = cloneTime(t.PreviousExpiresAt)
	return &c
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// Hash is the stored digest of a token: SHA-256 of the whole token, or
// HMAC-SHA256 keyed with the service's pepper. Its String and Format methods
// redact it; Hex gives the digest to a Store that keeps it as text.
type Hash [32]byte

// Hex returns the digest in lower-case hex, for stores.
func (h Hash) Hex() string { return hex.EncodeToString(h[:]) }

// String returns a redacted placeholder.
func (h Hash) String() string { return "apitoken.Hash(redacted)" }

// Format prints the redacted placeholder for every verb.
func (h Hash) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, h.String()) }

// MarshalText makes encoders (JSON, YAML) write the redacted placeholder.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// tokenFormat generates, parses and hashes tokens of one prefix.
type tokenFormat struct {
	prefix string
	pepper []byte
	hmacs  sync.Pool // *hmacState, only with a pepper
	rand   io.Reader // nil: crypto/rand
}

type hmacState struct {
	h   hash.Hash
	sum []byte
}

func validPrefix(p string) error {
	if p == "" || len(p) > 32 {
		return fmt.Errorf("apitoken: WithPrefix: the prefix must be 1 to 32 characters")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || (c == '_' && i > 0 && i < len(p)-1)) {
			return fmt.Errorf("apitoken: WithPrefix: %q may hold only a-z, 0-9 and inner underscores", p)
		}
	}
	return nil
}

func newTokenFormat(prefix string, pepper []byte, rnd io.Reader) *tokenFormat {
	f := &tokenFormat{prefix: prefix, rand: rnd}
	if len(pepper) > 0 {
		f.pepper = append([]byte(nil), pepper...)
		f.hmacs.New = func() any {
			return &hmacState{h: hmac.New(sha256.New, f.pepper), sum: make([]byte, 0, sha256.Size)}
		}
	}
	return f
}

// generate returns a new plaintext token: prefix "_" secret checksum.
func (f *tokenFormat) generate() (string, error) {
	secret, err := base62.Random(f.rand, secretLen)
	if err != nil {
		return "", fmt.Errorf("apitoken: reading random bytes: %w", err)
	}
	b := make([]byte, 0, len(f.prefix)+1+secretLen+base62.ChecksumLen)
	b = append(b, f.prefix...)
	b = append(b, '_')
	b = append(b, secret...)
	b = base62.AppendChecksum(b, base62.CRC32(string(b)))
	return string(b), nil
}

// length is the length of every token of this format.
func (f *tokenFormat) length() int {
	return len(f.prefix) + 1 + secretLen + base62.ChecksumLen
}

// wellFormed reports whether s has this format's prefix, a base62 secret of
// the right length and a matching checksum. It reads s without allocating.
func (f *tokenFormat) wellFormed(s string) bool {
	if len(s) != f.length() || !strings.HasPrefix(s, f.prefix) || s[len(f.prefix)] != '_' {
		return false
	}
	body := s[len(f.prefix)+1:]
	if !base62.Valid(body) {
		return false
	}
	cut := len(s) - base62.ChecksumLen
	want, ok := base62.DecodeChecksum(s[cut:])
	return ok && base62.CRC32(s[:cut]) == want
}

// start returns the display prefix of a well-formed token.
func (f *tokenFormat) start(s string) string {
	return s[:len(f.prefix)+1+startLen]
}

// hash digests a token. It does not allocate.
func (f *tokenFormat) hash(s string) Hash {
	var out Hash
	if f.pepper == nil {
		// Sum256([]byte(s)) would allocate; a token fits on the stack.
		var buf [96]byte
		if len(s) > len(buf) {
			return sha256.Sum256([]byte(s))
		}
		n := copy(buf[:], s)
		return sha256.Sum256(buf[:n])
	}
	st := f.hmacs.Get().(*hmacState)
	st.h.Reset()
	_, _ = io.WriteString(st.h, s)
	st.sum = st.h.Sum(st.sum[:0])
	copy(out[:], st.sum)
	f.hmacs.Put(st)
	return out
}

// ScannerRegexp returns a regular expression that matches tokens with the
// given prefix, for secret scanners (e.g. GitHub push protection, gitleaks).
// The checksum lets a scanner confirm a hit offline with CRC32.
func ScannerRegexp(prefix string) string {
	return `\b` + prefix + `_[0-9A-Za-z]{` + fmt.Sprint(secretLen+base62.ChecksumLen) + `}\b`
}
