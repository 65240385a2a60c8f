// Package storeutil holds what an implementation of apitoken.Store or
// apitoken.UsageStore needs beyond the interfaces: the reference semantics
// of an update, the counting rules of the reports, and conversions. The
// memory and PostgreSQL stores use it, so every store answers alike.
package storeutil

import (
	"encoding/hex"
	"errors"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/apitoken/apitoken"
)

// Successful reports whether a status code counts as a successful request
// (below 400) in the reports.
func Successful(status int) bool { return status < 400 }

// RateLimited reports whether a status code counts as a rate-limited
// request (429 Too Many Requests), for RateLimitedRequests.
func RateLimited(status int) bool { return status == 429 }

// AvgMillis converts a summed response time over n requests into the
// reports' average in milliseconds, rounded to 0.01 ms (0 when n is 0).
func AvgMillis(sum time.Duration, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return RoundMillis(float64(sum) / float64(n) / float64(time.Millisecond))
}

// RoundMillis rounds a millisecond figure to 0.01 ms.
func RoundMillis(ms float64) float64 { return math.Round(ms*100) / 100 }

// DefaultQueryLimit is the list length of a Query whose Limit is 0.
const DefaultQueryLimit = 50

// QueryLimit returns q.Limit, or DefaultQueryLimit when it is not positive.
func QueryLimit(q apitoken.Query) int {
	if q.Limit <= 0 {
		return DefaultQueryLimit
	}
	return q.Limit
}

// StatusTime returns o.Now, or now() when it is zero, in UTC: the time a
// store judges o.Status at.
func StatusTime(o apitoken.ListOptions, now func() time.Time) time.Time {
	if o.Now.IsZero() {
		return now().UTC()
	}
	return o.Now.UTC()
}

// PreviousExpiry returns the ExpiresAt a store gives t when it is found by
// the hash its last rotation replaced: PreviousExpiresAt, or ExpiresAt when
// that is earlier. Stores call it in GetTokenByHash.
func PreviousExpiry(t *apitoken.Token) *time.Time {
	at := t.PreviousExpiresAt
	if at == nil || t.ExpiresAt != nil && t.ExpiresAt.Before(*at) {
		at = t.ExpiresAt
	}
	if at == nil {
		return nil
	}
	v := *at
	return &v
}

// Apply changes t by the fields u sets: the reference semantics every
// store's UpdateToken must match. It copies slices and maps, so t shares
// nothing with u.
func Apply(t *apitoken.Token, u apitoken.Update) {
	set(&t.Name, u.Name)
	set(&t.Description, u.Description)
	set(&t.UserID, u.UserID)
	set(&t.Active, u.Active)
	set(&t.RateLimit, u.RateLimit)
	if u.AllowedEndpoints.Set {
		t.AllowedEndpoints = slices.Clone(u.AllowedEndpoints.Value)
	}
	if u.Scopes.Set {
		t.Scopes = slices.Clone(u.Scopes.Value)
	}
	if u.Metadata.Set {
		t.Metadata = maps.Clone(u.Metadata.Value)
	}
	if u.ExpiresAt.Set {
		t.ExpiresAt = nil
		if v := u.ExpiresAt.Value; v != nil {
			at := *v
			t.ExpiresAt = &at
		}
	}
}

func set[T any](dst *T, f apitoken.Field[T]) {
	if f.Set {
		*dst = f.Value
	}
}

// CloneAuditEntry returns a deep copy of e.
func CloneAuditEntry(e *apitoken.AuditEntry) *apitoken.AuditEntry {
	if e == nil {
		return nil
	}
	c := *e
	c.Changes = make([]apitoken.Change, len(e.Changes))
	for i, ch := range e.Changes {
		c.Changes[i] = apitoken.Change{Field: ch.Field, From: slices.Clone(ch.From), To: slices.Clone(ch.To)}
	}
	return &c
}

// ParseHashHex is the inverse of apitoken.Hash.Hex.
func ParseHashHex(s string) (apitoken.Hash, error) {
	var h apitoken.Hash
	if len(s) != 2*len(h) {
		return h, errors.New("apitoken: token hash must be 64 hex characters")
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, errors.New("apitoken: token hash is not hex")
	}
	return h, nil
}
