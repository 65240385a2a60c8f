package postgres

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Option configures Migrate, New and Listen. Each option's documentation says
// which of them it affects; the others ignore it. Pass the same WithSchema to
// all three.
type Option func(*config)

type config struct {
	schema       string // "" = search_path
	err          error  // first invalid option
	pruneChunk   int
	log          *slog.Logger
	minReconnect time.Duration
	maxReconnect time.Duration
	strict       bool
	onListen     func()
}

// DefaultPruneChunk is how many usage rows Prune deletes per statement unless
// WithPruneChunk says otherwise.
const DefaultPruneChunk = 10_000

// Channel is the NOTIFY channel of token changes when no schema is set. With
// WithSchema("s") it is "apitoken_changes.s" (see ChannelName).
const Channel = "apitoken_changes"

func newConfig(opts []Option) *config {
	c := &config{
		pruneChunk:   DefaultPruneChunk,
		log:          slog.Default(),
		minReconnect: 100 * time.Millisecond,
		maxReconnect: 10 * time.Second,
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

func (c *config) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// WithSchema puts the tables in the named schema instead of the first schema
// of the connection's search_path (Migrate creates the schema when it is
// missing). Every statement of the Store then uses schema-qualified names, and
// the NOTIFY channel becomes ChannelName(name). The name must be an unquoted
// SQL identifier: 1 to 63 ASCII letters, digits and underscores, not starting
// with a digit nor with "pg_". It is matched case-sensitively (it is always
// quoted). Affects Migrate, New and Listen. Default: no schema.
func WithSchema(name string) Option {
	return func(c *config) {
		if err := validSchema(name); err != nil {
			c.fail(fmt.Errorf("apitoken: postgres: WithSchema: %w", err))
			return
		}
		c.schema = name
	}
}

// WithPruneChunk sets how many raw usage rows each DELETE of Prune removes
// (each in its own short transaction). Affects New; n must be positive.
// Default DefaultPruneChunk (10,000).
func WithPruneChunk(n int) Option {
	return func(c *config) {
		if n <= 0 {
			c.fail(fmt.Errorf("apitoken: postgres: WithPruneChunk: must be positive, got %d", n))
			return
		}
		c.pruneChunk = n
	}
}

// WithLogger sets where Listen reports lost and re-established listener
// connections (default slog.Default()). Affects Listen.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail(errors.New("apitoken: postgres: WithLogger: nil logger"))
			return
		}
		c.log = l
	}
}

// WithReconnectInterval sets the first and the longest wait between attempts
// to re-establish Listen's connection (defaults 100 ms and 10 s). Affects
// Listen.
func WithReconnectInterval(min, max time.Duration) Option {
	return func(c *config) {
		if min <= 0 || max < min {
			c.fail(fmt.Errorf("apitoken: postgres: WithReconnectInterval: must satisfy 0 < min <= max, got %v and %v", min, max))
			return
		}
		c.minReconnect, c.maxReconnect = min, max
	}
}

// WithStrictInvalidation makes Listen also empty the cache when its
// connection is lost and after every failed attempt to re-establish it, not
// only once it is listening again. Changes made while the listener is down
// then never outlive the loss of the connection in the cache, but during a
// database outage every token, cached or not, needs the store (and gets the
// middleware's 503). By default the cache keeps serving while the listener
// is down, so a change made meanwhile is seen within the Manager's cache TTL,
// as without Listen. Affects Listen.
func WithStrictInvalidation() Option { return func(c *config) { c.strict = true } }

// WithOnListen sets a function Listen calls each time it is listening
// (first and after every reconnection), after it has emptied the cache: from
// then on every change is notified. Affects Listen.
func WithOnListen(f func()) Option { return func(c *config) { c.onListen = f } }

// validSchema checks that name is a plain identifier.
func validSchema(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("invalid schema name %q: %s", name, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > 63:
		return bad("longer than 63 bytes")
	case len(name) >= 3 && strings.EqualFold(name[:3], "pg_"):
		return bad(`names starting with "pg_" are reserved`)
	case name[0] >= '0' && name[0] <= '9':
		return bad("starts with a digit")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return bad("only ASCII letters, digits and underscores are allowed")
		}
	}
	return nil
}

// ChannelName returns the NOTIFY channel of token changes for the tables in
// schema ("" for no WithSchema): Channel, or Channel + "." + schema, or, when
// that would be longer than PostgreSQL's 63-byte limit, Channel + "." + 16
// hex digits of the schema name's SHA-256.
func ChannelName(schema string) string {
	if schema == "" {
		return Channel
	}
	name := Channel + "." + schema
	if len(name) > 63 {
		sum := sha256.Sum256([]byte(schema))
		name = Channel + "." + hex.EncodeToString(sum[:8])
	}
	return name
}

// names holds the quoted, qualified names of the tables.
type names struct {
	tokens, usage, hourly, migrations string
	tokenHourly, endpointHourly       string
	audit                             string
}

func newNames(schema string) names {
	q := func(table string) string {
		if schema == "" {
			return table
		}
		return pq.QuoteIdentifier(schema) + "." + table
	}
	return names{
		tokens:     q("api_tokens"),
		usage:      q("api_token_usage"),
		hourly:     q("api_token_usage_hourly"),
		migrations: q("apitoken_schema_migrations"),

		audit:          q("api_token_audit"),
		tokenHourly:    q("api_token_usage_token_hourly"),
		endpointHourly: q("api_token_usage_endpoint_hourly"),
	}
}
