package apitoken

import (
	"time"
)

// The report types below have the JSON shapes of the spec's analytics
// endpoints. Response times are milliseconds, rounded to 0.01 ms; a request
// is successful when its status code is below 400.

// TokenUsage is the spec's GET /api/api-tokens/:id/usage body.
type TokenUsage struct {
	HourlyUsage    []HourlyUsage   `json:"hourly_usage"`
	EndpointUsage  []EndpointUsage `json:"endpoint_usage"`
	RecentRequests []RecentRequest `json:"recent_requests"`
}

// HourlyUsage is one hour of one token's requests.
type HourlyUsage struct {
	Hour               time.Time `json:"hour"`
	Requests           int64     `json:"requests"`
	AvgResponseTime    float64   `json:"avg_response_time"`
	SuccessfulRequests int64     `json:"successful_requests"`
	FailedRequests     int64     `json:"failed_requests"`
}

// EndpointUsage is the requests to one endpoint (the router's route pattern
// when it was known, otherwise the path) and method.
type EndpointUsage struct {
	Endpoint        string  `json:"endpoint"`
	Method          string  `json:"method"`
	Requests        int64   `json:"requests"`
	AvgResponseTime float64 `json:"avg_response_time"`
}

// RecentRequest is one recorded request.
type RecentRequest struct {
	Endpoint       string    `json:"endpoint"`
	Method         string    `json:"method"`
	StatusCode     int       `json:"status_code"`
	ResponseTimeMS float64   `json:"response_time_ms"`
	IPAddress      string    `json:"ip_address"`
	UserAgent      string    `json:"user_agent"`
	CreatedAt      time.Time `json:"created_at"`
}

// Overview is the spec's GET /api/api-tokens/stats/overview body, with
// RateLimitedTokens added.
type Overview struct {
	Overview     OverviewTotals  `json:"overview"`
	TopTokens    []TopToken      `json:"top_tokens"`
	TopEndpoints []EndpointUsage `json:"top_endpoints"`
	// RateLimitedTokens are the tokens that were answered 429 Too Many
	// Requests at least once in the range, most 429s first (ties by token
	// id), at most Query.Limit of them. Counted exactly, from per-token
	// hourly rollups.
	RateLimitedTokens []RateLimitedToken `json:"rate_limited_tokens"`
}

// OverviewTotals sums every token's requests in the range.
type OverviewTotals struct {
	ActiveTokens       int64   `json:"active_tokens"`
	TotalRequests      int64   `json:"total_requests"`
	AvgResponseTime    float64 `json:"avg_response_time"`
	SuccessfulRequests int64   `json:"successful_requests"`
	FailedRequests     int64   `json:"failed_requests"`
}

// TopToken is one of the busiest tokens in the range.
type TopToken struct {
	ID              int64   `json:"id"`
	Name            string  `json:"name"`
	Requests        int64   `json:"requests"`
	AvgResponseTime float64 `json:"avg_response_time"`
	// RateLimitedRequests counts the token's requests in the range that
	// were answered 429 (included in Requests).
	RateLimitedRequests int64 `json:"rate_limited_requests"`
}

// RateLimitedToken is a token some of whose requests in the range were
// answered 429 Too Many Requests: refused by its rate limit (or answered
// 429 by the handler behind the middleware).
type RateLimitedToken struct {
	TokenID int64  `json:"token_id"`
	Name    string `json:"name"`
	// RateLimit is the token's rate limit now, in requests per minute
	// (0 = unlimited); it may have changed during the range.
	RateLimit int `json:"rate_limit"`
	// RateLimitedRequests counts its 429 responses in the range.
	RateLimitedRequests int64 `json:"rate_limited_requests"`
	// Requests counts all its requests in the range, the 429s included.
	Requests int64 `json:"requests"`
}

// TokenStats are the counts the spec's token list shows beside each token.
type TokenStats struct {
	Requests24h   int64 `json:"requests_24h"`
	Requests7d    int64 `json:"requests_7d"`
	TotalRequests int64 `json:"total_requests"`
}

// minDays and maxDays bound the days parameter of the analytics methods.
const (
	minDays = 1
	maxDays = 90
)

// daysQuery returns the Query for the last days days before now, checking
// days is within minDays..maxDays.
func daysQuery(days int, now time.Time) (Query, error) {
	if days < minDays || days > maxDays {
		return Query{}, &ValidationError{Field: "days", Message: "must be between 1 and 90"}
	}
	now = now.UTC()
	return Query{From: now.Add(-time.Duration(days) * 24 * time.Hour), To: now.Add(time.Nanosecond)}, nil
}
