package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

const adminSecret = "e2e-admin-secret-7Qm2xP"

var tokenRe = regexp.MustCompile(`^atk_[0-9A-Za-z]{49}$`)

// chromiumPath returns the Chromium to drive: $APITOKEN_CHROMIUM, or
// chromium / chromium-browser / google-chrome on $PATH. Without one the test
// skips, or fails when $CI is set (a skipped browser test must not look
// green in CI).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("APITOKEN_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found (install Debian's chromium package: apt-get install -y chromium, or set APITOKEN_CHROMIUM)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI is set, so this is a failure")
	}
	t.Skip(msg)
	return ""
}

// artifactDir is where screenshots go.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("testdata", "screenshots")
	if a := os.Getenv("APITOKEN_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "dashboard")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(dir, "failure.png")) // from an earlier run
	return dir
}

type demoServer struct {
	base      string // http://127.0.0.1:port
	dashboard string // the URL the server printed for the dashboard
	limited   string // the demo token allowed /products* at 5 per minute
}

// startServer builds examples/server and runs it on a free port.
func startServer(t *testing.T) demoServer {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go") // go test puts its GOROOT/bin first on PATH
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "server")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	// examples is its own module (with replace directives to this
	// checkout), so the build works with and without the go.work.
	build := exec.Command(goBin, append(args, "./server")...)
	build.Dir = filepath.Join(root, "examples")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building examples/server: %v\n%s", err, out)
	}

	cmd := exec.Command(bin)
	env := []string{"ADDR=127.0.0.1:0", "ADMIN_TOKEN=" + adminSecret}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "ADDR", "ADMIN_TOKEN", "DATABASE_URL", "DATABASE_SCHEMA", "REDIS_URL", "REPLICAS", "RATE_WINDOW", "REDIS_PREFIX":
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &syncWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("server stderr:\n%s", stderr.String())
		}
	})

	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var s demoServer
	tokRe := regexp.MustCompile(`atk_[0-9A-Za-z]{49}`)
	timeout := time.After(30 * time.Second)
	for s.base == "" || s.dashboard == "" || s.limited == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the server exited before it was ready: %v\n%s", <-done, stderr.String())
			}
			switch {
			case strings.HasPrefix(l, "apitoken demo listening on "):
				s.base = strings.TrimPrefix(l, "apitoken demo listening on ")
			case strings.HasPrefix(l, "Admin dashboard: "):
				s.dashboard, _, _ = strings.Cut(strings.TrimPrefix(l, "Admin dashboard: "), " ")
			case strings.Contains(l, "/products* at 5/minute:"):
				s.limited = tokRe.FindString(l)
			}
		case <-timeout:
			t.Fatalf("the server did not print its address, dashboard and tokens within 30 s\n%s", stderr.String())
		}
	}
	go func() {
		for range lines { // keep the pipe drained
		}
	}()
	return s
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// apiGet calls the demo API with token and returns the status and body.
func apiGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("User-Agent", "apitoken-e2e/1.0")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// adminCall calls the admin API with the admin secret and fails the test
// on an error status.
func adminCall(t *testing.T, base, method, path, body string) {
	t.Helper()
	req, err := http.NewRequest(method, base+"/api/api-tokens"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
}

// browser drives one tab of a headless Chromium.
type browser struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

func newBrowser(t *testing.T, execPath string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.WindowSize(1280, 800),
		// As the machine notes say: no network beyond localhost.
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-default-browser-check", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root otherwise
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx, dir: artifactDir(t)}
	// Start the browser, collect console messages, and record every
	// Content-Security-Policy violation the page sees.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("starting Chromium at %s: %v", execPath, err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.msgs = append(b.msgs, m)
			b.mu.Unlock()
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));`,
		})
		return err
	})); err != nil {
		t.Fatal(err)
	}
	return b
}

// do runs steps with a generous time limit (the machine is shared); on
// failure it saves a screenshot and fails the test.
func (b *browser) do(name string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(name, err)
	}
}

func (b *browser) fail(name string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if png, serr := chromedp.Run(ctx, chromedp.CaptureScreenshot()); serr == nil {
		_ = os.WriteFile(filepath.Join(b.dir, "failure.png"), png, 0o644)
	}
	b.t.Fatalf("%s: %v (screenshot: %s)", name, err, filepath.Join(b.dir, "failure.png"))
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, name, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail(name, err)
	}
	return v
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.fail("reading "+sel, err)
	}
	return s
}

func (b *browser) value(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.fail("reading "+sel, err)
	}
	return s
}

// setValue sets the value of the element sel matches, as typing would
// (with an input event). chromedp.SetValue cannot set "".
func setValue(sel, v string) chromedp.Action[chromedp.Void] {
	js, _ := json.Marshal([]string{sel, v})
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		ok, err := chromedp.Evaluate[bool](`((a) => { const e = document.querySelector(a[0]); if (!e) return false; e.value = a[1]; e.dispatchEvent(new Event('input', { bubbles: true })); return e.value === a[1]; })(`+string(js)+`)`)(ctx, tg)
		if err == nil && !ok {
			err = fmt.Errorf("could not set the value of %s", sel)
		}
		return err
	})
}

// waitFor polls a JavaScript condition until it is true.
func (b *browser) waitFor(name, cond string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(timeout))); err != nil {
		b.fail(name, err)
	}
}

// retryUntil runs action, then waits up to a few seconds for cond, and
// repeats until cond holds or timeout passes: for data that shows up
// asynchronously (usage events are written in batches every second).
func (b *browser) retryUntil(name string, action chromedp.Action[chromedp.Void], cond string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b.do(name, action)
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(3*time.Second)))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.fail(name, fmt.Errorf("condition %s still false after %s: %w", cond, timeout, err))
		}
	}
}

// noHorizontalScroll checks that nothing is wider than the viewport.
func (b *browser) noHorizontalScroll(name string) {
	b.t.Helper()
	if w := eval[string](b, "page width", `(() => { const d = document.documentElement; return d.scrollWidth > d.clientWidth ? d.scrollWidth + ' > ' + d.clientWidth : ''; })()`); w != "" {
		b.t.Errorf("%s: the page scrolls sideways (%s px)", name, w)
	}
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	// Let the charts' ResizeObserver draw at the new size first.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`, chromedp.EvalAwaitPromise)); err != nil {
		b.fail("screenshot "+name, err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	// And the whole page, for looking at what is below the fold.
	full, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		m, err := cdp.Call(ctx, tg, page.GetLayoutMetrics, cdp.Empty{})
		if err != nil {
			return nil, err
		}
		beyond := true
		r, err := cdp.Call(ctx, tg, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Clip:                  &page.Viewport{Width: m.CSSContentSize.Width, Height: m.CSSContentSize.Height, Scale: 1},
			CaptureBeyondViewport: &beyond,
		})
		if err != nil {
			return nil, err
		}
		return r.Data, nil
	})
	if err != nil {
		b.fail("full-page screenshot "+name, err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, name+"-full.png"), full, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (and %s-full.png)", path, name)
}

// overviewRequests reports whether urls (the admin API requests of one
// overview load) are exactly the overview, the count of all tokens and the
// active tokens expiring within about 7 days, with no per-token usage.
func overviewRequests(urls []string) bool {
	var overview, count, expiring int
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return false
		}
		q := u.Query()
		switch {
		case strings.HasSuffix(u.Path, "/stats/overview"):
			overview++
		case strings.HasSuffix(u.Path, "/api/api-tokens") && q.Get("limit") == "1" && len(q) == 1:
			count++
		case strings.HasSuffix(u.Path, "/api/api-tokens") && q.Get("status") == "active":
			before, err := time.Parse(time.RFC3339Nano, q.Get("expires_before"))
			if d := time.Until(before); err != nil || d < 6*24*time.Hour || d > 7*24*time.Hour {
				return false
			}
			expiring++
		default:
			return false // e.g. /{id}/usage
		}
	}
	return overview == 1 && count == 1 && expiring == 1
}

var (
	submit   = chromedp.CSS(`form button[type="submit"]`)
	desktop  = chromedp.EmulateViewport(1280, 800)
	mobile   = chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch)
	recentOK = `(() => { const t = document.querySelector('table.recent'); return !!t && [...t.querySelectorAll('tbody tr')].some((r) => r.textContent.includes('/products') && r.textContent.includes('200') && r.textContent.includes('apitoken-e2e')) && [...t.querySelectorAll('tbody tr')].some((r) => r.textContent.includes('403')); })()`
)

func TestDashboard(t *testing.T) {
	chromium := chromiumPath(t)
	began := time.Now()
	srv := startServer(t)
	t.Logf("examples/server built and started in %s: %s", time.Since(began).Round(time.Millisecond), srv.base)
	if want := srv.base + "/api/api-tokens/ui/"; srv.dashboard != want {
		t.Fatalf("the server printed the dashboard at %q, want %q", srv.dashboard, want)
	}
	// 429s for the overview's "at their rate limit" table: the demo token
	// allows 5 requests a minute, so of these 7 the last 2 are refused.
	for i := 0; i < 6; i++ {
		apiGet(t, srv.base+"/api/products", srv.limited)
	}
	if code, _ := apiGet(t, srv.base+"/api/products", srv.limited); code != http.StatusTooManyRequests {
		t.Fatalf("the rate-limited demo token got %d, want 429", code)
	}

	b := newBrowser(t, chromium)
	t.Logf("Chromium started after %s", time.Since(began).Round(time.Millisecond))

	// A wrong secret shows a clear message.
	b.do("open the dashboard", chromedp.Navigate(srv.dashboard), chromedp.WaitVisible(chromedp.ID("admin-secret")))
	b.do("sign in with a wrong secret",
		chromedp.SendKeys(chromedp.ID("admin-secret"), "not-the-secret"),
		chromedp.Click(submit),
		chromedp.WaitVisible(chromedp.ID("login-error")))
	if msg := b.text("#login-error"); !strings.Contains(msg, "Wrong admin secret") {
		t.Errorf("wrong secret message = %q", msg)
	}

	// Sign in: the secret goes to sessionStorage, never a cookie.
	b.do("sign in",
		setValue("#admin-secret", ""),
		chromedp.SendKeys(chromedp.ID("admin-secret"), adminSecret),
		chromedp.Click(submit),
		chromedp.WaitVisible(chromedp.CSS("table.tokens")))
	if !eval[bool](b, "session storage", `document.cookie === '' && sessionStorage.getItem('apitoken.dashboard.secret') === '`+adminSecret+`'`) {
		t.Error("the admin secret is not (only) in sessionStorage")
	}

	// Create: client-side validation first, then a token with every field.
	b.do("open the create form", chromedp.Click(chromedp.ID("new-token")), chromedp.WaitVisible(chromedp.ID("tf-name")))
	b.do("submit an empty form", chromedp.Click(submit), chromedp.WaitVisible(chromedp.ID("tf-name-error")))
	if msg := b.text("#tf-name-error"); !strings.Contains(msg, "Enter a name") {
		t.Errorf("empty name message = %q", msg)
	}
	b.do("submit a bad pattern",
		chromedp.SendKeys(chromedp.ID("tf-name"), "E2E token"),
		setValue("#tf-endpoints", "products*"),
		chromedp.Click(submit),
		chromedp.WaitVisible(chromedp.ID("tf-endpoints-error")))
	if msg := b.text("#tf-endpoints-error"); !strings.Contains(msg, `must start with "/"`) {
		t.Errorf("bad pattern message = %q", msg)
	}
	b.screenshot("create-errors-1280x800")
	expires := time.Now().UTC().AddDate(0, 0, 3).Format("2006-01-02")
	b.do("create a token",
		chromedp.SendKeys(chromedp.ID("tf-description"), "Created by the dashboard's end-to-end test"),
		chromedp.SendKeys(chromedp.ID("tf-rate-limit"), "50"),
		setValue("#tf-expires", expires),
		setValue("#tf-endpoints", "/products*\n/stores*"),
		chromedp.Click(submit),
		chromedp.WaitVisible(chromedp.ID("one-time-token")))
	plain := b.value("#one-time-token")
	if !tokenRe.MatchString(plain) {
		t.Fatalf("one-time token %q does not look like a token", plain)
	}
	if w := b.text(".secret .warning"); !strings.Contains(w, "it cannot be retrieved later") {
		t.Errorf("warning = %q, want the spec's", w)
	}
	b.screenshot("created-1280x800")

	// The value works against the demo API; /orders is outside its
	// allowed endpoints.
	if code, body := apiGet(t, srv.base+"/api/products", plain); code != http.StatusOK {
		t.Fatalf("GET /api/products with the new token: %d %s", code, body)
	}
	if code, _ := apiGet(t, srv.base+"/api/orders", plain); code != http.StatusForbidden {
		t.Fatalf("GET /api/orders with the new token: %d, want 403", code)
	}

	// Its detail view, where the value is never shown again.
	b.do("leave the one-time value", chromedp.Click(chromedp.ID("secret-done")), chromedp.WaitVisible(chromedp.ID("token-title")))
	if got := b.text("#token-title"); got != "E2E token" {
		t.Errorf("detail title = %q", got)
	}
	if eval[bool](b, "plaintext gone", `document.documentElement.outerHTML.includes('`+plain+`') || [...document.querySelectorAll('input, textarea')].some((e) => e.value.includes('`+plain+`'))`) {
		t.Error("the plaintext is still in the page after leaving the one-time panel")
	}
	id := eval[string](b, "token id", `location.hash.split('/')[2]`)
	b.retryUntil("see the requests in the detail view", chromedp.Click(chromedp.ID("refresh-usage")), recentOK, 30*time.Second)
	b.waitFor("chart drawn", `!!document.querySelector('svg.chart rect.ok') && !!document.querySelector('svg.chart rect.fail')`, 10*time.Second)
	b.screenshot("detail-1280x800")
	b.do("range 30 days", chromedp.Click(chromedp.CSS(`.section-head label[for$="-30"]`)))
	b.waitFor("30-day chart", `!!document.querySelector('svg.chart[aria-label*="30 days"] rect.ok') && location.hash.endsWith('days=30')`, 15*time.Second)
	b.screenshot("detail-30d-1280x800")
	b.do("range 7 days", chromedp.Click(chromedp.CSS(`.section-head label[for$="-7"]`)))
	b.waitFor("7-day chart", `!!document.querySelector('svg.chart[aria-label*="7 days"] rect.ok')`, 15*time.Second)

	// The overview: totals, top lists, the 429s, the expiring token.
	b.do("open the overview", chromedp.Click(chromedp.CSS(`#nav a[href="#/overview"]`)), chromedp.WaitVisible(chromedp.ID("limited-title")))
	// The 429 counts are the server's exact ones (rate_limited_tokens):
	// 2 refused of the demo token's 7 requests.
	b.retryUntil("overview data", chromedp.Reload(),
		`(() => { const l = document.querySelector('[aria-labelledby="limited-title"] table'); const e = document.querySelector('[aria-labelledby="expiring-title"] table');
		  if (!l || !e || !e.textContent.includes('E2E token')) return false;
		  const row = [...l.querySelectorAll('tbody tr')].find((r) => r.textContent.includes('Demo - products only'));
		  const cell = (label) => row?.querySelector('td[data-label="' + label + '"]')?.textContent;
		  return !!row && cell('Limit') === '5/min' && cell('Refused (429)') === '2' && cell('Requests') === '7'; })()`, 30*time.Second)
	// Three requests, none per token: the overview, the count of all
	// tokens, and the active tokens expiring within 7 days.
	if got := eval[[]string](b, "overview requests", `performance.getEntriesByType('resource').map((e) => e.name).filter((u) => u.includes('/api/api-tokens') && !u.includes('/ui/'))`); !overviewRequests(got) {
		t.Errorf("the overview fetched %q; want /stats/overview, one ?limit=1 and one ?status=active&expires_before=… request, and no per-token usage", got)
	}
	if eval[bool](b, "no lower-bound note", `document.body.textContent.includes('most recent requests')`) {
		t.Error("the overview still says its 429 counts come from recent requests")
	}
	b.screenshot("overview-1280x800")

	// The list, searched by name.
	b.do("open the list", chromedp.Click(chromedp.CSS(`#nav a[href="#/tokens"]`)), chromedp.WaitVisible(chromedp.CSS("table.tokens")))
	b.waitFor("list loaded", `document.querySelectorAll('table.tokens tbody tr').length === 3`, 15*time.Second)
	// The switch works from the keyboard and keeps the focus.
	const sw = `tr[data-id="1"] .switch`
	for _, state := range []struct{ checked, badge string }{{"false", "Disabled"}, {"true", "Active"}} {
		b.do("toggle with the keyboard", chromedp.SendKeys(chromedp.CSS(sw), " "))
		b.waitFor("toggled to "+state.badge, `(() => { const s = document.querySelector('`+sw+`');
			return s.getAttribute('aria-checked') === '`+state.checked+`' && document.querySelector('tr[data-id="1"] .badge').textContent === '`+state.badge+`' && document.activeElement === s; })()`, 15*time.Second)
	}
	b.screenshot("list-1280x800")
	b.do("search", chromedp.SendKeys(chromedp.ID("token-search"), "e2e"))
	b.waitFor("search applied", `document.querySelectorAll('table.tokens tbody tr').length === 1 && document.querySelector('table.tokens tbody').textContent.includes('E2E token')`, 15*time.Second)
	b.do("clear the search", setValue("#token-search", ""))

	// The same pages on a phone.
	b.do("phone viewport", mobile)
	b.waitFor("list loaded", `document.querySelectorAll('table.tokens tbody tr').length === 3`, 15*time.Second)
	b.noHorizontalScroll("list-390x844")
	b.screenshot("list-390x844")
	b.do("open the overview on a phone", chromedp.Click(chromedp.CSS(`#nav a[href="#/overview"]`)), chromedp.WaitVisible(chromedp.ID("limited-title")))
	b.waitFor("overview loaded", `!!document.querySelector('[aria-labelledby="limited-title"] table')`, 15*time.Second)
	b.noHorizontalScroll("overview-390x844")
	b.screenshot("overview-390x844")
	b.do("open the detail view on a phone", chromedp.Navigate(srv.dashboard+"#/tokens/"+id), chromedp.WaitVisible(chromedp.ID("token-title")))
	b.waitFor("detail loaded", recentOK, 15*time.Second)
	b.noHorizontalScroll("detail-390x844")
	b.screenshot("detail-390x844")
	b.do("desktop viewport", desktop)

	// Rotate: a new one-time value; the old secret stops at once.
	b.do("rotate", chromedp.Click(chromedp.ID("rotate-token")), chromedp.WaitVisible(chromedp.CSS("dialog[open]")),
		chromedp.Click(chromedp.CSS("dialog[open] .button.primary")), chromedp.WaitVisible(chromedp.ID("one-time-token")))
	rotated := b.value("#one-time-token")
	if !tokenRe.MatchString(rotated) || rotated == plain {
		t.Fatalf("rotated token %q: want a new token", rotated)
	}
	if code, _ := apiGet(t, srv.base+"/api/products", plain); code != http.StatusUnauthorized {
		t.Errorf("the old secret after rotation: %d, want 401", code)
	}
	if code, _ := apiGet(t, srv.base+"/api/products", rotated); code != http.StatusOK {
		t.Errorf("the rotated secret: %d, want 200", code)
	}
	b.do("leave the rotated value", chromedp.Click(chromedp.ID("secret-done")), chromedp.WaitNotPresent(chromedp.ID("one-time-token")))

	// Disable: the API refuses the token with 403.
	b.do("disable", chromedp.Click(chromedp.CSS(".detail-head .switch")))
	b.waitFor("disabled", `document.querySelector('.detail-head .switch')?.getAttribute('aria-checked') === 'false' && document.querySelector('.detail-head .badge')?.textContent === 'Disabled'`, 15*time.Second)
	if code, body := apiGet(t, srv.base+"/api/products", rotated); code != http.StatusForbidden || !strings.Contains(body, "Token is disabled") {
		t.Errorf("a disabled token: %d %s, want 403 Token is disabled", code, body)
	}
	b.waitFor("audit log", `(() => { const a = document.querySelector('table.audit'); return !!a && ['create', 'rotate', 'disable'].every((x) => a.textContent.includes(x)); })()`, 15*time.Second)

	// Delete, after confirming.
	b.do("delete", chromedp.Click(chromedp.ID("delete-token")), chromedp.WaitVisible(chromedp.CSS("dialog[open]")),
		chromedp.Click(chromedp.CSS("dialog[open] .button.danger")), chromedp.WaitVisible(chromedp.CSS("table.tokens")))
	b.waitFor("gone from the list", `document.querySelectorAll('table.tokens tbody tr').length === 2 && !document.querySelector('table.tokens').textContent.includes('E2E token')`, 15*time.Second)
	if code, _ := apiGet(t, srv.base+"/api/products", rotated); code != http.StatusUnauthorized {
		t.Errorf("a deleted token: %d, want 401", code)
	}

	// Paging and the status filter, over more tokens than a page holds.
	for i := 0; i < 22; i++ {
		adminCall(t, srv.base, http.MethodPost, "", fmt.Sprintf(`{"name":"Bulk %02d"}`, i))
	}
	soon := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
	adminCall(t, srv.base, http.MethodPost, "", `{"name":"Soon expired","expires_at":"`+soon+`"}`)
	adminCall(t, srv.base, http.MethodPatch, "/1", `{"active":false}`)
	b.do("reload the list", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("table.tokens")))
	b.waitFor("first page", `document.querySelector('.summary').textContent.includes('1–20 of 25') && document.querySelector('.pager').textContent.includes('Page 1 of 2')`, 15*time.Second)
	b.do("next page", chromedp.Click(chromedp.CSS(".pager button:last-of-type")))
	b.waitFor("second page", `document.querySelectorAll('table.tokens tbody tr').length === 5 && document.querySelector('.pager').textContent.includes('Page 2 of 2') && location.hash.includes('page=2')`, 15*time.Second)
	b.do("filter disabled", chromedp.SetValue(chromedp.ID("token-status"), "disabled"))
	b.waitFor("disabled only", `(() => { const rows = document.querySelectorAll('table.tokens tbody tr'); return rows.length === 1 && rows[0].textContent.includes('Demo - all endpoints') && rows[0].textContent.includes('Disabled'); })()`, 15*time.Second)
	b.retryUntil("filter expired", chromedp.SetValue(chromedp.ID("token-status"), "expired"),
		`(() => { const rows = document.querySelectorAll('table.tokens tbody tr'); return rows.length === 1 && rows[0].textContent.includes('Soon expired') && rows[0].textContent.includes('Expired') && location.hash.includes('status=expired'); })()`, 20*time.Second)
	// The server filters and pages: one page of 20 per request, never every
	// token.
	lists := eval[[]string](b, "list requests", `performance.getEntriesByType('resource').map((e) => e.name).filter((u) => /\/api\/api-tokens\/?\?/.test(u))`)
	var sawExpired bool
	for _, u := range lists {
		sawExpired = sawExpired || strings.Contains(u, "status=expired") && strings.Contains(u, "limit=20")
		if strings.Contains(u, "limit=100") || strings.Contains(u, "active=true") {
			t.Errorf("the list fetched %s: want the server's status filter and paging", u)
		}
	}
	if !sawExpired {
		t.Errorf("no GET /?status=expired&limit=20 among the list's requests %q", lists)
	}
	b.do("filter active", chromedp.SetValue(chromedp.ID("token-status"), "active"))
	b.waitFor("active only, paged by the server", `document.querySelector('.summary').textContent.includes('1–20 of 23') && document.querySelector('.pager').textContent.includes('Page 1 of 2')`, 15*time.Second)

	// The form's validation accepts what the server accepts.
	checkValidationParity(t, b, srv.base)

	// Sign out forgets the secret.
	b.do("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("admin-secret")))
	if eval[bool](b, "secret forgotten", `sessionStorage.getItem('apitoken.dashboard.secret') !== null`) {
		t.Error("sign out left the secret in sessionStorage")
	}

	// Nothing broke the Content-Security-Policy, threw, or logged an error
	// (the refused requests' network errors aside).
	if v := eval[[]string](b, "CSP violations", `window.__cspViolations || []`); len(v) > 0 {
		t.Errorf("Content-Security-Policy violations: %q", v)
	}
	b.mu.Lock()
	for _, m := range b.msgs {
		if m.IsException() || ((m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning) && m.Source != "network") {
			t.Errorf("browser console: %s (%s)", m, m.Source)
		}
	}
	b.mu.Unlock()
	t.Logf("end-to-end run took %s", time.Since(began).Round(time.Millisecond))
}
