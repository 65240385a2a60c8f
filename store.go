package apitoken

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Compare with errors.Is: stores and the Manager wrap them
// with detail.
var (
	// ErrNotFound: no token with that id or hash.
	ErrNotFound = errors.New("apitoken: not found")
	// ErrDuplicate: a token with the same hash already exists.
	ErrDuplicate = errors.New("apitoken: duplicate token")
	// ErrInvalidToken: missing, malformed, forged (bad checksum) or unknown
	// token. The middleware answers all of these with the same 401 body.
	ErrInvalidToken = errors.New("apitoken: invalid token")
	// ErrTokenExpired: the token's expires_at has passed.
	ErrTokenExpired = errors.New("apitoken: token has expired")
	// ErrTokenDisabled: the token exists but is not active.
	ErrTokenDisabled = errors.New("apitoken: token is disabled")
	// ErrEndpointNotAllowed: the request's path is outside the token's
	// allowed_endpoints.
	ErrEndpointNotAllowed = errors.New("apitoken: endpoint not allowed")
	// ErrRateLimited: the token's rate limit is used up; see RateLimitError.
	ErrRateLimited = errors.New("apitoken: rate limit exceeded")
	// ErrStoreUnavailable: the store failed for a reason other than a
	// missing token (connection refused, timeout). The middleware answers
	// 503, never 401, so a client does not throw away a valid token.
	ErrStoreUnavailable = errors.New("apitoken: token store unavailable")
	// ErrLimiterUnavailable: the Limiter returned an error.
	ErrLimiterUnavailable = errors.New("apitoken: rate limiter unavailable")
)

// ValidationError names the input field that failed validation; find it
// with errors.As.
type ValidationError struct {
	Field   string // JSON name of the field, e.g. "rate_limit"
	Message string // what is wrong, e.g. "must be 0 (unlimited) or more"
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("apitoken: invalid %s: %s", e.Field, e.Message)
}

// Field is one optional field of an Update. The zero value leaves the field
// unchanged; Set(v) changes it to v. For nullable fields (ExpiresAt) Set(nil)
// clears the value.
type Field[T any] struct {
	Value T
	Set   bool
}

// Set returns a Field that changes its field to v.
func Set[T any](v T) Field[T] { return Field[T]{Value: v, Set: true} }

// Update is a partial change to a token: only fields that are Set change, as
// with the spec's PUT body.
type Update struct {
	Name             Field[string]
	Description      Field[string]
	UserID           Field[string]
	Active           Field[bool]
	RateLimit        Field[int]
	AllowedEndpoints Field[[]string]
	Scopes           Field[[]string]
	Metadata         Field[map[string]string]
	ExpiresAt        Field[*time.Time]
}

// fields returns the JSON names of the fields the update sets, in
// bodyFields' order.
func (u Update) fields() []string {
	var names []string
	for _, f := range bodyFields {
		if f.isSet(&u) {
			names = append(names, f.name)
		}
	}
	return names
}

// ListOptions filters and pages Store.ListTokens. The zero value lists every
// token.
type ListOptions struct {
	// Active, when non-nil, keeps only tokens whose Active equals *Active.
	Active *bool
	// Search keeps tokens whose name contains it, ignoring case.
	Search string
	// UserID, when non-empty, keeps only that owner's tokens.
	UserID string
	// Status, when non-empty, keeps only tokens whose Token.Status at Now
	// is Status: StatusActive (active and not expired: no expiry, or one
	// after Now), StatusDisabled (not active, expired or not) or
	// StatusExpired (active with an expiry at or before Now). Any other
	// value makes ListTokens return a *ValidationError.
	Status string
	// Now is the time Status is judged at. Manager.List sets it from its
	// clock when it is zero; a Store given a zero Now with a Status uses
	// time.Now().
	Now time.Time
	// ExpiresBefore, when non-nil, keeps only tokens with an expiry before
	// it (tokens that never expire are left out). With Status StatusActive
	// it gives the tokens that expire in [Now, ExpiresBefore), e.g.
	// "expiring within 7 days".
	ExpiresBefore *time.Time
	// Limit is the page size; 0 means no limit.
	Limit int
	// Offset skips that many matching tokens.
	Offset int
}

// CheckStatus returns nil when s is a ListOptions.Status value ("" or one
// of StatusActive, StatusDisabled, StatusExpired), else a *ValidationError
// for the field "status".
func CheckStatus(s string) error {
	switch s {
	case "", StatusActive, StatusDisabled, StatusExpired:
		return nil
	}
	return &ValidationError{Field: "status", Message: "must be active, disabled or expired"}
}

// Store keeps tokens. Implementations must be safe for concurrent use.
//
// Every method takes a context first and returns the context's error when it
// is cancelled. Not-found conditions return an error that matches ErrNotFound
// with errors.Is. Returned tokens are copies: the caller may change them
// without affecting the store. Times are stored and returned in UTC with at
// least microsecond precision.
type Store interface {
	// CreateToken stores t with the token's hash and sets t.ID to a new,
	// positive id. The caller fills every other field (CreatedAt, UpdatedAt,
	// Start ...). A hash that is already stored returns ErrDuplicate and
	// stores nothing.
	CreateToken(ctx context.Context, t *Token, hash Hash) error

	// GetToken returns the token with the id, or ErrNotFound.
	GetToken(ctx context.Context, id int64) (*Token, error)

	// GetTokenByHash returns the token whose hash is hash, or ErrNotFound.
	// It is the only lookup on the request path (on a cache miss).
	//
	// The hash a rotation replaced (see RotateToken) still finds its token,
	// with ExpiresAt lowered to PreviousExpiresAt when that is earlier: so
	// the old secret verifies until the grace period ends and counts as
	// expired afterwards.
	GetTokenByHash(ctx context.Context, hash Hash) (*Token, error)

	// ListTokens returns the tokens matching opts, newest (highest id)
	// first, and the number of tokens matching opts before paging. Every
	// filter of opts applies (they combine with AND), before paging. An
	// invalid opts.Status returns a *ValidationError.
	ListTokens(ctx context.Context, opts ListOptions) (tokens []*Token, total int, err error)

	// UpdateToken applies u to the token atomically (as storeutil.Apply),
	// sets UpdatedAt to now, and returns the updated token. A missing token
	// returns ErrNotFound. An empty update still returns the token.
	UpdateToken(ctx context.Context, id int64, u Update, now time.Time) (*Token, error)

	// RotateToken gives the token a new secret: hash replaces its hash and
	// start its Start; PreviousExpiresAt becomes previousUntil and
	// UpdatedAt now. The replaced hash keeps finding the token through
	// GetTokenByHash (see there) until a later rotation replaces it: one
	// previous secret is kept, so rotating again ends the earlier grace
	// period at once. A missing token returns ErrNotFound; a hash that is
	// already a token's current hash returns ErrDuplicate and changes
	// nothing.
	RotateToken(ctx context.Context, id int64, hash Hash, start string, previousUntil, now time.Time) (*Token, error)

	// DeleteToken removes the token and, where the store keeps it, its usage.
	// A missing token returns ErrNotFound.
	DeleteToken(ctx context.Context, id int64) error

	// TouchTokens sets last_used_at for each id to the given time unless the
	// stored value is already later. Unknown ids are ignored. The Manager
	// calls it in batches, never once per request.
	TouchTokens(ctx context.Context, used map[int64]time.Time) error
}

// UsageStore stores usage events and answers the analytics queries. The
// memory and PostgreSQL stores implement it beside Store. Safe for
// concurrent use; contexts and errors as for Store.
type UsageStore interface {
	// RecordUsage stores a batch of the Manager's usage pipeline, all or
	// none. It must not keep the slice after returning (the pipeline
	// reuses it). An error makes the pipeline retry the same batch later.
	// Events of tokens that no longer exist are dropped without failing the
	// batch. A store may also move the tokens' last_used_at forward in the
	// same write (store/postgres does).
	RecordUsage(ctx context.Context, events []Event) error

	// TokenUsage reports one token's requests in [q.From, q.To): hourly
	// buckets (oldest first, hours without requests omitted), endpoints (most
	// requested first) and the q.Limit most recent requests (newest first).
	// A token without usage returns empty slices, not ErrNotFound.
	TokenUsage(ctx context.Context, id int64, q Query) (*TokenUsage, error)

	// Overview reports all tokens' requests in [q.From, q.To) with the
	// q.Limit busiest tokens and endpoints, and the at most q.Limit tokens
	// with at least one 429 response in the range, most 429s first (ties
	// by ascending token id), counting whole UTC hours that overlap the
	// range like the other hour-bucket reports. Deleted tokens are left
	// out. ActiveTokens counts tokens that are active now.
	Overview(ctx context.Context, q Query) (*Overview, error)

	// TokenStats returns request counts for the given tokens relative to
	// now (last 24 hours, last 7 days, all time) in one query. Tokens
	// without usage are present with zero counts.
	TokenStats(ctx context.Context, ids []int64, now time.Time) (map[int64]TokenStats, error)
}

// Query is the time range and size of an analytics report.
type Query struct {
	From, To time.Time
	// Limit caps recent requests and top lists; 0 means 50
	// (storeutil.QueryLimit).
	Limit int
}
