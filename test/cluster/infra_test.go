//go:build cluster

package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq"
)

// cluster is three replicas of examples/server with their own redis-server,
// a PostgreSQL proxy and a schema of their own.
type cluster struct {
	t       *testing.T
	dir     string
	bin     string
	schema  string
	db      *sql.DB // straight to PostgreSQL, not through the proxy
	proxy   *pgProxy
	redis   *redisServer
	reps    []*replica
	secret  string
	client  *http.Client
	tally   *tally
	baseEnv []string
}

// serverEnv are the variables the harness sets for the replicas; any value
// they have in the harness's own environment is not passed on.
var serverEnv = []string{"ADDR", "DATABASE_URL", "DATABASE_SCHEMA", "REDIS_URL", "REDIS_PREFIX", "REDIS_TIMEOUT", "REPLICAS", "RATE_WINDOW", "ADMIN_TOKEN"}

func newCluster(t *testing.T, dsn string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), tally: newTally()}
	c.secret = "cluster-admin-" + randHex(12)
	c.schema = fmt.Sprintf("apitoken_cluster_%d_%s", os.Getpid(), randHex(4))
	c.client = &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		},
	}

	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		t.Fatal("APITOKEN_TEST_POSTGRES_DSN must be a postgres:// URL with a host for the cluster harness")
	}
	c.db, err = sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	c.db.SetMaxOpenConns(4)
	t.Cleanup(func() {
		// Runs after the replicas have stopped (cleanups run last first).
		if _, err := c.db.Exec(`DROP SCHEMA IF EXISTS "` + c.schema + `" CASCADE`); err != nil {
			t.Logf("dropping schema %s: %v", c.schema, err)
		}
		c.db.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.db.PingContext(ctx); err != nil {
		t.Fatalf("PostgreSQL at APITOKEN_TEST_POSTGRES_DSN: %v", err)
	}

	// Build examples/server once.
	begin := time.Now()
	c.bin = filepath.Join(c.dir, "server")
	build := exec.Command(goTool(), "build", "-o", c.bin, "./server")
	build.Dir = filepath.Join("..", "..", "examples") // its own module, with and without the go.work
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/server: %v\n%s", err, out)
	}
	fmt.Printf("cluster: built examples/server in %s\n", time.Since(begin).Round(100*time.Millisecond))

	// Its own redis-server, so killing it disturbs no other test.
	c.redis = &redisServer{port: freePort(t), dir: c.dir}
	if err := c.redis.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.redis.kill)

	// The replicas reach PostgreSQL through a proxy the harness can cut.
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	c.proxy, err = newPGProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.proxy.close)
	pu := *u
	pu.Host = c.proxy.addr()

	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, s := range serverEnv {
			if k == s {
				keep = false
			}
		}
		if keep {
			c.baseEnv = append(c.baseEnv, kv)
		}
	}
	env := append(slices.Clip(c.baseEnv),
		"ADDR=127.0.0.1:0",
		"DATABASE_URL="+pu.String(),
		"DATABASE_SCHEMA="+c.schema,
		fmt.Sprintf("REDIS_URL=redis://127.0.0.1:%d/0", c.redis.port),
		"REPLICAS=3",
		"RATE_WINDOW="+window.String(),
		"REDIS_TIMEOUT="+redisTimeout(),
		"ADMIN_TOKEN="+c.secret,
	)
	begin = time.Now()
	// A first: it applies the migrations; B and C then start together.
	c.reps = make([]*replica, 3)
	c.reps[0] = c.startReplica("A", env)
	var wg sync.WaitGroup
	for i, name := range []string{"B", "C"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.reps[i+1] = c.startReplica(name, env)
		}()
	}
	wg.Wait()
	for _, r := range c.reps {
		if r.base == "" {
			t.FailNow() // startReplica reported why
		}
		if !strings.Contains(r.limiter, "Redis at 127.0.0.1:"+strconv.Itoa(c.redis.port)) {
			t.Fatalf("replica %s does not use the harness's Redis: %q", r.name, r.limiter)
		}
	}
	fmt.Printf("cluster: replicas A %s, B %s, C %s up in %s; redis-server on port %d; PostgreSQL through a proxy at %s; schema %s\n",
		c.reps[0].base, c.reps[1].base, c.reps[2].base, time.Since(begin).Round(100*time.Millisecond),
		c.redis.port, c.proxy.addr(), c.schema)
	fmt.Printf("cluster: %s\n", c.reps[0].limiter)
	return c
}

// redisTimeout is the replicas' REDIS_TIMEOUT: $CLUSTER_REDIS_TIMEOUT, else
// defaultRedisTimeout.
func redisTimeout() string {
	if v := os.Getenv("CLUSTER_REDIS_TIMEOUT"); v != "" {
		return v
	}
	return defaultRedisTimeout
}

// goTool returns the go command.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ---- replicas -----------------------------------------------------------

// replica is one examples/server process.
type replica struct {
	name    string
	base    string // http://127.0.0.1:port
	host    string // 127.0.0.1:port
	limiter string // the "rate limits:" line it printed
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
	errLog  string
}

// startReplica starts the server and waits until it answers /healthz.
func (c *cluster) startReplica(name string, env []string) *replica {
	r := &replica{name: name, exited: make(chan struct{}), errLog: filepath.Join(c.dir, "replica-"+name+".stderr")}
	errf, err := os.Create(r.errLog)
	if err != nil {
		c.t.Error(err)
		return r
	}
	outf, err := os.Create(filepath.Join(c.dir, "replica-"+name+".stdout"))
	if err != nil {
		c.t.Error(err)
		return r
	}
	listening := make(chan string, 1)
	limiter := make(chan string, 1)
	r.cmd = exec.Command(c.bin)
	r.cmd.Env = env
	r.cmd.Stderr = errf
	r.cmd.Stdout = &lineWriter{w: outf, line: func(l string) {
		switch {
		case strings.HasPrefix(l, "apitoken demo listening on "):
			select {
			case listening <- strings.TrimPrefix(l, "apitoken demo listening on "):
			default:
			}
		case strings.HasPrefix(l, "rate limits:"):
			select {
			case limiter <- l:
			default:
			}
		}
	}}
	if err := r.cmd.Start(); err != nil {
		c.t.Errorf("starting replica %s: %v", name, err)
		return r
	}
	go func() {
		r.exitErr = r.cmd.Wait()
		errf.Close()
		outf.Close()
		close(r.exited)
	}()
	c.t.Cleanup(func() { r.stop(30 * time.Second) })
	select {
	case base := <-listening:
		r.base, r.host = base, strings.TrimPrefix(base, "http://")
	case <-r.exited:
		c.t.Errorf("replica %s exited at start (%v):\n%s", name, r.exitErr, tail(r.errLog, 30))
		return r
	case <-time.After(90 * time.Second):
		c.t.Errorf("replica %s did not print its address within 90 s:\n%s", name, tail(r.errLog, 30))
		return r
	}
	select {
	case r.limiter = <-limiter:
	default: // printed before the address
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.client.Get(r.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return r
			}
		}
		if time.Now().After(deadline) {
			c.t.Errorf("replica %s does not answer /healthz: %v", name, err)
			r.base = ""
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the exit, killing it after timeout.
func (r *replica) stop(timeout time.Duration) error {
	if r.cmd == nil || r.cmd.Process == nil {
		return nil
	}
	select {
	case <-r.exited:
		return r.exitErr
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
		return r.exitErr
	case <-time.After(timeout):
		_ = r.cmd.Process.Kill()
		<-r.exited
		return fmt.Errorf("replica %s did not exit within %s of SIGTERM; killed", r.name, timeout)
	}
}

// lineWriter calls line for every complete line written and copies
// everything to w.
type lineWriter struct {
	w    io.Writer
	line func(string)
	buf  []byte
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.buf = append(lw.buf, p...)
	for {
		i := bytes.IndexByte(lw.buf, '\n')
		if i < 0 {
			break
		}
		lw.line(strings.TrimRight(string(lw.buf[:i]), "\r"))
		lw.buf = lw.buf[i+1:]
	}
	return lw.w.Write(p)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---- redis-server -----------------------------------------------------------

// redisServer is the harness's own redis-server process.
type redisServer struct {
	port   int
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// start runs redis-server on r.port without persistence and waits until it
// answers PING.
func (r *redisServer) start() error {
	r.starts++
	log, err := os.Create(filepath.Join(r.dir, fmt.Sprintf("redis-%d.log", r.starts)))
	if err != nil {
		return err
	}
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	r.cmd.Stdout, r.cmd.Stderr = log, log
	if err := r.cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting redis-server (is it on PATH?): %w", err)
	}
	r.exited = make(chan struct{})
	cmd, exited := r.cmd, r.exited
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !r.ping() {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited at start:\n%s", tail(log.Name(), 20))
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("redis-server does not answer PING within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// ping reports whether redis-server answers PING.
func (r *redisServer) ping() bool {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(r.port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// kill stops redis-server at once (SIGKILL) and waits for it to exit.
func (r *redisServer) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
}

// ---- PostgreSQL proxy ---------------------------------------------------------

// pgProxy forwards TCP connections to PostgreSQL. cut closes every
// connection and refuses new ones (accepted and closed at once) until
// restore.
type pgProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	isCut   bool
	conns   map[net.Conn]struct{}
	refused atomic.Int64 // connections refused while cut
}

func newPGProxy(target string) (*pgProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &pgProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

func (p *pgProxy) addr() string { return p.ln.Addr().String() }

func (p *pgProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.isCut {
			p.mu.Unlock()
			p.refused.Add(1)
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		go p.pipe(c)
	}
}

func (p *pgProxy) pipe(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	p.mu.Lock()
	if err != nil || p.isCut {
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// cut closes every proxied connection and refuses new ones.
func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isCut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore lets connections through again.
func (p *pgProxy) restore() {
	p.mu.Lock()
	p.isCut = false
	p.mu.Unlock()
}

func (p *pgProxy) close() {
	p.ln.Close()
	p.cut()
}

// ---- tokens and the admin API ----------------------------------------------

type token struct {
	id    int64
	name  string
	plain string
	limit int
}

// createToken creates a token through replica r's admin API.
func (c *cluster) createToken(r *replica, name string, limit int) (token, error) {
	body, _ := json.Marshal(map[string]any{"name": name, "rate_limit": limit})
	status, resp, err := c.admin(r, "POST", "/api/api-tokens", body)
	if err != nil {
		return token{}, err
	}
	var created struct {
		Token struct {
			ID    int64  `json:"id"`
			Token string `json:"token"`
		} `json:"token"`
	}
	if status != http.StatusCreated || json.Unmarshal(resp, &created) != nil || created.Token.Token == "" {
		return token{}, fmt.Errorf("creating token %q: %d %s", name, status, resp)
	}
	return token{id: created.Token.ID, name: name, plain: created.Token.Token, limit: limit}, nil
}

// admin makes an admin API request with the admin secret.
func (c *cluster) admin(r *replica, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, r.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// usageRows counts the usage rows of a token, of one User-Agent when ua is
// not "".
func (c *cluster) usageRows(tokenID int64, ua string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := `SELECT count(*) FROM "` + c.schema + `".api_token_usage WHERE token_id = $1 AND ($2 = '' OR user_agent = $2)`
	var n int
	err := c.db.QueryRowContext(ctx, q, tokenID, ua).Scan(&n)
	return n, err
}

// ---- requests and load -------------------------------------------------------

// result is one request as the client saw it.
type result struct {
	replica   *replica
	sent      time.Time
	recv      time.Time
	status    int // 0: no answer
	remaining int // X-RateLimit-Remaining, -1 when absent
	body      string
	err       string
}

func (r result) latency() time.Duration { return r.recv.Sub(r.sent) }

// userAgent is the User-Agent of the harness's requests: the usage rows
// tell which load and replica each came from.
func userAgent(load string, r *replica) string {
	return "apitoken-cluster/" + load + "/" + r.name
}

// get makes one API request with tok to replica r and counts it in the
// tally.
func (c *cluster) get(r *replica, tok token, ua string) result {
	req, _ := http.NewRequest("GET", r.base+"/api/products", nil)
	req.Header.Set("Authorization", "Bearer "+tok.plain)
	req.Header.Set("User-Agent", ua)
	res := result{replica: r, sent: time.Now(), remaining: -1}
	resp, err := c.client.Do(req)
	if err != nil {
		res.recv, res.err = time.Now(), err.Error()
		return res
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	res.recv, res.status, res.body = time.Now(), resp.StatusCode, strings.TrimSpace(string(b))
	if v := resp.Header.Get("X-RateLimit-Remaining"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			res.remaining = n
		}
	}
	c.tally.count(tok.id, res.status)
	return res
}

// loadSpec is a paced load: rate requests per second for dur, request i to
// targets[i % len(targets)], by at most workers requests at a time.
type loadSpec struct {
	name    string
	tok     token
	targets []*replica
	rate    float64
	dur     time.Duration
	workers int
}

type loadRun struct {
	start   time.Time
	end     time.Time
	results []result
	skipped int // ticks with every worker busy
}

// runLoad runs the load and returns every request's result. Requests are
// paced by the clock (a late tick is sent at once, not dropped), and a tick
// when every worker is busy is skipped and counted: the load is bounded.
func (c *cluster) runLoad(spec loadSpec) *loadRun {
	interval := time.Duration(float64(time.Second) / spec.rate)
	n := int(spec.dur / interval)
	run := &loadRun{results: make([]result, 0, n)}
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range spec.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r := spec.targets[i%len(spec.targets)]
				res := c.get(r, spec.tok, userAgent(spec.name, r))
				mu.Lock()
				run.results = append(run.results, res)
				mu.Unlock()
			}
		}()
	}
	run.start = time.Now()
	for i := range n {
		if d := time.Until(run.start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		select {
		case jobs <- i:
		default:
			run.skipped++
		}
	}
	close(jobs)
	wg.Wait()
	run.end = time.Now()
	sort.Slice(run.results, func(i, j int) bool { return run.results[i].sent.Before(run.results[j].sent) })
	return run
}

// filter returns the results for which keep is true.
func filter(rs []result, keep func(result) bool) []result {
	var out []result
	for _, r := range rs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// statusCounts formats how many results had each status ("200:588
// 429:2412", "error:3").
func statusCounts(rs []result) string {
	m := map[int]int{}
	for _, r := range rs {
		m[r.status]++
	}
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		name := strconv.Itoa(k)
		if k == 0 {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s: %d", name, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// maxInWindow returns the largest number of results certainly decided
// within one window of length w starting at or after from: taking each
// result's send time as a window's start, the results sent at or after it
// and answered before it plus w. The server decided each request between
// its send and its answer, so a count above the limit is a real excess
// whatever the latency. It also returns the window's start.
func maxInWindow(rs []result, w time.Duration, from time.Time) (int, time.Time) {
	best, at := 0, time.Time{}
	for i, ri := range rs { // rs is in send order
		if ri.sent.Before(from) {
			continue
		}
		end := ri.sent.Add(w)
		n := 0
		for _, rj := range rs[i:] {
			if !rj.sent.Before(end) {
				break
			}
			if rj.recv.Before(end) {
				n++
			}
		}
		if n > best {
			best, at = n, ri.sent
		}
	}
	return best, at
}

// windowCounts counts results by send time in consecutive windows of w
// from start.
func windowCounts(rs []result, start time.Time, w time.Duration, n int) []int {
	out := make([]int, n)
	for _, r := range rs {
		if k := int(r.sent.Sub(start) / w); k >= 0 && k < n {
			out[k]++
		}
	}
	return out
}

// latencies formats the median, 99th percentile and largest latency.
func latencies(rs []result) string {
	if len(rs) == 0 {
		return "-"
	}
	d := make([]time.Duration, len(rs))
	for i, r := range rs {
		d[i] = r.latency()
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	q := func(p float64) time.Duration { return d[int(p*float64(len(d)-1))].Round(100 * time.Microsecond) }
	return fmt.Sprintf("p50 %s, p99 %s, max %s", q(0.5), q(0.99), d[len(d)-1].Round(100*time.Microsecond))
}

// perReplica formats a count per replica.
func perReplica(reps []*replica, rs []result, keep func(result) bool) string {
	var parts []string
	for _, r := range reps {
		n := 0
		for _, x := range rs {
			if x.replica == r && keep(x) {
				n++
			}
		}
		parts = append(parts, fmt.Sprintf("%s %d", r.name, n))
	}
	return strings.Join(parts, ", ")
}

// ---- the tally of answered requests ------------------------------------------

// tally counts, per token, the answered requests that must have a usage
// row: every answer of a known token but 503 (no decision could be made:
// the middleware records nothing then).
type tally struct {
	mu sync.Mutex
	n  map[int64]int
}

func newTally() *tally { return &tally{n: map[int64]int{}} }

func (t *tally) count(id int64, status int) {
	if status == 0 || status == http.StatusServiceUnavailable {
		return
	}
	t.mu.Lock()
	t.n[id]++
	t.mu.Unlock()
}

func (t *tally) snapshot() map[int64]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[int64]int, len(t.n))
	for k, v := range t.n {
		m[k] = v
	}
	return m
}

// ---- the report ----------------------------------------------------------------

// check is one check's figures and problems.
type check struct {
	name     string
	start    time.Time
	figures  []string
	problems []string
}

func newCheck(name string) *check { return &check{name: name, start: time.Now()} }

// logf records a figure.
func (c *check) logf(format string, args ...any) {
	c.figures = append(c.figures, fmt.Sprintf(format, args...))
}

// failf records a problem: the check fails.
func (c *check) failf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// report prints checks as they end and counts them.
type report struct {
	mu             sync.Mutex
	t              *testing.T
	passed, failed int
}

func (r *report) add(c *check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "\n== %s (%s)\n", c.name, time.Since(c.start).Round(100*time.Millisecond))
	for _, f := range c.figures {
		fmt.Fprintf(&b, "   %s\n", f)
	}
	if len(c.problems) == 0 {
		fmt.Fprintf(&b, "ok   %s\n", c.name)
		r.passed++
	} else {
		fmt.Fprintf(&b, "FAIL %s: %s\n", c.name, strings.Join(c.problems, "; "))
		r.failed++
		r.t.Errorf("%s: %s", c.name, strings.Join(c.problems, "; "))
	}
	fmt.Print(b.String())
}

// limiterLog returns the Redis limiter's log lines (degraded, recovered) that
// replica r wrote between from and to, shortened, with their times.
func limiterLog(r *replica, from, to time.Time) []string {
	b, err := os.ReadFile(r.errLog)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, "redis rate limiter") {
			continue
		}
		ts, rest, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || at.Before(from) || at.After(to) {
			continue
		}
		rest = strings.TrimPrefix(rest, "level=")
		out = append(out, at.UTC().Format("15:04:05.000")+" "+rest)
	}
	return out
}

// countLines counts the lines of a file that contain sub.
func countLines(path, sub string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	return strings.Count(string(b), sub)
}
