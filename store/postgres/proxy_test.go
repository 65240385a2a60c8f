package postgres_test

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// faultProxy is a TCP proxy between a connection pool and PostgreSQL that
// can break the network the way outages do:
//
//   - Cut closes every live connection and refuses new ones (accepted, then
//     closed at once) until Restore;
//   - Arm(loseCommitAck) lets the next COMMIT through, drops the server's
//     answer and closes both sides: the transaction is committed but the
//     client cannot know;
//   - Arm(loseCommit) drops the next COMMIT and closes the client's side
//     only: the server's session stays idle in its open transaction, as
//     behind a network partition.
type faultProxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu     sync.Mutex
	pairs  map[*proxyPair]struct{}
	cut    bool
	fault  commitFault
	cutOn  bool // Cut once the armed fault has struck
	closed bool
	wg     sync.WaitGroup

	accepted, refused, struck atomic.Int64
}

type commitFault int

const (
	noFault commitFault = iota
	loseCommitAck
	loseCommit
)

type proxyPair struct {
	client, server net.Conn
	commitSent     atomic.Bool // loseCommitAck: COMMIT forwarded, its answer is to be lost
	once           sync.Once
}

func (p *proxyPair) close() {
	p.once.Do(func() {
		_ = p.client.Close()
		_ = p.server.Close()
	})
}

// startProxy starts a proxy to the host and port of dsn, stopped when t
// ends.
func startProxy(t testing.TB, dsn string) *faultProxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" || u.Host == "" {
		t.Skipf("the proxy tests need a URL connection string with a host (postgres://user@host:port/db), not %q", redactDSN(dsn))
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, ln: ln, target: target, pairs: map[*proxyPair]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	if strings.Contains(dsn, "password") {
		return "(a connection string with a password)"
	}
	return dsn
}

// DSN returns dsn pointing at the proxy, with a short connect timeout.
func (p *faultProxy) DSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		p.t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	return u.String()
}

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.mu.Lock()
		cut := p.cut || p.closed
		p.mu.Unlock()
		if cut {
			p.refused.Add(1)
			_ = c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		pair := &proxyPair{client: c, server: s}
		p.mu.Lock()
		if p.cut || p.closed {
			p.mu.Unlock()
			p.refused.Add(1)
			pair.close()
			continue
		}
		p.pairs[pair] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.toServer(pair)
		go p.toClient(pair)
	}
}

var commitQuery = []byte("COMMIT\x00") // the end of lib/pq's simple query message 'Q' for tx.Commit

// toServer copies the client's bytes to the server, watching for COMMIT.
func (p *faultProxy) toServer(pair *proxyPair) {
	defer p.wg.Done()
	keepServer := false // loseCommit: toClient, Cut or Close end the server's side
	defer func() {
		if !keepServer {
			p.drop(pair)
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := pair.client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if i := bytes.Index(chunk, commitQuery); i >= 5 && chunk[i-5] == 'Q' {
				switch p.take() {
				case loseCommitAck:
					pair.commitSent.Store(true)
				case loseCommit:
					// The client sees its connection die; the server hears
					// neither of the COMMIT nor of the end of the session.
					_ = pair.client.Close()
					keepServer = true
					p.struck.Add(1)
					p.afterStrike()
					return
				}
			}
			if _, werr := pair.server.Write(chunk); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// toClient copies the server's bytes to the client, losing the answer to
// a COMMIT when told to.
func (p *faultProxy) toClient(pair *proxyPair) {
	defer p.wg.Done()
	defer p.drop(pair)
	buf := make([]byte, 64<<10)
	for {
		n, err := pair.server.Read(buf)
		if n > 0 {
			if pair.commitSent.Load() {
				// The server has committed and answered; the client
				// never hears it.
				pair.close()
				p.struck.Add(1)
				p.afterStrike()
				return
			}
			if _, werr := pair.client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *faultProxy) drop(pair *proxyPair) {
	pair.close()
	p.mu.Lock()
	delete(p.pairs, pair)
	p.mu.Unlock()
}

// take returns the armed fault and disarms it.
func (p *faultProxy) take() commitFault {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.fault
	p.fault = noFault
	return f
}

func (p *faultProxy) afterStrike() {
	p.mu.Lock()
	cut := p.cutOn
	p.cutOn = false
	p.mu.Unlock()
	if cut {
		p.Cut()
	}
}

// Arm makes the next COMMIT through the proxy meet fault; with thenCut the
// proxy also cuts the network right after.
func (p *faultProxy) Arm(fault commitFault, thenCut bool) {
	p.mu.Lock()
	p.fault, p.cutOn = fault, thenCut
	p.mu.Unlock()
}

// Struck reports how many armed faults have happened.
func (p *faultProxy) Struck() int64 { return p.struck.Load() }

// Cut closes every live connection and refuses new ones until Restore.
// It returns how many connections it closed.
func (p *faultProxy) Cut() int {
	p.mu.Lock()
	p.cut = true
	live := make([]*proxyPair, 0, len(p.pairs))
	for pair := range p.pairs {
		live = append(live, pair)
	}
	p.mu.Unlock()
	for _, pair := range live {
		pair.close()
	}
	return len(live)
}

// Restore accepts connections again.
func (p *faultProxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection.
func (p *faultProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

// openProxiedDB opens a pool on the proxy, closed when t ends (before the
// proxy is).
func openProxiedDB(t testing.TB, p *faultProxy, dsn string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", p.DSN(dsn))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		t.Fatalf("connecting through the proxy: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
