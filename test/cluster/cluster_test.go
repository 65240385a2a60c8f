//go:build cluster

package cluster

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// window is the replicas' RATE_WINDOW: the limits below are per 10 s, so a
// few minutes of real time hold several windows.
const window = 10 * time.Second

// defaultRedisTimeout is the replicas' REDIS_TIMEOUT unless
// $CLUSTER_REDIS_TIMEOUT says otherwise. With the limiter's default, 50 ms,
// a replica on this project's 2-vCPU CI machine, busy with other jobs, now
// and then waits longer than that for Redis, turns degraded for a probe
// interval and allows up to limit÷3 on its own on top of what Redis counted
// (71 allowed in a window of limit 60 was seen): that is the fail-open
// policy doing its job, not what these checks are about. Killing Redis is
// noticed at once either way (connections are refused).
const defaultRedisTimeout = "500ms"

// atLeast is the lower bound of an allowed count: the limit less 1/60 (the
// issue's 590 of 600), rounded up.
func atLeast(limit int) int { return int(math.Ceil(float64(limit) * (1 - 1.0/60))) }

func TestCluster(t *testing.T) {
	dsn := os.Getenv("APITOKEN_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("APITOKEN_TEST_POSTGRES_DSN is not set (required when CI is set)")
		}
		t.Skip("APITOKEN_TEST_POSTGRES_DSN is not set: skipping the cluster harness")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not on PATH (required when CI is set)")
		}
		t.Skip("redis-server is not on PATH: skipping the cluster harness")
	}
	begin := time.Now()
	// CLUSTER_CHECKS=redis,sigterm runs only those checks (names: exact,
	// revoke, pg, redis, sigterm, usage); by default all run.
	only := map[string]bool{}
	for _, name := range strings.Split(os.Getenv("CLUSTER_CHECKS"), ",") {
		if name = strings.TrimSpace(name); name != "" {
			only[name] = true
		}
	}
	run := func(name string) bool { return len(only) == 0 || only[name] }
	c := newCluster(t, dsn)
	rep := &report{t: t}
	A := c.reps[0]

	// Every token is created through A's admin API.
	var tokens []token
	create := func(name string, limit int) token {
		tok, err := c.createToken(A, name, limit)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
		return tok
	}
	exact := create("cluster - exactness", 100)
	revoke := create("cluster - revocation", 0)
	pg := create("cluster - postgres fault", 0)
	rds := create("cluster - redis fault", 60)
	light := create("cluster - redis fault, light load", 1000)
	term := create("cluster - sigterm", 0)
	probes := make([]token, 40)
	for i := range probes {
		probes[i] = create(fmt.Sprintf("cluster - redis probe %d", i+1), 30)
	}
	fmt.Printf("cluster: %d tokens created through A's admin API\n", len(tokens))

	// Phase 1: the exactness load; beside it, on other tokens, the
	// revocation and then the PostgreSQL fault (limits live in Redis, so
	// cutting PostgreSQL off does not change the exactness token's).
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if run("exact") {
			rep.add(checkExactness(c, exact))
		}
	}()
	go func() {
		defer wg.Done()
		if run("exact") {
			time.Sleep(2 * time.Second)
		}
		if run("revoke") {
			rep.add(checkRevocation(c, revoke))
		}
		if run("pg") {
			rep.add(checkPostgresFault(c, pg))
		}
	}()
	wg.Wait()

	// Phase 2: Redis.
	if run("redis") {
		rep.add(checkRedisFault(c, rds, light, probes))
	}

	// Phase 3: SIGTERM to C, then A and B, and the whole run's usage.
	if run("sigterm") {
		rep.add(checkSIGTERM(c, term))
	}
	if run("usage") {
		rep.add(checkAllUsage(c, tokens))
	}

	if t.Failed() {
		for _, r := range c.reps {
			fmt.Printf("\n-- replica %s stderr (last lines):\n%s\n", r.name, tail(r.errLog, 25))
		}
	}
	fmt.Printf("\ncluster harness: %s\n%d passed, %d failed\n", time.Since(begin).Round(time.Second), rep.passed, rep.failed)
}

// checkExactness: 50 requests/s round-robin over the three replicas for
// 60 s on a token allowed 100 per 10 s.
func checkExactness(c *cluster, tok token) *check {
	const dur = 60 * time.Second
	ch := newCheck(fmt.Sprintf("limit exactness: %d per %s, 50 requests/s round-robin over A, B, C for %s", tok.limit, window, dur))
	run := c.runLoad(loadSpec{name: "exact", tok: tok, targets: c.reps, rate: 50, dur: dur, workers: 16})
	allowed := filter(run.results, func(r result) bool { return r.status == http.StatusOK })
	ch.logf("requests: %d sent (%d ticks skipped with every worker busy): %s; latency %s",
		len(run.results), run.skipped, statusCounts(run.results), latencies(run.results))
	ch.logf("allowed per replica: %s", perReplica(c.reps, run.results, func(r result) bool { return r.status == http.StatusOK }))
	ch.logf("allowed per consecutive %s window from the start: %v", window, windowCounts(allowed, run.start, window, int(dur/window)))

	most, at := maxInWindow(allowed, window, time.Time{})
	ch.logf("most allowed in any %s window: %d (the window from +%s); want at most %d and at least %d",
		window, most, at.Sub(run.start).Round(time.Millisecond), tok.limit, atLeast(tok.limit))
	if most > tok.limit {
		ch.failf("%d allowed in one %s window, limit %d", most, window, tok.limit)
	}
	if most < atLeast(tok.limit) {
		ch.failf("at most %d allowed in a %s window, want at least %d", most, window, atLeast(tok.limit))
	}
	// The run is one 60 s window: six windows of 10 s.
	perRun := tok.limit * int(dur/window)
	mostRun, _ := maxInWindow(allowed, dur, time.Time{})
	ch.logf("allowed in the whole %s: %d (most in any %s window: %d); want at most %d and at least %d",
		dur, len(allowed), dur, mostRun, perRun, atLeast(perRun))
	if mostRun > perRun {
		ch.failf("%d allowed in one %s window, want at most %d", mostRun, dur, perRun)
	}
	if len(allowed) < atLeast(perRun) {
		ch.failf("%d allowed in %s, want at least %d", len(allowed), dur, atLeast(perRun))
	}
	if n := len(filter(run.results, func(r result) bool {
		return r.status != http.StatusOK && r.status != http.StatusTooManyRequests
	})); n > 0 {
		ch.failf("%d requests got neither 200 nor 429", n)
	}
	return ch
}

// checkRevocation disables a token through A's admin API and polls B and C.
func checkRevocation(c *cluster, tok token) *check {
	ch := newCheck("revocation: a token disabled through A is refused by B and C within 1 s")
	A, B, C := c.reps[0], c.reps[1], c.reps[2]
	for _, r := range c.reps { // cached everywhere
		if res := c.get(r, tok, userAgent("revoke", r)); res.status != http.StatusOK {
			ch.failf("replica %s before the PUT: %d %s %s", r.name, res.status, res.body, res.err)
			return ch
		}
	}
	time.Sleep(200 * time.Millisecond)
	putStart := time.Now()
	status, body, err := c.admin(A, "PUT", fmt.Sprintf("/api/api-tokens/%d", tok.id), []byte(`{"active":false}`))
	putDone := time.Now()
	if err != nil || status != http.StatusOK || !strings.Contains(string(body), `"active":false`) {
		ch.failf("PUT {\"active\":false} on A: %d %s %v", status, body, err)
		return ch
	}
	ch.logf("PUT {\"active\":false} on A answered 200 in %s", putDone.Sub(putStart).Round(100*time.Microsecond))
	if res := c.get(A, tok, userAgent("revoke", A)); res.status != http.StatusForbidden {
		ch.failf("A after its own PUT: %d %s", res.status, res.body)
	}

	// B and C, one after the other, for 2 s.
	var rs []result
	for time.Since(putDone) < 2*time.Second {
		for _, r := range []*replica{B, C} {
			rs = append(rs, c.get(r, tok, userAgent("revoke", r)))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, r := range []*replica{B, C} {
		mine := filter(rs, func(x result) bool { return x.replica == r })
		first := -1
		for i, x := range mine {
			if x.status == http.StatusForbidden && x.body == `{"error":"Token is disabled"}` {
				first = i
				break
			}
		}
		if first < 0 {
			ch.failf("%s never refused the token in 2 s: %s", r.name, statusCounts(mine))
			continue
		}
		delay := mine[first].recv.Sub(putDone)
		okAfter := len(filter(mine[first:], func(x result) bool { return x.status != http.StatusForbidden }))
		ch.logf("%s: %d requests after the PUT's answer allowed, refused with 403 Token is disabled within %s of it; %d requests in 2 s: %s",
			r.name, first, delay.Round(100*time.Microsecond), len(mine), statusCounts(mine))
		if delay > time.Second {
			ch.failf("%s refused the token only %s after the PUT", r.name, delay.Round(time.Millisecond))
		}
		if okAfter > 0 {
			ch.failf("%s answered %d requests with another status after refusing the token", r.name, okAfter)
		}
	}
	return ch
}

// checkPostgresFault cuts the replicas off PostgreSQL for 10 s in a 30 s
// load and waits for every answered request's usage row.
func checkPostgresFault(c *cluster, tok token) *check {
	const (
		dur    = 30 * time.Second
		cutAt  = 6 * time.Second
		cutFor = 10 * time.Second
	)
	ch := newCheck("PostgreSQL cut off for 10 s under load: cached tokens keep working, every usage event lands afterwards")
	for _, r := range c.reps { // cached everywhere
		if res := c.get(r, tok, userAgent("pg", r)); res.status != http.StatusOK {
			ch.failf("replica %s before the cut: %d %s %s", r.name, res.status, res.body, res.err)
			return ch
		}
	}
	done := make(chan *loadRun, 1)
	go func() {
		done <- c.runLoad(loadSpec{name: "pg", tok: tok, targets: c.reps, rate: 30, dur: dur, workers: 16})
	}()
	time.Sleep(cutAt)
	rowsBefore, err1 := c.usageRows(tok.id, "")
	refusedBefore := c.proxy.refused.Load()
	c.proxy.cut()
	cutStart := time.Now()
	time.Sleep(time.Second)
	rowsCut1, err2 := c.usageRows(tok.id, "")
	time.Sleep(time.Until(cutStart.Add(cutFor - 200*time.Millisecond)))
	rowsCutEnd, err3 := c.usageRows(tok.id, "")
	time.Sleep(time.Until(cutStart.Add(cutFor)))
	c.proxy.restore()
	cutEnd := time.Now()
	refused := c.proxy.refused.Load() - refusedBefore
	run := <-done
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			ch.failf("counting rows: %v", err)
		}
	}

	during := filter(run.results, func(r result) bool { return !r.sent.Before(cutStart) && r.recv.Before(cutEnd) })
	ch.logf("requests: %d sent (%d ticks skipped): %s; latency %s", len(run.results), run.skipped, statusCounts(run.results), latencies(run.results))
	ch.logf("while cut off (%s): %d requests: %s; per replica %s", cutEnd.Sub(cutStart).Round(time.Millisecond), len(during), statusCounts(during),
		perReplica(c.reps, during, func(r result) bool { return r.status == http.StatusOK }))
	ch.logf("usage rows: %d before the cut, %d one second into it, %d at its end (writes blocked); %d connection attempts refused by the proxy meanwhile",
		rowsBefore, rowsCut1, rowsCutEnd, refused)
	if bad := filter(run.results, func(r result) bool { return r.status != http.StatusOK }); len(bad) > 0 {
		ch.failf("%d requests were not answered 200 (%s): cached tokens must keep working", len(bad), statusCounts(bad))
	}
	if len(during) == 0 {
		ch.failf("no request was answered while PostgreSQL was cut off")
	}
	if rowsCut1 != rowsCutEnd {
		ch.failf("usage rows grew from %d to %d while PostgreSQL was cut off: the cut did not hold", rowsCut1, rowsCutEnd)
	}

	// Every answered request's row lands once PostgreSQL is back.
	want := c.tally.snapshot()[tok.id]
	var rows int
	var err error
	for {
		rows, err = c.usageRows(tok.id, "")
		if err != nil || rows >= want || time.Since(cutEnd) > 60*time.Second {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	ch.logf("events sent (answered requests, warm-up included): %d; usage rows stored: %d, %s after PostgreSQL came back (%s after the load ended)",
		want, rows, time.Since(cutEnd).Round(100*time.Millisecond), time.Since(run.end).Round(100*time.Millisecond))
	switch {
	case err != nil:
		ch.failf("counting rows: %v", err)
	case rows < want:
		ch.failf("%d usage rows 60 s after PostgreSQL came back, want %d: events were lost", rows, want)
	case rows > want:
		ch.failf("%d usage rows, want %d: events were written twice", rows, want)
	}
	return ch
}

// probe is six requests with a fresh token to A, B, C, A, B, C.
type probe struct {
	start, end time.Time
	remaining  []int
	statuses   []int
}

// shared reports whether the probe's requests were counted together: all
// allowed and X-RateLimit-Remaining going down across the replicas (by 5
// when counted in Redis; by 1 when each replica counts alone).
func (p probe) shared() bool {
	for i, s := range p.statuses {
		if s != http.StatusOK || p.remaining[i] < 0 || (i > 0 && p.remaining[i] > p.remaining[i-1]) {
			return false
		}
	}
	return p.remaining[0]-p.remaining[len(p.remaining)-1] >= 4
}

// checkRedisFault kills the harness's redis-server for 10 s in a 32 s load
// and restarts it, empty, on the same port.
//
// Beside the saturating load on tok (refused most of the time, so mostly
// refused from the replicas' local refusal caches without asking Redis), a
// light load on another token, never near its limit, asks Redis on every
// request, as a service's other clients would: the replicas notice the
// kill at once.
func checkRedisFault(c *cluster, tok, light token, probes []token) *check {
	const (
		dur     = 32 * time.Second
		killAt  = 6 * time.Second
		downFor = 10 * time.Second
	)
	share := tok.limit / len(c.reps)
	ch := newCheck(fmt.Sprintf("Redis killed for 10 s under load: fail-open at %d÷3 = %d per replica, exact again within 1 s of its return", tok.limit, share))
	done := make(chan *loadRun, 1)
	go func() {
		done <- c.runLoad(loadSpec{name: "redis", tok: tok, targets: c.reps, rate: 50, dur: dur, workers: 16})
	}()
	lightDone := make(chan *loadRun, 1)
	go func() {
		lightDone <- c.runLoad(loadSpec{name: "redis-light", tok: light, targets: c.reps, rate: 15, dur: dur, workers: 8})
	}()
	time.Sleep(killAt)
	c.redis.kill()
	killed := time.Now()
	time.Sleep(time.Until(killed.Add(downFor)))
	restart := time.Now()
	if err := c.redis.start(); err != nil {
		ch.failf("restarting redis-server: %v", err)
		<-done
		<-lightDone
		return ch
	}
	back := time.Now()

	// Probes with fresh tokens every 100 ms for 3 s.
	var ps []probe
	for i := 0; i < len(probes) && time.Since(back) < 3*time.Second; i++ {
		p := probe{start: time.Now()}
		for k := range 6 {
			r := c.reps[k%3]
			res := c.get(r, probes[i], userAgent("probe", r))
			p.statuses = append(p.statuses, res.status)
			p.remaining = append(p.remaining, res.remaining)
		}
		p.end = time.Now()
		ps = append(ps, p)
		time.Sleep(time.Until(p.start.Add(100 * time.Millisecond)))
	}
	run := <-done
	lightRun := <-lightDone

	ch.logf("requests: %d sent (%d ticks skipped): %s; latency %s", len(run.results), run.skipped, statusCounts(run.results), latencies(run.results))
	ch.logf("light load (limit %d, 15 requests/s): %d sent: %s; latency %s", light.limit, len(lightRun.results), statusCounts(lightRun.results), latencies(lightRun.results))
	if bad := filter(lightRun.results, func(r result) bool { return r.status != http.StatusOK }); len(bad) > 0 {
		ch.failf("%d requests of the light load were not answered 200 (%s)", len(bad), statusCounts(bad))
	}
	ch.logf("redis-server killed at +%s (%s), restarted at +%s, answering PING %s later (%s)",
		killed.Sub(run.start).Round(time.Millisecond), killed.UTC().Format("15:04:05.000"),
		restart.Sub(run.start).Round(time.Millisecond), back.Sub(restart).Round(time.Millisecond), back.UTC().Format("15:04:05.000"))
	for _, r := range c.reps {
		for _, l := range limiterLog(r, run.start, run.end) {
			ch.logf("  %s: %s", r.name, l)
		}
		ch.logf("  %s: %d go-redis \"failed to dial\" lines", r.name, countLines(r.errLog, "failed to dial"))
	}
	if bad := filter(run.results, func(r result) bool {
		return r.status != http.StatusOK && r.status != http.StatusTooManyRequests
	}); len(bad) > 0 {
		ch.failf("%d requests got neither 200 nor 429 (%s): fail-open must keep requests flowing", len(bad), statusCounts(bad))
	}

	// Before the kill: Redis decides.
	allowed := filter(run.results, func(r result) bool { return r.status == http.StatusOK })
	before := filter(allowed, func(r result) bool { return r.recv.Before(killed) })
	mostBefore, _ := maxInWindow(before, window, time.Time{})
	ch.logf("before the kill: most allowed in a %s window %d (limit %d)", window, mostBefore, tok.limit)
	if mostBefore > tok.limit {
		ch.failf("%d allowed in one window before the kill, limit %d", mostBefore, tok.limit)
	}

	// While Redis is down: each replica alone, at limit÷3.
	down := filter(run.results, func(r result) bool { return !r.sent.Before(killed) && r.recv.Before(restart) })
	ch.logf("while Redis was down: %d requests: %s; allowed per replica %s",
		len(down), statusCounts(down), perReplica(c.reps, down, func(r result) bool { return r.status == http.StatusOK }))
	for _, r := range c.reps {
		mine := filter(down, func(x result) bool { return x.replica == r && x.status == http.StatusOK })
		most, _ := maxInWindow(mine, window, time.Time{})
		ch.logf("  %s: most allowed in a %s window %d; want at most %d and at least %d", r.name, window, most, share, share-1)
		if most > share {
			ch.failf("%s allowed %d in one window while Redis was down, want at most %d", r.name, most, share)
		}
		if most < share-1 {
			ch.failf("%s allowed only %d in a window while Redis was down, want %d: requests must keep flowing", r.name, most, share)
		}
	}

	// Back: shared counts within 1 s, then no window above the limit.
	ok := len(ps)
	for i := len(ps) - 1; i >= 0 && ps[i].shared(); i-- {
		ok = i
	}
	ch.logf("probes (a fresh token of limit %d each, 6 requests to A, B, C, A, B, C, every 100 ms for 3 s): %d, %d of them before counts were shared again",
		probes[0].limit, len(ps), ok)
	if ok > 0 {
		ch.logf("  last probe not shared: +%s after Redis answered, remaining %v, statuses %v",
			ps[ok-1].start.Sub(back).Round(time.Millisecond), ps[ok-1].remaining, ps[ok-1].statuses)
	}
	switch {
	case ok == len(ps):
		ch.failf("no probe saw shared counts within 3 s of Redis answering again")
	default:
		recovered := ps[ok].end.Sub(back)
		ch.logf("  counts shared again %s after Redis answered (first shared probe ended then; remaining %v), and in every later probe",
			recovered.Round(time.Millisecond), ps[ok].remaining)
		if recovered > time.Second {
			ch.failf("counts were shared again only %s after Redis answered, want within 1 s", recovered.Round(time.Millisecond))
		}
		if len(ps)-ok < 5 {
			ch.failf("only %d probes after the recovery", len(ps)-ok)
		}
	}
	mostAfter, at := maxInWindow(allowed, window, back.Add(time.Second))
	ch.logf("from 1 s after Redis answered: most allowed in a %s window %d (the window from +%s after it); want at most %d",
		window, mostAfter, at.Sub(back).Round(time.Millisecond), tok.limit)
	if mostAfter > tok.limit {
		ch.failf("%d allowed in one window after Redis came back, limit %d", mostAfter, tok.limit)
	}
	return ch
}

// checkSIGTERM sends SIGTERM to replica C in an 8 s load while an admin
// request is in its handler.
func checkSIGTERM(c *cluster, tok token) *check {
	const (
		dur   = 8 * time.Second
		sigAt = 3 * time.Second
	)
	ch := newCheck("SIGTERM to C under load: the in-flight request is answered, every request C answered has its usage row")
	C := c.reps[2]
	done := make(chan *loadRun, 1)
	go func() {
		done <- c.runLoad(loadSpec{name: "sigterm", tok: tok, targets: c.reps, rate: 60, dur: dur, workers: 16})
	}()
	time.Sleep(sigAt - 500*time.Millisecond)

	// An admin request in C's handler when the signal comes: C has read its
	// headers and asked for the body (100 Continue).
	conn, br, body, err := startInFlight(C.host, c.secret)
	if err != nil {
		ch.failf("starting the in-flight request: %v", err)
		<-done
		return ch
	}
	defer conn.Close()

	time.Sleep(500 * time.Millisecond)
	if err := C.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		ch.failf("SIGTERM: %v", err)
	}
	sig := time.Now()
	// Once C has stopped accepting, finish the in-flight request.
	var stopped time.Time
	for time.Since(sig) < 10*time.Second {
		d, err := net.DialTimeout("tcp", C.host, time.Second)
		if err != nil {
			stopped = time.Now()
			break
		}
		d.Close()
		time.Sleep(5 * time.Millisecond)
	}
	if stopped.IsZero() {
		ch.failf("C still accepts connections 10 s after SIGTERM")
	}
	inflight := 0
	if _, err := io.WriteString(conn, body); err != nil {
		ch.failf("sending the in-flight request's body: %v", err)
	} else if resp, err := http.ReadResponse(br, nil); err != nil {
		ch.failf("the in-flight request got no answer: %v", err)
	} else {
		resp.Body.Close()
		inflight = resp.StatusCode
	}
	inflightDone := time.Now()

	var exitErr error
	select {
	case <-C.exited:
		exitErr = C.exitErr
	case <-time.After(30 * time.Second):
		ch.failf("C did not exit within 30 s of SIGTERM")
		_ = C.cmd.Process.Kill()
		<-C.exited
	}
	exited := time.Now()
	// C has exited: its rows are all written or never will be.
	rowsC, rowsErr := c.usageRows(tok.id, userAgent("sigterm", C))
	run := <-done

	ch.logf("requests: %d sent (%d ticks skipped): %s", len(run.results), run.skipped, statusCounts(run.results))
	ch.logf("SIGTERM to C at +%s; C stopped accepting %s later, answered the in-flight POST %d %s after the signal, exited (%v) %s after it",
		sig.Sub(run.start).Round(time.Millisecond), stopped.Sub(sig).Round(100*time.Microsecond), inflight,
		inflightDone.Sub(sig).Round(time.Millisecond), exitStatus(exitErr), exited.Sub(sig).Round(time.Millisecond))
	toC := filter(run.results, func(r result) bool { return r.replica == C })
	answered := filter(toC, func(r result) bool { return r.status != 0 && r.status != http.StatusServiceUnavailable })
	afterSig := filter(answered, func(r result) bool { return r.recv.After(sig) })
	ch.logf("requests to C: %d: %s; %d answered after the signal; %d not answered (sent after C stopped accepting)",
		len(toC), statusCounts(toC), len(afterSig), len(toC)-len(filter(toC, func(r result) bool { return r.status != 0 })))
	ch.logf("usage rows of C's requests once C had exited: %d; requests C answered: %d", rowsC, len(answered))
	if exitErr != nil {
		ch.failf("C exited with %v, want status 0", exitErr)
	}
	if inflight != http.StatusCreated {
		ch.failf("the in-flight request was answered %d, want 201", inflight)
	}
	if rowsErr != nil {
		ch.failf("counting rows: %v", rowsErr)
	} else if rowsC != len(answered) {
		ch.failf("%d usage rows of C's requests, want %d (one per answered request)", rowsC, len(answered))
	}
	if n := len(filter(answered, func(r result) bool { return r.status != http.StatusOK })); n > 0 {
		ch.failf("C answered %d requests with another status than 200", n)
	}
	if len(filter(toC, func(r result) bool { return r.sent.After(sig) })) == 0 {
		ch.failf("no request was sent to C after the signal: the load did not cover the shutdown")
	}

	// A and B go on: their rows land within a few flush intervals.
	for _, r := range c.reps[:2] {
		want := len(filter(run.results, func(x result) bool {
			return x.replica == r && x.status != 0 && x.status != http.StatusServiceUnavailable
		}))
		var rows int
		var err error
		deadline := time.Now().Add(15 * time.Second)
		for {
			rows, err = c.usageRows(tok.id, userAgent("sigterm", r))
			if err != nil || rows >= want || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		ch.logf("%s kept serving: %d requests answered, %d usage rows", r.name, want, rows)
		if err != nil || rows != want {
			ch.failf("%s: %d usage rows, want %d (%v)", r.name, rows, want, err)
		}
	}
	return ch
}

// startInFlight sends an admin POST's headers with Expect: 100-continue and
// waits for the server's 100 Continue: the handler is then running, waiting
// for the body, which the caller sends later.
func startInFlight(host, secret string) (net.Conn, *bufio.Reader, string, error) {
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return nil, nil, "", err
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	body := `{"name":"cluster - created during shutdown","rate_limit":0}`
	_, err = fmt.Fprintf(conn, "POST /api/api-tokens HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", host, secret, len(body))
	if err != nil {
		conn.Close()
		return nil, nil, "", err
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		conn.Close()
		return nil, nil, "", fmt.Errorf("want 100 Continue, got %q %v", line, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			conn.Close()
			return nil, nil, "", err
		}
		if line == "\r\n" {
			return conn, br, body, nil
		}
	}
}

func exitStatus(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

// checkAllUsage stops A and B with SIGTERM and compares every token's usage
// rows with the requests answered in the whole run.
func checkAllUsage(c *cluster, tokens []token) *check {
	ch := newCheck("usage after A and B stop (SIGTERM): every request answered in the whole run has its row")
	for _, r := range c.reps[:2] {
		begin := time.Now()
		err := r.stop(30 * time.Second)
		ch.logf("%s stopped (%s) in %s", r.name, exitStatus(err), time.Since(begin).Round(time.Millisecond))
		if err != nil {
			ch.failf("%s: %v", r.name, err)
		}
	}
	want := c.tally.snapshot()
	sent, stored := 0, 0
	var wrong []string
	for _, tok := range tokens {
		rows, err := c.usageRows(tok.id, "")
		if err != nil {
			ch.failf("counting rows: %v", err)
			return ch
		}
		sent += want[tok.id]
		stored += rows
		if rows != want[tok.id] {
			wrong = append(wrong, fmt.Sprintf("%s: %d rows for %d answered", tok.name, rows, want[tok.id]))
		}
	}
	ch.logf("%d tokens: %d answered requests (every status but 503), %d usage rows", len(tokens), sent, stored)
	if len(wrong) > 0 {
		ch.failf("%s", strings.Join(wrong, "; "))
	}
	return ch
}
