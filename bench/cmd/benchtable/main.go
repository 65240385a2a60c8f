// Command benchtable runs the benchmark suite of bench/ and prints one table
// of figures and ratios measured in the same run:
//
//	go run ./bench/cmd/benchtable          # the full suite (about 5 minutes)
//	go run ./bench/cmd/benchtable -short   # every contender briefly (CI)
//
// PostgreSQL (APITOKEN_TEST_POSTGRES_DSN) enables the naive baseline and the
// database cost; Redis (APITOKEN_TEST_REDIS_ADDR) the apitoken-redis
// contender. Raw outputs and the table go to bench/out/. See bench/README.md.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apitoken/apitoken/bench"
)

type options struct {
	short       bool
	count       int
	benchtime   string
	loopFor     time.Duration
	rounds      int
	connections int
	dbRequests  int
	analytics   string
	out         string
}

func main() {
	var o options
	flag.BoolVar(&o.short, "short", false, "run every part briefly (the CI smoke run)")
	flag.IntVar(&o.count, "count", 10, "in-process: runs of each contender, alternating")
	flag.StringVar(&o.benchtime, "benchtime", "1s", "in-process: -benchtime of each run")
	flag.DurationVar(&o.loopFor, "loop", 10*time.Second, "loopback: duration of each load run")
	flag.IntVar(&o.rounds, "rounds", 2, "loopback: rounds over all contenders, alternating")
	flag.IntVar(&o.connections, "connections", 64, "loopback: concurrent connections")
	flag.IntVar(&o.dbRequests, "db-requests", 1000, "database cost: requests per contender")
	flag.StringVar(&o.analytics, "analytics", "", "comma-separated usage row counts for the analytics scale run (e.g. 1000000,10000000,50000000); seeded once, reused")
	flag.StringVar(&o.out, "out", "bench/out", "directory for raw outputs and the table")
	flag.Parse()
	if o.short {
		o.count, o.benchtime, o.loopFor, o.rounds, o.dbRequests = 1, "2000x", time.Second, 1, 200
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

// sample is one benchmark result line.
type sample struct {
	name    string
	metrics map[string]float64 // unit -> value: ns/op, B/op, allocs/op, custom units
}

// parseBench reads `go test -bench` output.
func parseBench(out []byte) []sample {
	var res []sample
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		s := sample{name: name, metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			s.metrics[f[i+1]] = v
		}
		res = append(res, s)
	}
	return res
}

// medians returns, per benchmark name, the median of each metric.
func medians(samples []sample) map[string]map[string]float64 {
	all := map[string]map[string][]float64{}
	for _, s := range samples {
		if all[s.name] == nil {
			all[s.name] = map[string][]float64{}
		}
		for u, v := range s.metrics {
			all[s.name][u] = append(all[s.name][u], v)
		}
	}
	out := map[string]map[string]float64{}
	for name, units := range all {
		out[name] = map[string]float64{}
		for u, vs := range units {
			slices.Sort(vs)
			m := vs[len(vs)/2]
			if len(vs)%2 == 0 {
				m = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
			}
			out[name][u] = m
		}
	}
	return out
}

func goTest(ctx context.Context, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"test", "-run", "^$"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("go test %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out, nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

// report collects the table's lines and the target checks.
type report struct {
	w      io.Writer
	checks []string
	failed int
}

func (r *report) printf(format string, args ...any) { fmt.Fprintf(r.w, format, args...) }

func (r *report) check(ok bool, format string, args ...any) {
	mark := "met"
	if !ok {
		mark = "MISSED"
		r.failed++
	}
	r.checks = append(r.checks, fmt.Sprintf("- %s: %s", mark, fmt.Sprintf(format, args...)))
}

func run(ctx context.Context, o options) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	var table bytes.Buffer
	r := &report{w: io.MultiWriter(os.Stdout, &table)}
	dsn, redisAddr := os.Getenv("APITOKEN_TEST_POSTGRES_DSN"), os.Getenv("APITOKEN_TEST_REDIS_ADDR")
	mode := "full"
	if o.short {
		mode = "short (smoke)"
	}
	r.printf("# apitoken benchmark suite\n\n%s, %d CPUs, %s, Go %s, %s run.\n",
		cpuModel(), runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"), runtime.Version()[2:], mode)
	if dsn == "" {
		r.printf("APITOKEN_TEST_POSTGRES_DSN unset: no naive baseline, no database cost.\n")
	}
	if redisAddr == "" {
		r.printf("APITOKEN_TEST_REDIS_ADDR unset: no apitoken-redis contender.\n")
	}

	// 1. In-process.
	fmt.Fprintln(os.Stderr, "benchtable: in-process contenders")
	out, err := goTest(ctx, nil, "-bench", "^BenchmarkContenders$", "-benchmem", "-count", strconv.Itoa(o.count),
		"-benchtime", o.benchtime, "./bench")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "inprocess.txt"), out, 0o644); err != nil {
		return err
	}
	in := medians(parseBench(out))
	get := func(name, unit string) float64 { return in["BenchmarkContenders/"+name][unit] }
	bareNs, bareAllocs := get("bare", "ns/op"), get("bare", "allocs/op")
	r.printf("\n## In-process (go test -bench, median of %d alternating runs)\n\n", o.count)
	r.printf("| contender | ns/op | overhead ns | B/op | allocs/op | allocs over bare | overhead ÷ httprate's |\n|---|---:|---:|---:|---:|---:|---:|\n")
	httprateOver := get("httprate", "ns/op") - bareNs
	for _, name := range []string{"bare", "apitoken", "apitoken-redis", "httprate", "naive"} {
		m, ok := in["BenchmarkContenders/"+name]
		if !ok {
			continue
		}
		over := m["ns/op"] - bareNs
		ratio := "-"
		if name != "bare" && httprateOver > 0 {
			ratio = fmt.Sprintf("%.2f×", over/httprateOver)
		}
		r.printf("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %s |\n", name, m["ns/op"], over, m["B/op"], m["allocs/op"], m["allocs/op"]-bareAllocs, ratio)
	}
	apiOver := get("apitoken", "ns/op") - bareNs
	r.check(apiOver <= 1.2*httprateOver, "middleware overhead %.0f ns is %.2f× httprate's %.0f ns (target ≤ 1.2×)", apiOver, apiOver/httprateOver, httprateOver)
	r.check(get("apitoken", "allocs/op")-bareAllocs <= 4, "%.0f allocations per request over the bare handler (target ≤ 4)", get("apitoken", "allocs/op")-bareAllocs)

	// 2. Loopback.
	fmt.Fprintln(os.Stderr, "benchtable: loopback load")
	if !bench.EnsureWrk(ctx) {
		fmt.Fprintln(os.Stderr, "benchtable: wrk is missing and could not be installed; using the Go load generator")
	}
	cs, err := bench.Contenders(ctx, bench.Config{PostgresDSN: dsn, RedisAddr: redisAddr})
	if err != nil {
		return err
	}
	type loop struct {
		rps, p50, p99 []float64
		errors        int64
		tool          string
	}
	loops := map[string]*loop{}
	for round := 0; round < o.rounds; round++ {
		for _, c := range cs {
			url, stop, err := bench.Serve(c.Handler)
			if err != nil {
				return err
			}
			res, err := bench.Load(ctx, url, c.Authorization, o.connections, o.loopFor)
			stop()
			if err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
			if res.Report != "" {
				// Kept for a look at what the table sums up (errors by kind, latency spread).
				name := filepath.Join(o.out, fmt.Sprintf("loopback-%s-%d.txt", c.Name, round+1))
				if err := os.WriteFile(name, []byte(res.Report), 0o644); err != nil {
					return err
				}
			}
			l := loops[c.Name]
			if l == nil {
				l = &loop{}
				loops[c.Name] = l
			}
			l.rps = append(l.rps, res.PerSecond)
			l.p50 = append(l.p50, float64(res.P50))
			l.p99 = append(l.p99, float64(res.P99))
			l.errors += res.Errors
			l.tool = res.Tool
		}
	}
	for _, c := range cs {
		c.Close()
	}
	mean := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	tool := loops["bare"].tool
	r.printf("\n## Over loopback (%s, 2 threads, %d connections, %s per run, %d alternating rounds; mean of rounds)\n\n",
		tool, o.connections, o.loopFor, o.rounds)
	r.printf("| contender | requests/s | ÷ bare | p50 | p99 | errors |\n|---|---:|---:|---:|---:|---:|\n")
	bareRPS := mean(loops["bare"].rps)
	for _, c := range cs {
		l := loops[c.Name]
		r.printf("| %s | %.0f | %.2f | %s | %s | %d |\n", c.Name, mean(l.rps), mean(l.rps)/bareRPS,
			bench.FormatDuration(time.Duration(mean(l.p50))), bench.FormatDuration(time.Duration(mean(l.p99))), l.errors)
	}
	apiRPS := mean(loops["apitoken"].rps)
	r.check(apiRPS >= 0.85*bareRPS, "loopback throughput %.0f/s is %.2f× the bare server (target ≥ 0.85×)", apiRPS, apiRPS/bareRPS)
	hrRPS := mean(loops["httprate"].rps)
	r.check(apiRPS >= hrRPS, "loopback throughput is %.2f× httprate's %.0f/s (target ≥ 1.0×)", apiRPS/hrRPS, hrRPS)
	if l, ok := loops["naive"]; ok {
		nRPS := mean(l.rps)
		r.check(apiRPS >= 20*nRPS, "loopback throughput is %.1f× the naive baseline's %.0f/s (target ≥ 20×)", apiRPS/nRPS, nRPS)
	}

	// 3. Database cost.
	if dsn != "" {
		fmt.Fprintln(os.Stderr, "benchtable: database cost")
		a, n, err := bench.MeasureDBCost(ctx, dsn, o.dbRequests)
		if err != nil {
			return err
		}
		per := func(v int64, reqs int) float64 { return float64(v) * 1000 / float64(reqs) }
		r.printf("\n## Database cost per 1,000 requests (%d requests each, one token, served one after another)\n\n", o.dbRequests)
		r.printf("| contender | statements | rows written | time |\n|---|---:|---:|---:|\n")
		r.printf("| apitoken (store/postgres) | %.1f | %.1f | %s |\n", per(a.Statements, a.Requests), per(a.Rows, a.Requests), a.Elapsed.Round(time.Millisecond))
		r.printf("| naive | %.1f | %.1f | %s |\n", per(n.Statements, n.Requests), per(n.Rows, n.Requests), n.Elapsed.Round(time.Millisecond))
		ratio := float64(a.Statements) / float64(n.Statements)
		r.check(ratio <= 0.01, "database statements per request are 1/%.0f of the naive baseline's (target ≤ 1/100)", 1/ratio)
	}

	// 4. Scale.
	fmt.Fprintln(os.Stderr, "benchtable: scale")
	var env []string
	if o.short {
		env = append(env, "APITOKEN_BENCH_SCALE=10000")
	}
	out, err = goTest(ctx, env, "-bench", "^BenchmarkScale$", "-benchmem", "-count", "1", "-benchtime", o.benchtime, "./bench")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "scale.txt"), out, 0o644); err != nil {
		return err
	}
	sc := medians(parseBench(out))
	var sizes []int
	for name := range sc {
		if _, n, ok := strings.Cut(name, "verify/tokens="); ok {
			v, _ := strconv.Atoi(n)
			sizes = append(sizes, v)
		}
	}
	sort.Ints(sizes)
	r.printf("\n## Scale (memory store, every token cached)\n\n")
	r.printf("Verify and the middleware with requests cycling through all the tokens (the working set is the whole\ncache); Verify again with requests from 1,000 tokens spread over the store (the store's size alone).\n\n")
	r.printf("| tokens | Verify ns/op, all tokens | Verify ns/op, 1,000 of them | middleware ns/op, all tokens | bytes per cached token | bytes per limiter key |\n|---:|---:|---:|---:|---:|---:|\n")
	verify := func(kind string, n int) float64 {
		return sc[fmt.Sprintf("BenchmarkScale/%s/tokens=%d", kind, n)]["ns/op"]
	}
	for _, n := range sizes {
		v, mw := sc[fmt.Sprintf("BenchmarkScale/verify/tokens=%d", n)], sc[fmt.Sprintf("BenchmarkScale/middleware/tokens=%d", n)]
		r.printf("| %d | %.0f | %.0f | %.0f | %.0f | %.0f |\n", n, v["ns/op"], verify("verify-hot", n), mw["ns/op"], v["B/cached-token"], mw["B/limiter-key"])
	}
	if len(sizes) >= 2 {
		lo, hi := sizes[0], sizes[len(sizes)-1]
		r.check(verify("verify-hot", hi) < 2*verify("verify-hot", lo), "Verify grows %.2f× from %d to %d tokens in the store, requests from 1,000 of them (target < 2×)",
			verify("verify-hot", hi)/verify("verify-hot", lo), lo, hi)
		r.check(verify("verify", hi) < 2*verify("verify", lo), "Verify grows %.2f× from %d to %d tokens, requests cycling through all of them (target < 2×)",
			verify("verify", hi)/verify("verify", lo), lo, hi)
	}

	// 5. Analytics at scale (opt-in: seeding 50 million rows takes a while).
	if o.analytics != "" && dsn != "" {
		r.printf("\n## Analytics on PostgreSQL (store/postgres BenchmarkAnalyticsLarge: rollups vs the same reports from raw rows)\n\n")
		r.printf("| usage rows | TokenUsage 7d | Overview 7d | TokenUsage 7d from raw rows | Overview 7d from raw rows |\n|---:|---:|---:|---:|---:|\n")
		for _, rows := range strings.Split(o.analytics, ",") {
			fmt.Fprintf(os.Stderr, "benchtable: analytics with %s rows (seeded once)\n", rows)
			out, err := goTest(ctx, []string{"APITOKEN_BENCH_ROWS=" + rows}, "-bench", "AnalyticsLarge", "-benchtime", "5x",
				"-timeout", "120m", "./store/postgres")
			if err != nil {
				return err
			}
			_ = os.WriteFile(filepath.Join(o.out, "analytics_"+rows+".txt"), out, 0o644)
			am := medians(parseBench(out))
			ms := func(name string) string {
				v, ok := am["BenchmarkAnalyticsLarge/"+name]["ns/op"]
				if !ok {
					return "-"
				}
				return fmt.Sprintf("%.1f ms", v/1e6)
			}
			r.printf("| %s | %s | %s | %s | %s |\n", rows, ms("TokenUsage7d/rollup"), ms("Overview7d/rollup"), ms("TokenUsage7d/raw"), ms("Overview7d/raw"))
		}
	}

	r.printf("\n## Targets\n\n%s\n", strings.Join(r.checks, "\n"))
	if o.short {
		r.printf("\nA short run measures too briefly to judge the targets (its database cost also spreads one batch over\n200 requests instead of 1,000); run the full suite for that.\n")
	}
	if err := os.WriteFile(filepath.Join(o.out, "results.md"), table.Bytes(), 0o644); err != nil {
		return err
	}
	if math.IsNaN(apiOver) {
		return fmt.Errorf("no in-process figures")
	}
	return nil
}
