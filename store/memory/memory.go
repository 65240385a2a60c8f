package memory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/storeutil"
)

// DefaultMaxEvents is how many raw usage events a Store keeps in all unless
// WithMaxEvents says otherwise.
const DefaultMaxEvents = 1_000_000

// DefaultMaxAudit is how many audit entries a Store keeps unless
// WithMaxAudit says otherwise.
const DefaultMaxAudit = 100_000

var (
	_ apitoken.Store      = (*Store)(nil)
	_ apitoken.UsageStore = (*Store)(nil)
	_ apitoken.AuditStore = (*Store)(nil)
)

// Store is an in-memory apitoken.Store and apitoken.UsageStore. It is safe
// for concurrent use. The zero value is not usable: call New.
type Store struct {
	mu        sync.RWMutex
	lastID    int64
	tokens    map[int64]*entry
	ids       []int64                 // ids of tokens, ascending
	byHash    map[apitoken.Hash]int64 // current and previous hashes
	maxEvents int

	// Audit log, oldest first; audit[0] has id auditBase+1.
	audit     []*apitoken.AuditEntry
	auditBase int64
	maxAudit  int

	// Raw events: events counts those kept over all tokens; order holds the
	// token id of each, oldest first, to trim the oldest across tokens. order
	// may also hold ids of deleted tokens (stale of them), dropped lazily.
	events int
	stale  int
	order  queue[int64]
	strs   interner
}

// entry is a stored token. tok is never handed out, only clones of it.
type entry struct {
	tok     *apitoken.Token
	hash    apitoken.Hash
	prev    apitoken.Hash // the hash the last rotation replaced, if hasPrev
	hasPrev bool
	usage   *tokenUsage // nil until the token's first event
}

// Option configures a Store.
type Option func(*Store)

// WithMaxEvents sets how many raw usage events (the source of
// RecentRequests) the store keeps over all tokens; when more are recorded the
// earliest recorded are dropped first. 0 keeps none; a negative n makes New
// panic.
// Counters and hourly rollups are kept whatever n is. A kept event costs
// about 100 to 170 bytes (96 for the event, the rest ring-buffer slack) plus
// one copy of each distinct path and user agent: some 170 MB at the default
// when full. Default DefaultMaxEvents (1,000,000).
func WithMaxEvents(n int) Option {
	return func(s *Store) {
		if n < 0 {
			panic("apitoken: memory: WithMaxEvents: negative n")
		}
		s.maxEvents = n
	}
}

// WithMaxAudit sets how many audit entries the store keeps; when more are
// recorded the oldest are dropped. 0 keeps none; a negative n makes New
// panic.
// Default DefaultMaxAudit (100,000).
func WithMaxAudit(n int) Option {
	return func(s *Store) {
		if n < 0 {
			panic("apitoken: memory: WithMaxAudit: negative n")
		}
		s.maxAudit = n
	}
}

// New returns an empty Store. It panics when an option's value is invalid,
// naming the option.
func New(opts ...Option) *Store {
	s := &Store{
		tokens:    make(map[int64]*entry),
		byHash:    make(map[apitoken.Hash]int64),
		maxEvents: DefaultMaxEvents,
		maxAudit:  DefaultMaxAudit,
		strs:      make(interner),
	}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	return s
}

func notFound(id int64) error { return fmt.Errorf("%w: token %d", apitoken.ErrNotFound, id) }

// normalize converts t's times to UTC (dropping any monotonic reading).
func normalize(t *apitoken.Token) {
	t.CreatedAt = t.CreatedAt.UTC()
	t.UpdatedAt = t.UpdatedAt.UTC()
	t.ExpiresAt = utcPtr(t.ExpiresAt)
	t.LastUsedAt = utcPtr(t.LastUsedAt)
	t.PreviousExpiresAt = utcPtr(t.PreviousExpiresAt)
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// CreateToken stores a copy of t under hash and sets t.ID to the new id,
// changing nothing else in t. A hash already stored returns an error
// matching apitoken.ErrDuplicate and stores nothing (t.ID is left alone).
func (s *Store) CreateToken(ctx context.Context, t *apitoken.Token, hash apitoken.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t == nil {
		return errors.New("apitoken: memory: CreateToken with a nil token")
	}
	c := t.Clone()
	normalize(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.byHash[hash]; dup {
		return fmt.Errorf("%w: the token hash is already stored", apitoken.ErrDuplicate)
	}
	s.lastID++
	c.ID = s.lastID
	s.tokens[c.ID] = &entry{tok: c, hash: hash}
	s.byHash[hash] = c.ID
	s.ids = append(s.ids, c.ID)
	t.ID = c.ID
	action, changes := apitoken.AuditChanges(apitoken.ActionCreate, nil, c, apitoken.Update{})
	s.audited(ctx, c, action, changes, c.CreatedAt)
	return nil
}

// GetToken returns a copy of the token with the id, or an error matching
// apitoken.ErrNotFound.
func (s *Store) GetToken(ctx context.Context, id int64) (*apitoken.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.tokens[id]
	if e == nil {
		return nil, notFound(id)
	}
	return e.tok.Clone(), nil
}

// GetTokenByHash returns a copy of the token stored under hash, or an error
// matching apitoken.ErrNotFound. For the hash a rotation replaced, the copy's
// ExpiresAt is the end of the grace period when that is earlier.
func (s *Store) GetTokenByHash(ctx context.Context, hash apitoken.Hash) (*apitoken.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byHash[hash]
	if !ok {
		return nil, fmt.Errorf("%w: no token with that hash", apitoken.ErrNotFound)
	}
	e := s.tokens[id]
	t := e.tok.Clone()
	if e.hash != hash {
		t.ExpiresAt = storeutil.PreviousExpiry(t)
	}
	return t, nil
}

// ListTokens returns copies of the tokens matching opts, highest id first,
// and how many match before paging. A negative Limit or Offset counts as 0.
// Status is judged at opts.Now (time.Now() when zero).
func (s *Store) ListTokens(ctx context.Context, opts apitoken.ListOptions) ([]*apitoken.Token, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if err := apitoken.CheckStatus(opts.Status); err != nil {
		return nil, 0, err
	}
	var now time.Time
	if opts.Status != "" {
		now = storeutil.StatusTime(opts, time.Now)
	}
	search := strings.ToLower(opts.Search)
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*apitoken.Token{}
	total := 0
	for i := len(s.ids) - 1; i >= 0; i-- {
		t := s.tokens[s.ids[i]].tok
		if opts.Active != nil && t.Active != *opts.Active ||
			opts.UserID != "" && t.UserID != opts.UserID ||
			search != "" && !strings.Contains(strings.ToLower(t.Name), search) ||
			opts.Status != "" && t.Status(now) != opts.Status ||
			opts.ExpiresBefore != nil && (t.ExpiresAt == nil || !t.ExpiresAt.Before(*opts.ExpiresBefore)) {
			continue
		}
		total++
		if total > opts.Offset && (opts.Limit <= 0 || len(out) < opts.Limit) {
			out = append(out, t.Clone())
		}
	}
	return out, total, nil
}

// UpdateToken applies u to the token (storeutil.Apply), sets UpdatedAt to now
// in UTC, even for an empty update, and returns a copy of the result. A
// missing token returns an error matching apitoken.ErrNotFound.
func (s *Store) UpdateToken(ctx context.Context, id int64, u apitoken.Update, now time.Time) (*apitoken.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.tokens[id]
	if e == nil {
		return nil, notFound(id)
	}
	before := e.tok
	t := before.Clone()
	storeutil.Apply(t, u)
	t.ID = id
	t.UpdatedAt = now
	normalize(t)
	e.tok = t
	action, changes := apitoken.AuditChanges(apitoken.ActionUpdate, before, t, u)
	s.audited(ctx, t, action, changes, now)
	return t.Clone(), nil
}

// RotateToken replaces the token's hash and Start, keeps the replaced hash
// as the previous one until previousUntil, and returns a copy of the result
// (see apitoken.Store).
func (s *Store) RotateToken(ctx context.Context, id int64, hash apitoken.Hash, start string, previousUntil, now time.Time) (*apitoken.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.tokens[id]
	if e == nil {
		return nil, notFound(id)
	}
	if _, dup := s.byHash[hash]; dup {
		return nil, fmt.Errorf("%w: the token hash is already stored", apitoken.ErrDuplicate)
	}
	before := e.tok
	t := before.Clone()
	t.Start = start
	until := previousUntil.UTC()
	t.PreviousExpiresAt = &until
	t.UpdatedAt = now
	normalize(t)
	if e.hasPrev {
		delete(s.byHash, e.prev)
	}
	e.prev, e.hasPrev = e.hash, true
	e.hash = hash
	s.byHash[hash] = id
	e.tok = t
	action, changes := apitoken.AuditChanges(apitoken.ActionRotate, before, t, apitoken.Update{})
	s.audited(ctx, t, action, changes, now)
	return t.Clone(), nil
}

// DeleteToken removes the token and its usage. A missing token returns an
// error matching apitoken.ErrNotFound.
func (s *Store) DeleteToken(ctx context.Context, id int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.tokens[id]
	if e == nil {
		return notFound(id)
	}
	delete(s.tokens, id)
	delete(s.byHash, e.hash)
	if e.hasPrev {
		delete(s.byHash, e.prev)
	}
	s.audited(ctx, e.tok, apitoken.ActionDelete, []apitoken.Change{}, time.Now())
	if i, ok := slices.BinarySearch(s.ids, id); ok {
		s.ids = slices.Delete(s.ids, i, i+1)
	}
	if u := e.usage; u != nil {
		n := u.events.len()
		for i := range n {
			s.releaseEvent(u.events.at(i))
		}
		s.events -= n
		s.stale += n
		s.dropStale()
	}
	return nil
}

// TouchTokens sets LastUsedAt of each known id to the given time (in UTC)
// unless the stored value is later. Unknown ids are ignored.
func (s *Store) TouchTokens(ctx context.Context, used map[int64]time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, at := range used {
		e := s.tokens[id]
		if e == nil || e.tok.LastUsedAt != nil && e.tok.LastUsedAt.After(at) {
			continue
		}
		at = at.UTC()
		e.tok.LastUsedAt = &at
	}
	return nil
}

// audited appends an audit entry for a change to t; s.mu is held. at is used
// when the context carries no time (the store was called without a Manager).
func (s *Store) audited(ctx context.Context, t *apitoken.Token, action string, changes []apitoken.Change, at time.Time) {
	actor, when := apitoken.AuditInfo(ctx)
	if when.IsZero() {
		when = at
	}
	if changes == nil {
		changes = []apitoken.Change{}
	}
	e := &apitoken.AuditEntry{
		ID:        s.auditBase + int64(len(s.audit)) + 1,
		TokenID:   t.ID,
		TokenName: t.Name,
		Action:    action,
		Actor:     actor,
		Changes:   changes,
		CreatedAt: when.UTC(),
	}
	if s.maxAudit == 0 {
		s.auditBase++
		return
	}
	if len(s.audit) >= s.maxAudit {
		// Reslicing leaves the dropped entries behind; append copies only
		// the kept ones when it next grows the array.
		s.audit[0] = nil
		s.audit = s.audit[1:]
		s.auditBase++
	}
	s.audit = append(s.audit, e)
}

// ListAudit returns copies of the audit entries matching q, newest first, and
// how many match before paging. A negative Limit or Offset counts as 0.
func (s *Store) ListAudit(ctx context.Context, q apitoken.AuditQuery) ([]*apitoken.AuditEntry, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*apitoken.AuditEntry{}
	total := 0
	for i := len(s.audit) - 1; i >= 0; i-- {
		e := s.audit[i]
		if q.TokenID > 0 && e.TokenID != q.TokenID {
			continue
		}
		total++
		if total > q.Offset && (q.Limit <= 0 || len(out) < q.Limit) {
			out = append(out, storeutil.CloneAuditEntry(e))
		}
	}
	return out, total, nil
}
