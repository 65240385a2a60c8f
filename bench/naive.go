package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Naive is the baseline a team writes from the spec without this library:
// tokens stored in plaintext, and per request one SELECT of the token row by
// value, one UPDATE of last_used_at and one INSERT of a usage row, in the
// spec's schema (without the users foreign key). It checks active, expiry
// and allowed endpoints (exact prefix match) but keeps no rate limit.
type Naive struct {
	db     *sqlx.DB
	tokens string
	usage  string
}

// NewNaive creates the spec's two tables in schema (created if missing,
// emptied if present) on db.
func NewNaive(ctx context.Context, db *sqlx.DB, schema string) (*Naive, error) {
	q := pq.QuoteIdentifier(schema)
	n := &Naive{db: db, tokens: q + ".api_tokens", usage: q + ".api_token_usage"}
	for _, stmt := range []string{
		`CREATE SCHEMA IF NOT EXISTS ` + q,
		`DROP TABLE IF EXISTS ` + n.usage + `, ` + n.tokens,
		`CREATE TABLE ` + n.tokens + ` (
			id SERIAL PRIMARY KEY,
			name VARCHAR(255) NOT NULL,
			token VARCHAR(255) UNIQUE NOT NULL,
			description TEXT,
			active BOOLEAN DEFAULT true,
			rate_limit INTEGER DEFAULT 100,
			allowed_endpoints TEXT[],
			expires_at TIMESTAMP,
			last_used_at TIMESTAMP,
			created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
			updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)`,
		`CREATE TABLE ` + n.usage + ` (
			id SERIAL PRIMARY KEY,
			token_id INTEGER REFERENCES ` + n.tokens + `(id) ON DELETE CASCADE,
			endpoint VARCHAR(255) NOT NULL,
			method VARCHAR(10) NOT NULL,
			status_code INTEGER,
			response_time_ms INTEGER,
			request_size INTEGER,
			response_size INTEGER,
			ip_address INET,
			user_agent TEXT,
			created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("naive: %w", err)
		}
	}
	return n, nil
}

// CreateToken stores a new token and returns its value.
func (n *Naive) CreateToken(ctx context.Context, name string) (string, error) {
	token := "naive_" + rand.Text()
	_, err := n.db.ExecContext(ctx, `INSERT INTO `+n.tokens+` (name, token) VALUES ($1, $2)`, name, token)
	return token, err
}

type naiveToken struct {
	ID               int64          `db:"id"`
	Active           bool           `db:"active"`
	ExpiresAt        sql.NullTime   `db:"expires_at"`
	AllowedEndpoints pq.StringArray `db:"allowed_endpoints"`
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	size   int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.size += n
	return n, err
}

func naiveError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"error\":%q}\n", msg)
}

// Middleware verifies the bearer token and records the request, three
// statements per request.
func (n *Naive) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := r.Context()
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			naiveError(w, http.StatusUnauthorized, "Invalid API token")
			return
		}
		var t naiveToken
		err := n.db.GetContext(ctx, &t, `SELECT id, active, expires_at, allowed_endpoints FROM `+n.tokens+` WHERE token = $1`, token)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			naiveError(w, http.StatusUnauthorized, "Invalid API token")
			return
		case err != nil:
			naiveError(w, http.StatusInternalServerError, "Internal server error")
			return
		case !t.Active:
			naiveError(w, http.StatusForbidden, "Token is disabled")
			return
		case t.ExpiresAt.Valid && !t.ExpiresAt.Time.After(time.Now()):
			naiveError(w, http.StatusUnauthorized, "Token has expired")
			return
		}
		if len(t.AllowedEndpoints) > 0 {
			allowed := false
			for _, p := range t.AllowedEndpoints {
				if strings.HasPrefix(r.URL.Path, strings.TrimSuffix(p, "*")) {
					allowed = true
					break
				}
			}
			if !allowed {
				naiveError(w, http.StatusForbidden, "Endpoint not allowed")
				return
			}
		}
		if _, err := n.db.ExecContext(ctx, `UPDATE `+n.tokens+` SET last_used_at = now() WHERE id = $1`, t.ID); err != nil {
			naiveError(w, http.StatusInternalServerError, "Internal server error")
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		if net.ParseIP(ip) == nil {
			ip = ""
		}
		_, _ = n.db.ExecContext(ctx, `INSERT INTO `+n.usage+` (token_id, endpoint, method, status_code, response_time_ms,
			request_size, response_size, ip_address, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, '')::inet, $9)`,
			t.ID, r.URL.Path, r.Method, sw.status, time.Since(start).Milliseconds(), max(r.ContentLength, 0), sw.size, ip, r.UserAgent())
	})
}
