package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LoadResult is one load run against one server.
type LoadResult struct {
	Requests  int64
	Errors    int64 // transport errors and non-200 answers
	PerSecond float64
	P50, P99  time.Duration
	Tool      string // "wrk" or "go"
	Report    string // wrk's own report; "" from the Go generator
}

// Serve starts h on a free loopback port and returns its base URL and a
// function that stops it.
func Serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// EnsureWrk installs Debian's wrk with apt-get when it is missing and the
// process may (root, apt-get present), and reports whether wrk is on PATH.
func EnsureWrk(ctx context.Context) bool {
	if _, err := exec.LookPath("wrk"); err == nil {
		return true
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		return false
	}
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-qq", "wrk")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if err := cmd.Run(); err != nil {
		return false
	}
	_, err := exec.LookPath("wrk")
	return err == nil
}

// Load drives url with connections keep-alive connections for d: with wrk
// (2 threads) when it is on PATH, else with a Go generator.
func Load(ctx context.Context, url, authorization string, connections int, d time.Duration) (LoadResult, error) {
	if path, err := exec.LookPath("wrk"); err == nil {
		return loadWrk(ctx, path, url, authorization, connections, d)
	}
	return loadGo(ctx, url, authorization, connections, d)
}

var (
	wrkRate    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkTotal   = regexp.MustCompile(`(\d+) requests in`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
)

func loadWrk(ctx context.Context, wrk, url, authorization string, connections int, d time.Duration) (LoadResult, error) {
	args := []string{"-t2", "-c" + strconv.Itoa(connections), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	if authorization != "" {
		args = append(args, "-H", "Authorization: "+authorization)
	}
	args = append(args, "-H", "User-Agent: apitoken-bench", url+Path)
	out, err := exec.CommandContext(ctx, wrk, args...).CombinedOutput()
	if err != nil {
		return LoadResult{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	return parseWrk(string(out))
}

// parseWrk reads the output of wrk --latency.
func parseWrk(s string) (LoadResult, error) {
	r := LoadResult{Tool: "wrk", Report: s}
	m := wrkRate.FindStringSubmatch(s)
	if m == nil {
		return LoadResult{}, fmt.Errorf("wrk: no Requests/sec in %q", s)
	}
	r.PerSecond, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkTotal.FindStringSubmatch(s); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkNon2xx.FindStringSubmatch(s); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.Errors += n
	}
	if m := wrkSockErr.FindStringSubmatch(s); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			r.Errors += n
		}
	}
	for _, m := range wrkPct.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		dur := time.Duration(v * float64(unit))
		if m[1] == "50" {
			r.P50 = dur
		} else {
			r.P99 = dur
		}
	}
	if r.P50 == 0 || r.P99 == 0 {
		return LoadResult{}, fmt.Errorf("wrk: no latency distribution (run with --latency) in %q", s)
	}
	return r, nil
}

// loadGo is the fallback generator: connections goroutines, each with its
// own keep-alive connection, sending requests back to back.
func loadGo(ctx context.Context, url, authorization string, connections int, d time.Duration) (LoadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu   sync.Mutex
		lats []time.Duration
		errs int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			var mine []time.Duration
			var bad int64
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", url+Path, nil)
				req.Header.Set("User-Agent", "apitoken-bench")
				if authorization != "" {
					req.Header.Set("Authorization", authorization)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						bad++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mine = append(mine, time.Since(t0))
				if resp.StatusCode != http.StatusOK {
					bad++
				}
			}
			mu.Lock()
			lats = append(lats, mine...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(lats) == 0 {
		return LoadResult{}, errors.New("go load generator: no request completed")
	}
	slices.Sort(lats)
	return LoadResult{
		Requests:  int64(len(lats)),
		Errors:    errs,
		PerSecond: float64(len(lats)) / elapsed.Seconds(),
		P50:       lats[len(lats)/2],
		P99:       lats[len(lats)*99/100],
		Tool:      "go",
	}, nil
}

// FormatDuration prints d in µs or ms with three significant digits.
func FormatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 0, 64) + " µs"
	default:
		return strings.TrimSuffix(strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64), "0") + " ms"
	}
}
