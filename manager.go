package apitoken

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/apitoken/apitoken/internal/pathmatch"
)

// defaultRateLimit is the rate limit (requests per minute) of a token created
// without one, as in the spec's schema.
const defaultRateLimit = 100

// MaxRateLimit is the largest rate limit (requests per minute) a token may
// have.
const MaxRateLimit = 1_000_000_000

// Input limits enforced by the Manager.
const (
	maxNameLen        = 255
	maxDescriptionLen = 4096
	maxPatterns       = 100
	maxScopes         = 100
	maxMetadataKeys   = 50
	maxShortField     = 255
	// maxRotationGrace is the longest grace period Rotate accepts.
	maxRotationGrace = 30 * 24 * time.Hour
)

// CreateParams describes a new token. Only Name is required.
type CreateParams struct {
	Name        string
	Description string
	UserID      string
	// RateLimit is requests per minute; nil means 100 (or the
	// Manager's WithDefaultRateLimit), 0 means unlimited.
	RateLimit        *int
	AllowedEndpoints []string
	Scopes           []string
	Metadata         map[string]string
	// ExpiresAt must be in the future; nil means the token never expires.
	ExpiresAt *time.Time
	// Inactive creates the token disabled.
	Inactive bool
}

// Manager creates, changes and verifies tokens. It caches verified tokens so
// that Verify on a known token is one map lookup, and writes last_used_at in
// batches. Create one per process with NewManager and Close it on shutdown.
// A Manager is safe for concurrent use.
type Manager struct {
	store    Store
	usage    UsageStore
	format   *tokenFormat
	clock    Clock
	log      *slog.Logger
	cache    *verifyCache
	ttl      time.Duration
	negTTL   time.Duration
	touchInt time.Duration
	defLimit int
	sink     Sink       // where the middleware sends events; nil: nowhere
	ownSink  *batchSink // the Manager's own, when it writes to usage

	// lookupLog and limiterLog keep an outage from logging once per request.
	lookupLog  rate.Sometimes
	limiterLog rate.Sometimes

	staleGrace time.Duration
	flightMu   sync.Mutex
	flights    map[Hash]*flight

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// Option configures a Manager.
type Option func(*managerConfig)

type managerConfig struct {
	prefix      string
	pepper      []byte
	clock       Clock
	stale       time.Duration
	log         *slog.Logger
	ttl, negTTL time.Duration
	maxNeg      int
	touch       time.Duration
	defLimit    int
	usage       UsageStore
	noUsage     bool
	sink        Sink
	sinkSet     bool
	batch       UsageBatch
	batchSet    bool
	pepperSet   bool
}

// WithPrefix sets the token prefix (default "atk"): 1 to 32 characters of
// a-z, 0-9 and inner underscores. Tokens of another prefix are rejected
// before any lookup.
func WithPrefix(p string) Option { return func(c *managerConfig) { c.prefix = p } }

// WithPepper makes the stored hash HMAC-SHA256 keyed with pepper instead of
// plain SHA-256, so a copy of the database alone cannot be used to confirm a
// guessed token. Keep the pepper outside the database; changing it
// invalidates every token.
func WithPepper(pepper []byte) Option {
	return func(c *managerConfig) { c.pepper, c.pepperSet = pepper, true }
}

// WithClock sets the clock of the Manager and of everything built on it: the
// verification cache, the Middleware's default limiter, event times
// (default: the system clock).
func WithClock(clock Clock) Option { return func(c *managerConfig) { c.clock = clock } }

// WithLogger sets the logger of the Manager and of everything built on it:
// the usage pipeline, the Middleware, the admin handler (default
// slog.Default()). Nothing secret is ever logged.
func WithLogger(l *slog.Logger) Option { return func(c *managerConfig) { c.log = l } }

// WithCacheTTL sets how long a verified token is trusted without asking the
// store again (default 30 s). Changes made through this Manager take effect
// at once; changes made by other processes within the TTL, or at once when
// the process runs postgres.Listen (store/postgres's LISTEN/NOTIFY), which
// calls Invalidate for every change.
func WithCacheTTL(d time.Duration) Option { return func(c *managerConfig) { c.ttl = d } }

// WithNegativeCacheTTL sets how long an unknown (well-formed, but not stored)
// token is remembered as unknown (default 2 s), and how many such answers are
// kept at most (default 100,000).
func WithNegativeCacheTTL(d time.Duration, max int) Option {
	return func(c *managerConfig) { c.negTTL, c.maxNeg = d, max }
}

// WithStaleIfError sets how long past its cache TTL a verified token keeps
// being accepted while the store cannot be reached (default 15 minutes; 0
// turns it off). A store outage then does not turn every client away once
// the cache TTL runs out; tokens never verified by this process get 503.
func WithStaleIfError(d time.Duration) Option { return func(c *managerConfig) { c.stale = d } }

// WithLastUsedInterval sets how often last_used_at is written, in one
// TouchTokens call for all tokens used since the previous write (default
// 10 s).
func WithLastUsedInterval(d time.Duration) Option { return func(c *managerConfig) { c.touch = d } }

// WithDefaultRateLimit sets the rate limit of tokens created without one
// (default 100 per minute; 0 for unlimited).
func WithDefaultRateLimit(n int) Option { return func(c *managerConfig) { c.defLimit = n } }

// WithUsageStore sets where usage events go and analytics come from. By
// default it is the Store itself when it implements UsageStore (the memory
// and PostgreSQL stores do). WithUsageStore(nil) turns usage off.
func WithUsageStore(u UsageStore) Option {
	return func(c *managerConfig) { c.usage, c.noUsage = u, u == nil }
}

// WithSink sends the middleware's usage events to s instead of the
// Manager's own pipeline into its UsageStore; WithSink(nil) records
// nothing. The Manager does not close a sink given here.
func WithSink(s Sink) Option { return func(c *managerConfig) { c.sink, c.sinkSet = s, true } }

// WithUsageBatch configures the Manager's own pipeline into its UsageStore
// (defaults: see UsageBatch).
func WithUsageBatch(b UsageBatch) Option {
	return func(c *managerConfig) { c.batch, c.batchSet = b, true }
}

// NewManager returns a Manager over store and starts its background work
// (last_used_at writes, cache sweeping, and the usage pipeline when there is
// a usage store). Call Close to stop it. An invalid option value is an error
// naming the option.
func NewManager(store Store, opts ...Option) (*Manager, error) {
	if store == nil {
		return nil, errors.New("apitoken: NewManager needs a Store")
	}
	c, err := newManagerConfig(opts)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		store:      store,
		format:     newTokenFormat(c.prefix, c.pepper, nil),
		clock:      c.clock,
		log:        c.log,
		cache:      newVerifyCache(c.maxNeg),
		ttl:        c.ttl,
		negTTL:     c.negTTL,
		touchInt:   c.touch,
		defLimit:   c.defLimit,
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		staleGrace: c.stale,
		flights:    map[Hash]*flight{},
	}
	m.lookupLog.Interval = dropLogInterval
	m.limiterLog.Interval = dropLogInterval
	if !c.noUsage {
		m.usage = c.usage
		if m.usage == nil {
			m.usage, _ = store.(UsageStore)
		}
	}
	switch {
	case c.sinkSet:
		m.sink = c.sink
	case m.usage != nil:
		m.ownSink = newBatchSink(m.usage, c.batch, c.log)
		m.sink = m.ownSink
	}
	go m.background()
	return m, nil
}

// newManagerConfig applies opts to the defaults and checks the result.
func newManagerConfig(opts []Option) (managerConfig, error) {
	c := managerConfig{
		prefix: defaultPrefix, clock: newSystemClock(), log: slog.Default(),
		ttl: 30 * time.Second, negTTL: 2 * time.Second, maxNeg: 100_000,
		touch: 10 * time.Second, defLimit: defaultRateLimit, stale: 15 * time.Minute,
	}
	for _, o := range opts {
		o(&c)
	}
	if err := validPrefix(c.prefix); err != nil {
		return c, err
	}
	bad := func(option, why string) error { return fmt.Errorf("apitoken: %s: %s", option, why) }
	var err error
	switch {
	case c.clock == nil:
		err = bad("WithClock", "nil clock")
	case c.log == nil:
		err = bad("WithLogger", "nil logger")
	case c.ttl <= 0:
		err = bad("WithCacheTTL", "the TTL must be positive")
	case c.negTTL < 0 || c.maxNeg < 0:
		err = bad("WithNegativeCacheTTL", "negative TTL or size")
	case c.stale < 0:
		err = bad("WithStaleIfError", "negative duration")
	case c.touch <= 0:
		err = bad("WithLastUsedInterval", "the interval must be positive")
	case c.pepperSet && len(c.pepper) == 0:
		err = bad("WithPepper", "empty pepper")
	case c.batchSet && c.sinkSet:
		err = bad("WithUsageBatch", "no pipeline to configure: WithSink replaces it")
	case c.defLimit < 0 || c.defLimit > MaxRateLimit:
		err = bad("WithDefaultRateLimit", fmt.Sprintf("the limit must be 0 to %d", MaxRateLimit))
	}
	if err != nil {
		return c, err
	}
	c.batch, err = c.batch.withDefaults()
	return c, err
}

// UsageStats returns the counts of the Manager's own usage pipeline (all
// zero when events go to a sink given with WithSink, or nowhere).
func (m *Manager) UsageStats() UsageStats {
	if m.ownSink == nil {
		return UsageStats{}
	}
	return m.ownSink.stats()
}

// Record sends e to where the Manager's usage events go: its own pipeline
// into the UsageStore, the sink given with WithSink, or nowhere. It never
// blocks. The Middleware records every request this way; call it for
// requests verified otherwise (a gRPC interceptor, a queue consumer).
func (m *Manager) Record(e Event) {
	if m.sink != nil {
		m.sink.Record(e)
	}
}

// now is the wall-clock time, in UTC.
func (m *Manager) now() time.Time {
	wall, _ := m.clock.Read()
	return wall.UTC()
}

// Close stops the background work, writes pending last_used_at values and
// writes the usage events still queued, within ctx.
func (m *Manager) Close(ctx context.Context) error {
	var err error
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
		// last_used_at first: one cheap statement, which a long drain of
		// the usage queue must not starve of ctx's time.
		err = m.flushLastUsed(ctx)
		if m.ownSink != nil {
			if e := m.ownSink.close(ctx); e != nil && err == nil {
				err = e
			}
		}
	})
	return err
}

func (m *Manager) background() {
	defer close(m.done)
	t := time.NewTicker(m.touchInt)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), m.touchInt)
			_ = m.flushLastUsed(ctx)
			cancel()
			_, mono := m.clock.Read()
			m.cache.sweep(mono, m.staleGrace)
		}
	}
}

// flushLastUsed writes the pending last_used_at values (the Manager does it
// every WithLastUsedInterval and on Close).
func (m *Manager) flushLastUsed(ctx context.Context) error {
	used, commit := m.cache.lastUses()
	if len(used) == 0 {
		commit()
		return nil
	}
	if err := m.store.TouchTokens(ctx, used); err != nil {
		m.cache.restore(used)
		m.log.Warn("apitoken: writing last_used_at failed; will retry", "tokens", len(used), "error", err.Error())
		return fmt.Errorf("apitoken: writing last_used_at: %w", err)
	}
	commit()
	return nil
}

// Create validates p, stores a new token and returns it with its plaintext.
// The plaintext is not kept anywhere: it cannot be retrieved again.
func (m *Manager) Create(ctx context.Context, p CreateParams) (*Token, string, error) {
	now := m.now()
	limit := m.defLimit
	if p.RateLimit != nil {
		limit = *p.RateLimit
	}
	t := &Token{
		Name:             p.Name,
		Description:      p.Description,
		UserID:           p.UserID,
		Active:           !p.Inactive,
		RateLimit:        limit,
		AllowedEndpoints: cloneStrings(p.AllowedEndpoints),
		Scopes:           cloneStrings(p.Scopes),
		ExpiresAt:        cloneTime(p.ExpiresAt),
		CreatedAt:        now,
		UpdatedAt:        now,
	}
	if p.Metadata != nil {
		t.Metadata = make(map[string]string, len(p.Metadata))
		for k, v := range p.Metadata {
			t.Metadata[k] = v
		}
	}
	if t.ExpiresAt != nil {
		e := t.ExpiresAt.UTC()
		t.ExpiresAt = &e
	}
	if err := m.validate(t, now); err != nil {
		return nil, "", err
	}
	for attempt := 0; ; attempt++ {
		plain, err := m.format.generate()
		if err != nil {
			return nil, "", err
		}
		t.Start = m.format.start(plain)
		err = m.store.CreateToken(WithAuditTime(ctx, now), t, m.format.hash(plain))
		if errors.Is(err, ErrDuplicate) && attempt < 2 {
			continue // a 256-bit collision: practically never
		}
		if err != nil {
			return nil, "", fmt.Errorf("apitoken: creating token: %w", err)
		}
		m.cache.dropNegative()
		return t.Clone(), plain, nil
	}
}

// Get returns the token with the id, or an error matching ErrNotFound.
func (m *Manager) Get(ctx context.Context, id int64) (*Token, error) {
	return m.store.GetToken(ctx, id)
}

// List returns the tokens matching opts, newest first, and how many match in
// all. A zero opts.Now is set to the Manager's clock, so Status is judged as
// Verify would judge the tokens now. An invalid Status returns a
// *ValidationError.
func (m *Manager) List(ctx context.Context, opts ListOptions) ([]*Token, int, error) {
	if opts.Limit < 0 || opts.Offset < 0 {
		return nil, 0, &ValidationError{Field: "limit", Message: "limit and offset must not be negative"}
	}
	if err := CheckStatus(opts.Status); err != nil {
		return nil, 0, err
	}
	// PostgreSQL text cannot hold NUL, so no stored value has one.
	switch {
	case nulInString(opts.Search):
		return nil, 0, &ValidationError{Field: "search", Message: "must not contain NUL characters"}
	case nulInString(opts.UserID):
		return nil, 0, &ValidationError{Field: "user_id", Message: "must not contain NUL characters"}
	}
	if opts.Now.IsZero() {
		opts.Now = m.now()
	}
	return m.store.ListTokens(ctx, opts)
}

// Update validates u, applies it and drops the token from the verification
// cache at once. Only the fields u sets change.
func (m *Manager) Update(ctx context.Context, id int64, u Update) (*Token, error) {
	now := m.now()
	if err := m.validateUpdate(u, now); err != nil {
		return nil, err
	}
	if u.ExpiresAt.Set && u.ExpiresAt.Value != nil {
		e := u.ExpiresAt.Value.UTC()
		u.ExpiresAt.Value = &e
	}
	t, err := m.store.UpdateToken(WithAuditTime(ctx, now), id, u, now)
	m.cache.invalidate(id)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Delete removes the token (and its usage, where the store keeps it).
func (m *Manager) Delete(ctx context.Context, id int64) error {
	err := m.store.DeleteToken(WithAuditTime(ctx, m.now()), id)
	m.cache.invalidate(id)
	return err
}

// Rotate gives the token a new secret and returns the token with the new
// plaintext, which, as on Create, cannot be retrieved again. Everything else
// about the token (id, name, limits, usage) stays.
//
// The old secret keeps working for grace, so clients can move to the new
// one without an outage, and counts as expired afterwards; with grace 0 it
// stops at once. Only the secret replaced last has a grace period: rotating
// again ends the earlier one. The token's PreviousExpiresAt says when the old
// secret stops. grace must be between 0 and 30 days.
func (m *Manager) Rotate(ctx context.Context, id int64, grace time.Duration) (*Token, string, error) {
	if grace < 0 || grace > maxRotationGrace {
		return nil, "", &ValidationError{Field: "grace_period_seconds",
			Message: fmt.Sprintf("must be between 0 and %d", int64(maxRotationGrace/time.Second))}
	}
	now := m.now()
	ctx = WithAuditTime(ctx, now)
	for attempt := 0; ; attempt++ {
		plain, err := m.format.generate()
		if err != nil {
			return nil, "", err
		}
		t, err := m.store.RotateToken(ctx, id, m.format.hash(plain), m.format.start(plain), now.Add(grace), now)
		m.cache.invalidate(id)
		if errors.Is(err, ErrDuplicate) && attempt < 2 {
			continue // a 256-bit collision: practically never
		}
		if err != nil {
			return nil, "", err
		}
		m.cache.dropNegative()
		return t, plain, nil
	}
}

// Audit returns the audit entries matching q, newest first, and how many
// match before paging. It returns ErrNoAuditStore when the Store keeps no
// audit log.
func (m *Manager) Audit(ctx context.Context, q AuditQuery) ([]*AuditEntry, int, error) {
	a, ok := m.store.(AuditStore)
	if !ok {
		return nil, 0, ErrNoAuditStore
	}
	return a.ListAudit(ctx, q)
}

// Invalidate drops the token from the verification cache, for a change made
// by another process (store/postgres calls it from LISTEN/NOTIFY).
func (m *Manager) Invalidate(id int64) { m.cache.invalidate(id) }

// InvalidateAll empties the verification cache.
func (m *Manager) InvalidateAll() { m.cache.clear() }

// Verify checks a plaintext token: well-formed (prefix and checksum), known,
// active and not expired. It returns ErrInvalidToken, ErrTokenDisabled,
// ErrTokenExpired, ErrStoreUnavailable or ctx's error.
//
// For ErrTokenDisabled and ErrTokenExpired the token is returned beside the
// error, so the caller can record the refusal. The returned token is shared
// with the cache and other requests: treat it as read-only (Clone it to
// change it).
func (m *Manager) Verify(ctx context.Context, plaintext string) (*Token, error) {
	wall, mono := m.clock.Read()
	e, err := m.verify(ctx, plaintext, wall, mono)
	if e == nil {
		return nil, err
	}
	return e.tok, err
}

// verify is Verify returning the cache entry, at the request's Clock
// readings: wall for the expiry check and last_used_at, mono for the cache.
func (m *Manager) verify(ctx context.Context, plaintext string, wall time.Time, mono time.Duration) (*cacheEntry, error) {
	// Every token of the prefix has one length: anything else is refused
	// before hashing.
	if len(plaintext) != m.format.length() {
		return nil, ErrInvalidToken
	}
	h := m.format.hash(plaintext)
	e := m.cache.get(h)
	if e == nil || mono > e.expires {
		// Only a token of the right prefix, alphabet and checksum may cost
		// a store lookup. (A cache hit needs no such check: its hash was
		// stored for a well-formed token.)
		if !m.format.wellFormed(plaintext) {
			return nil, ErrInvalidToken
		}
		fresh, err := m.load(ctx, h)
		switch {
		case err == nil:
			e = fresh
		case !m.usableStale(e, mono, err):
			return nil, err
		}
	}
	if e.notFound {
		return nil, ErrInvalidToken
	}
	if !e.tok.Active {
		return e, ErrTokenDisabled
	}
	if e.tok.expired(wall) {
		return e, ErrTokenExpired
	}
	e.noteUse(wall, mono)
	return e, nil
}

// usableStale reports whether old, an entry past its TTL at Monotonic
// reading mono, may answer while the store fails with err, or does not
// answer before the request's context ends: a token verified before keeps
// working for the stale-if-error grace (WithStaleIfError).
func (m *Manager) usableStale(old *cacheEntry, mono time.Duration, err error) bool {
	storeFailed := errors.Is(err, ErrStoreUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
	return old != nil && !old.notFound && mono <= old.expires+m.staleGrace && storeFailed
}

// flight is one store lookup that concurrent misses of the same hash share.
type flight struct {
	gen  uint64 // the cache's generation when it started
	done chan struct{}
	e    *cacheEntry
	err  error
}

// lookupTimeout bounds a shared store lookup, which does not end with the
// context of the request that started it (other requests wait for it too).
const lookupTimeout = 10 * time.Second

// load asks the store for h once however many requests miss it at the same
// time: a hot token whose cache entry expired costs one query, not one per
// concurrent request. A request never joins a lookup that started before
// the latest invalidation: its answer may predate the change.
func (m *Manager) load(ctx context.Context, h Hash) (*cacheEntry, error) {
	gen := m.cache.gen.Load()
	m.flightMu.Lock()
	f := m.flights[h]
	leader := f == nil || f.gen != gen
	if leader {
		f = &flight{gen: gen, done: make(chan struct{})}
		m.flights[h] = f
	}
	m.flightMu.Unlock()
	if leader {
		// The lookup runs on its own, so every waiter, the one that
		// started it included, can give up when its own context ends.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		go func() {
			defer cancel()
			f.e, f.err = m.lookup(lctx, h, f.gen)
			m.flightMu.Lock()
			if m.flights[h] == f {
				delete(m.flights, h)
			}
			m.flightMu.Unlock()
			close(f.done)
		}()
	}
	select {
	case <-f.done:
		return f.e, f.err
	case <-ctx.Done():
		select {
		case <-f.done: // both ready: the answer wins
			return f.e, f.err
		default:
			return nil, ctx.Err()
		}
	}
}

// lookup asks the store for h and caches the answer, a token or that there
// is none, unless the cache was invalidated since generation gen. The
// entries' TTLs start when the store has answered.
func (m *Manager) lookup(ctx context.Context, h Hash, gen uint64) (*cacheEntry, error) {
	t, err := m.store.GetTokenByHash(ctx, h)
	_, now := m.clock.Read()
	switch {
	case errors.Is(err, ErrNotFound):
		e := &cacheEntry{notFound: true, expires: now + m.negTTL}
		if m.negTTL > 0 {
			m.cache.put(h, e, gen)
		}
		return e, nil
	case err != nil:
		m.lookupLog.Do(func() {
			m.log.Warn("apitoken: token lookup failed; uncached tokens get 503 (logged at most every 10 s)", "error", err.Error())
		})
		return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	e, err := newCacheEntry(t, now+m.ttl)
	if err != nil {
		// A stored pattern that no longer compiles: refuse every endpoint
		// rather than allow all.
		m.log.Error("apitoken: stored allowed_endpoints do not compile; every endpoint refused", "token", t.LogValue(), "error", err.Error())
	}
	m.cache.put(h, e, gen)
	return e, nil
}

// ParseExpiry parses an expiry given as a date ("2026-12-31", midnight UTC,
// as the spec shows it) or an RFC 3339 time ("2026-12-31T18:00:00Z").
func ParseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, &ValidationError{Field: "expires_at", Message: notAnExpiry(s)}
}

// notAnExpiry is ParseExpiry's error message for s.
func notAnExpiry(s string) string {
	return fmt.Sprintf("%q is neither a date (2026-12-31) nor an RFC 3339 time (2026-12-31T00:00:00Z)", truncate(s, 64))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (m *Manager) validate(t *Token, now time.Time) error {
	u := Update{
		Name: Set(t.Name), Description: Set(t.Description), UserID: Set(t.UserID),
		RateLimit: Set(t.RateLimit), AllowedEndpoints: Set(t.AllowedEndpoints),
		Scopes: Set(t.Scopes), Metadata: Set(t.Metadata), ExpiresAt: Set(t.ExpiresAt),
	}
	return m.validateUpdate(u, now)
}

// validateUpdate returns a *ValidationError for the first field of u, in
// the order of bodyFields, that holds a NUL character (PostgreSQL text cannot
// hold one, and no field has a use for it); else for the first whose value
// the field's check refuses.
func (m *Manager) validateUpdate(u Update, now time.Time) error {
	for _, f := range bodyFields {
		if f.hasNUL(&u) {
			return &ValidationError{Field: f.name, Message: "must not contain NUL characters"}
		}
	}
	for _, f := range bodyFields {
		if wrong := f.check(&u, now); wrong != "" {
			return &ValidationError{Field: f.name, Message: wrong}
		}
	}
	return nil
}

// The checks of bodyFields: each says what is wrong with a field's value
// (the ValidationError's Message), "" when nothing is.

func checkName(n string, _ time.Time) string {
	switch {
	case strings.TrimSpace(n) == "":
		return "is required"
	case !utf8.ValidString(n):
		return "must be valid UTF-8"
	case utf8.RuneCountInString(n) > maxNameLen:
		return fmt.Sprintf("must be at most %d characters", maxNameLen)
	}
	return ""
}

func checkDescription(d string, _ time.Time) string {
	switch {
	case !utf8.ValidString(d):
		return "must be valid UTF-8"
	case utf8.RuneCountInString(d) > maxDescriptionLen:
		return fmt.Sprintf("must be at most %d characters", maxDescriptionLen)
	}
	return ""
}

func checkUserID(id string, _ time.Time) string {
	if len(id) > maxShortField || !utf8.ValidString(id) {
		return fmt.Sprintf("must be valid UTF-8 of at most %d bytes", maxShortField)
	}
	return ""
}

func checkRateLimit(r int, _ time.Time) string {
	switch {
	case r < 0:
		return "must be 0 (unlimited) or more"
	case r > MaxRateLimit:
		return fmt.Sprintf("must be at most %d", MaxRateLimit)
	}
	return ""
}

func checkAllowedEndpoints(patterns []string, _ time.Time) string {
	if len(patterns) > maxPatterns {
		return fmt.Sprintf("must hold at most %d patterns", maxPatterns)
	}
	if err := pathmatch.Validate(patterns); err != nil {
		return strings.TrimPrefix(err.Error(), "apitoken: ")
	}
	return ""
}

func checkScopes(scopes []string, _ time.Time) string {
	if len(scopes) > maxScopes {
		return fmt.Sprintf("must hold at most %d scopes", maxScopes)
	}
	for _, s := range scopes {
		if s == "" || len(s) > maxShortField || strings.ContainsAny(s, " \t\r\n") || !utf8.ValidString(s) {
			return fmt.Sprintf("%q must be 1 to %d characters without white space", truncate(s, 64), maxShortField)
		}
	}
	return ""
}

func checkMetadata(md map[string]string, _ time.Time) string {
	if len(md) > maxMetadataKeys {
		return fmt.Sprintf("must hold at most %d keys", maxMetadataKeys)
	}
	for k, v := range md {
		if k == "" || len(k) > maxShortField || !utf8.ValidString(k) {
			return fmt.Sprintf("key %q must be 1 to %d bytes of UTF-8", truncate(k, 64), maxShortField)
		}
		if len(v) > maxDescriptionLen || !utf8.ValidString(v) {
			return fmt.Sprintf("value of %q must be at most %d bytes of UTF-8", truncate(k, 64), maxDescriptionLen)
		}
	}
	return ""
}

func checkExpiresAt(e *time.Time, now time.Time) string {
	switch {
	case e == nil:
		return ""
	case !e.After(now):
		return "must be in the future"
	case e.Year() > 9999:
		return "must be before the year 10000"
	}
	return ""
}

// TokenUsage reports one token's usage over the last days days (1 to 90).
func (m *Manager) TokenUsage(ctx context.Context, id int64, days int) (*TokenUsage, error) {
	q, err := daysQuery(days, m.now())
	if err != nil {
		return nil, err
	}
	if m.usage == nil {
		return nil, ErrNoUsageStore
	}
	if _, err := m.store.GetToken(ctx, id); err != nil {
		return nil, err
	}
	return m.usage.TokenUsage(ctx, id, q)
}

// Overview reports all tokens' usage over the last days days (1 to 90).
func (m *Manager) Overview(ctx context.Context, days int) (*Overview, error) {
	q, err := daysQuery(days, m.now())
	if err != nil {
		return nil, err
	}
	if m.usage == nil {
		return nil, ErrNoUsageStore
	}
	return m.usage.Overview(ctx, q)
}

// TokenStats returns the list view's 24 h / 7 d / total counts for ids.
func (m *Manager) TokenStats(ctx context.Context, ids []int64) (map[int64]TokenStats, error) {
	if m.usage == nil {
		return nil, ErrNoUsageStore
	}
	return m.usage.TokenStats(ctx, ids, m.now())
}

// ErrNoUsageStore: an analytics method was called on a Manager without a
// usage store.
var ErrNoUsageStore = errors.New("apitoken: no usage store configured")
