// Package e2e holds the dashboard's end-to-end test: it builds and runs
// examples/server, and drives the dashboard in headless Chromium with
// chromedp. It is a module of its own, so chromedp stays out of the
// library's module graph. Run it with `go test ./dashboard/e2e` from the
// repository root (through go.work); it skips when Chromium is not
// installed, unless the CI environment variable is set.
//
// Screenshots of the token list, a token's detail view and the overview at
// 1280×800 and 390×844 are written to $APITOKEN_ARTIFACTS/dashboard when
// that variable is set, else to testdata/screenshots (not committed).
package e2e
