// Package testhttp holds the request helper the repository's HTTP tests
// share.
package testhttp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
)

// Do serves one request to h and returns the recorded response. A non-empty
// bearer is sent as "Authorization: Bearer <bearer>"; a non-empty body as
// JSON.
func Do(h http.Handler, method, path, bearer, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
