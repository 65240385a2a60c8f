#!/usr/bin/env bash
# Smoke test: runs the curl examples of the API token management spec against
# examples/server and checks that the answers have the spec's status codes,
# field names and messages.
#
#	bash examples/server/smoke.sh
#
# The server is built once, started on a free 127.0.0.1 port with the memory
# store (DATABASE_URL is unset for the run) and killed on exit. Responses are
# checked with jq when it is installed, else with python3. One line per check
# (`ok   <name>` / `FAIL <name>: <why>`), then `N passed, M failed`; the exit
# status is 1 when a check failed. It takes about 10 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"

for tool in curl go; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "smoke: $tool is needed" >&2
		exit 1
	fi
done
# SMOKE_JSON_TOOL=python3 checks with python3 even when jq is installed.
if [ -n "${SMOKE_JSON_TOOL-}" ]; then
	json_tool=$SMOKE_JSON_TOOL
elif command -v jq >/dev/null 2>&1; then
	json_tool=jq
elif command -v python3 >/dev/null 2>&1; then
	json_tool=python3
else
	echo "smoke: jq or python3 is needed" >&2
	exit 1
fi

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the server ------------------------------------------------------------

admin_secret="smoke-admin-$RANDOM$RANDOM$RANDOM"
go build -o "$tmp/server" ./examples/server

# ADDR=127.0.0.1:0 lets the kernel pick a free port; the server prints it.
env -u DATABASE_URL ADDR=127.0.0.1:0 ADMIN_TOKEN="$admin_secret" \
	"$tmp/server" >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!

base=""
for _ in $(seq 1 100); do
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "smoke: the server exited:" >&2
		cat "$tmp/server.err" >&2
		exit 1
	fi
	if [ -z "$base" ]; then
		base="$(sed -n 's|^apitoken demo listening on \(http://[0-9.:]*\)$|\1|p' "$tmp/server.out" | head -n 1)"
	fi
	if [ -n "$base" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/healthz" || true)" = 200 ]; then
		break
	fi
	sleep 0.1
done
if [ -z "$base" ] || [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/healthz" || true)" != 200 ]; then
	echo "smoke: the server did not answer /healthz within 10 s" >&2
	cat "$tmp/server.err" >&2
	exit 1
fi
echo "smoke: examples/server at $base (JSON checked with $json_tool)"

# ---- requests ----------------------------------------------------------------

# request METHOD URL_PATH AUTH [BODY]: the response body goes to $tmp/body,
# its headers to $tmp/headers and its status code to $status. AUTH is the
# whole Authorization header value, or "" for none.
status=""
request() {
	local method=$1 path=$2 auth=$3 body=${4-}
	local args=(-s --max-time 10 -X "$method" -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}')
	if [ -n "$auth" ]; then
		args+=(-H "Authorization: $auth")
	fi
	if [ -n "$body" ]; then
		args+=(-H "Content-Type: application/json" -d "$body")
	fi
	status="$(curl "${args[@]}" "$base$path" || echo 000)"
}
admin() { request "$1" "$2" "Bearer $admin_secret" "${3-}"; }
api() { request GET "$2" "Bearer $1"; }

# header NAME: the value of a response header of the last request.
header() {
	grep -i "^$1:" "$tmp/headers" | head -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//; s/ *$//' || true
}

# ---- JSON (jq, else python3) -------------------------------------------------

# jpath PATH: a dotted path (token.id, tokens.0.name) as a JSON array.
jpath() {
	local out="[" seg sep="" IFS=.
	for seg in $1; do
		if [[ $seg =~ ^[0-9]+$ ]]; then
			out+="$sep$seg"
		else
			out+="$sep\"$seg\""
		fi
		sep=","
	done
	printf '%s]' "$out"
}

# jget PATH [FILE]: the compact JSON value at PATH, or "<missing>" when the
# path does not exist (or the body is not JSON).
jget() {
	local p file=${2:-$tmp/body}
	p="$(jpath "$1")"
	if [ "$json_tool" = jq ]; then
		jq -c --argjson p "$p" \
			'if ([paths] | any(. == $p)) then getpath($p) else "<missing>" end' "$file" 2>/dev/null |
			sed 's/^"<missing>"$/<missing>/' || echo "<missing>"
	else
		python3 - "$p" "$file" <<'EOF' 2>/dev/null || echo "<missing>"
import json, sys
path = json.loads(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    v = json.load(f)
for k in path:
    if isinstance(k, int) and isinstance(v, list) and k < len(v):
        v = v[k]
    elif isinstance(k, str) and isinstance(v, dict) and k in v:
        v = v[k]
    else:
        print("<missing>")
        sys.exit(0)
print(json.dumps(v, separators=(",", ":"), ensure_ascii=False))
EOF
	fi
}

# jtype PATH [FILE]: object, array, string, number, boolean, null or missing.
jtype() {
	local v
	v="$(jget "$@")"
	case "$v" in
	"<missing>") echo missing ;;
	null) echo null ;;
	true | false) echo boolean ;;
	\{*) echo object ;;
	\[*) echo array ;;
	\"*) echo string ;;
	*) echo number ;;
	esac
}

# jstr PATH [FILE]: the string at PATH without its quotes (JSON escapes kept).
jstr() {
	local v
	v="$(jget "$@")"
	v="${v#\"}"
	printf '%s' "${v%\"}"
}

# ---- checks ------------------------------------------------------------------

passed=0
failed=0
problems=()

problem() { problems+=("$*"); }

# done_check NAME: prints the check's line and resets the problems.
done_check() {
	if [ "${#problems[@]}" -eq 0 ]; then
		echo "ok   $1"
		passed=$((passed + 1))
	else
		local why
		why="$(printf '%s; ' "${problems[@]}")"
		echo "FAIL $1: ${why%; }"
		failed=$((failed + 1))
	fi
	problems=()
}

expect_status() {
	if [ "$status" != "$1" ]; then
		problem "status $status, want $1 (body: $(head -c 300 "$tmp/body" 2>/dev/null | tr '\n' ' '))"
	fi
}

# expect_eq PATH JSON: the value at PATH is exactly JSON (compact form).
expect_eq() {
	local got
	got="$(jget "$1")"
	if [ "$got" != "$2" ]; then
		problem "$1 is $got, want $2"
	fi
}

# expect_type PATH TYPE...: the value at PATH has one of the types.
expect_type() {
	local path=$1 got t
	shift
	got="$(jtype "$path")"
	for t in "$@"; do
		[ "$got" = "$t" ] && return 0
	done
	problem "$path is $got, want $*"
}

# expect_fields PREFIX FIELD...: every PREFIX.FIELD exists.
expect_fields() {
	local prefix=$1 f
	shift
	for f in "$@"; do
		if [ "$(jtype "$prefix.$f")" = missing ]; then
			problem "no field $prefix.$f"
		fi
	done
}

rfc3339='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$'

# expect_time PATH: the value at PATH is an RFC 3339 time in UTC.
expect_time() {
	local v
	v="$(jstr "$1")"
	if ! [[ $v =~ $rfc3339 ]] || ! [[ $v == *Z ]]; then
		problem "$1 is \"$v\", want an RFC 3339 time in UTC"
	fi
}

# ---- the spec's flows ----------------------------------------------------------

# The spec's example expiry, unless it is not in the future any more.
expiry=2026-12-31
if [[ ! "$(date -u +%F)" < "$expiry" ]]; then
	expiry=2099-12-31
fi
token_name="WordPress Plugin - Main Site"
token_desc="Token for the main WordPress website"
created_message="API token created successfully. Save this token securely - it cannot be retrieved later."

# Creating an API Token: POST /api/api-tokens with the spec's body.
admin POST /api/api-tokens "{
\"name\": \"$token_name\",
\"description\": \"$token_desc\",
\"rate_limit\": 200,
\"expires_at\": \"$expiry\",
\"allowed_endpoints\": [\"/products*\", \"/stores*\", \"/categories*\"]
}"
expect_status 201
expect_fields token id name token description active rate_limit allowed_endpoints expires_at created_at
expect_type token.id number
expect_eq token.name "\"$token_name\""
expect_eq token.description "\"$token_desc\""
expect_eq token.active true
expect_eq token.rate_limit 200
expect_eq token.allowed_endpoints '["/products*","/stores*","/categories*"]'
expect_type token.token string
expect_time token.created_at
expect_time token.expires_at
if [[ "$(jstr token.expires_at)" != "$expiry"T* ]]; then
	problem "token.expires_at is $(jget token.expires_at), want it to start with $expiry"
fi
expect_eq message "\"$created_message\""
done_check "POST /api/api-tokens creates the spec's token: 201, token fields, message"
id="$(jget token.id)"
plain="$(jstr token.token)"
if ! [[ $id =~ ^[0-9]+$ ]] || [ -z "$plain" ]; then
	echo "smoke: no token was created; the other checks need one" >&2
	echo "$passed passed, $((failed + 1)) failed"
	exit 1
fi

# Using an API Token: the products request of the spec.
api "$plain" "/api/products?store_id=1"
expect_status 200
limit="$(header X-RateLimit-Limit)"
remaining="$(header X-RateLimit-Remaining)"
reset="$(header X-RateLimit-Reset)"
[ "$limit" = 200 ] || problem "X-RateLimit-Limit is \"$limit\", want 200"
[ "$remaining" = 199 ] || problem "X-RateLimit-Remaining is \"$remaining\", want 199"
[[ $reset =~ $rfc3339 ]] || problem "X-RateLimit-Reset is \"$reset\", want an RFC 3339 time"
expect_type products array
done_check "GET /api/products?store_id=1 with the new token: 200 with X-RateLimit-Limit/Remaining/Reset"

# Endpoint restrictions: /orders is not in allowed_endpoints.
api "$plain" /api/orders
expect_status 403
expect_eq error '"Endpoint not allowed"'
done_check "GET /api/orders (outside allowed_endpoints): 403 Endpoint not allowed"

# /stores/1/brands matches /stores*.
api "$plain" /api/stores/1/brands
expect_status 200
done_check "GET /api/stores/1/brands (matches /stores*): 200"

# Without a token, or with an unknown one.
request GET /api/products ""
expect_status 401
expect_eq error '"Invalid API token"'
api "not-a-real-token" /api/products
expect_status 401
expect_eq error '"Invalid API token"'
done_check "GET /api/products without a token or with an unknown one: 401 Invalid API token"

# List All Tokens.
admin GET /api/api-tokens
expect_status 200
expect_type tokens array
n="$(jget tokens | { if [ "$json_tool" = jq ]; then jq length; else python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; fi; })"
found=""
for ((i = 0; i < n; i++)); do
	if [ "$(jget "tokens.$i.id")" = "$id" ]; then
		found=$i
		break
	fi
done
if [ -z "$found" ]; then
	problem "token $id is not in tokens[]"
else
	expect_fields "tokens.$found" id name description active rate_limit last_used_at created_at requests_24h requests_7d total_requests
	expect_eq "tokens.$found.name" "\"$token_name\""
	expect_type "tokens.$found.requests_24h" number
	expect_type "tokens.$found.requests_7d" number
	expect_type "tokens.$found.total_requests" number
	expect_type "tokens.$found.last_used_at" string null
	if [ "$(jtype "tokens.$found.token")" != missing ]; then
		problem "tokens[] shows the plaintext token"
	fi
fi
done_check "GET /api/api-tokens: 200, tokens[] with the spec's list fields"

# Get Single Token.
admin GET "/api/api-tokens/$id"
expect_status 200
expect_eq token.id "$id"
expect_fields token id name description active rate_limit allowed_endpoints expires_at last_used_at created_at requests_24h requests_7d total_requests
expect_eq token.name "\"$token_name\""
done_check "GET /api/api-tokens/:id: 200 with the token"

# Update Token with the spec's body.
admin PUT "/api/api-tokens/$id" "{
\"name\": \"$token_name (Updated)\",
\"active\": false,
\"rate_limit\": 300
}"
expect_status 200
expect_eq token.id "$id"
expect_eq token.name "\"$token_name (Updated)\""
expect_eq token.active false
expect_eq token.rate_limit 300
expect_eq token.description "\"$token_desc\""
done_check "PUT /api/api-tokens/:id with the spec's body: 200 with name, active false, rate_limit 300"

api "$plain" /api/products
expect_status 403
expect_eq error '"Token is disabled"'
done_check "a disabled token is refused: 403 Token is disabled"

admin PUT "/api/api-tokens/$id" '{"active": true}'
expect_status 200
expect_eq token.active true
expect_eq token.rate_limit 300
api "$plain" "/api/products?store_id=1"
expect_status 200
limit="$(header X-RateLimit-Limit)"
[ "$limit" = 300 ] || problem "X-RateLimit-Limit is \"$limit\" after the update, want 300"
done_check "PUT {\"active\": true} re-enables the token: 200, X-RateLimit-Limit 300"

# Rate limiting: a token with 2 requests per minute, 3 requests.
admin POST /api/api-tokens '{"name": "Smoke - rate limit", "rate_limit": 2}'
expect_status 201
rl_plain="$(jstr token.token)"
rl_id="$(jget token.id)"
codes=""
for _ in 1 2 3; do
	api "$rl_plain" /api/products
	codes+="$status "
done
[ "$codes" = "200 200 429 " ] || problem "statuses $codes, want 200 200 429"
expect_eq error '"Rate limit exceeded"'
expect_eq limit 2
expect_eq current 3
expect_type retry_after number
retry_after="$(header Retry-After)"
[[ $retry_after =~ ^[0-9]+$ ]] || problem "Retry-After is \"$retry_after\", want seconds"
[ "$(header X-RateLimit-Remaining)" = 0 ] || problem "X-RateLimit-Remaining is \"$(header X-RateLimit-Remaining)\" on the 429, want 0"
done_check "rate limit 2, third request: 429 Rate limit exceeded, limit 2, current 3, retry_after, Retry-After"

# Expiration: no token expiring in the past; one that expires is refused.
admin POST /api/api-tokens '{"name": "Temporary Integration", "expires_at": "2025-12-31"}'
expect_status 400
if [[ "$(jstr error)" != *expires_at* ]]; then
	problem "error $(jget error) does not name expires_at"
fi
done_check "POST with a past expires_at: 400 naming expires_at"

soon="$(date -u -d '+3 seconds' +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -v+3S +%Y-%m-%dT%H:%M:%SZ)"
admin POST /api/api-tokens "{\"name\": \"Smoke - expires soon\", \"expires_at\": \"$soon\"}"
expect_status 201
exp_plain="$(jstr token.token)"
api "$exp_plain" /api/products
expect_status 200
sleep 3.2
api "$exp_plain" /api/products
expect_status 401
expect_eq error '"Token has expired"'
done_check "after expiration: 401 Token has expired"

# Token-Specific Usage. Usage is written by a batch sink: poll for it.
for _ in $(seq 1 25); do
	admin GET "/api/api-tokens/$id/usage?days=7"
	if [ "$status" = 200 ] && [ "$(jtype hourly_usage.0)" = object ] && [ "$(jtype recent_requests.0)" = object ]; then
		break
	fi
	sleep 0.2
done
expect_status 200
expect_fields hourly_usage.0 hour requests avg_response_time successful_requests failed_requests
expect_time hourly_usage.0.hour
expect_type endpoint_usage array
expect_fields endpoint_usage.0 endpoint method requests avg_response_time
expect_fields recent_requests.0 endpoint method status_code response_time_ms ip_address created_at
expect_time recent_requests.0.created_at
expect_eq recent_requests.0.method '"GET"'
if [ "$(jtype hourly_usage.0.requests)" = number ] && [ "$(jget hourly_usage.0.requests)" -lt 2 ]; then
	problem "hourly_usage[0].requests is $(jget hourly_usage.0.requests), want at least 2"
fi
done_check "GET /api/api-tokens/:id/usage?days=7: 200, hourly_usage, endpoint_usage, recent_requests"

# Overall API Statistics.
admin GET "/api/api-tokens/stats/overview?days=7"
expect_status 200
expect_fields overview active_tokens total_requests avg_response_time successful_requests failed_requests
expect_type overview.active_tokens number
expect_type overview.total_requests number
expect_fields top_tokens.0 id name requests avg_response_time
expect_fields top_endpoints.0 endpoint method requests avg_response_time
done_check "GET /api/api-tokens/stats/overview?days=7: 200, overview, top_tokens, top_endpoints"

# Delete Token.
admin DELETE "/api/api-tokens/$id"
expect_status 200
expect_type message string
admin GET "/api/api-tokens/$id"
expect_status 404
expect_eq error '"Token not found"'
api "$plain" /api/products
expect_status 401
admin DELETE "/api/api-tokens/$rl_id"
expect_status 200
done_check "DELETE /api/api-tokens/:id: 200, then GET 404 and the token is refused"

# The admin API needs the admin secret; an API token is not one.
request GET /api/api-tokens ""
expect_status 401
expect_eq error '"Unauthorized"'
request GET /api/api-tokens "Bearer wrong-$admin_secret"
expect_status 401
request POST /api/api-tokens "" '{"name": "no secret"}'
expect_status 401
request GET /api/api-tokens "Bearer $exp_plain"
expect_status 401
done_check "the admin API without the admin secret (none, wrong, an API token): 401"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
