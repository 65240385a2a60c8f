// Package clientip finds the address of the client of an HTTP request behind
// trusted reverse proxies.
//
// The peer address (r.RemoteAddr) is the client unless it belongs to a
// trusted proxy. Only then are the forwarding headers read: X-Forwarded-For
// is walked from the right, the end the nearest proxy appended to, skipping
// trusted proxies; the first untrusted address is the client. Everything to
// its left was written by the client itself and is never looked at.
package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrusted parses a list of trusted proxies, each an IP address
// ("127.0.0.1", "::1") or a CIDR prefix ("10.0.0.0/8"), into prefixes.
// Surrounding spaces are ignored; host bits of a prefix are masked off, and
// IPv4-mapped IPv6 entries are turned into IPv4 ones. The error names the
// first bad entry.
func ParseTrusted(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, entry := range list {
		p, err := parseTrusted(strings.TrimSpace(entry))
		if err != nil {
			return nil, fmt.Errorf("apitoken: invalid trusted proxy %q: %w", entry, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseTrusted(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return normPrefix(p), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = norm(a)
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// normPrefix masks p and turns an IPv4-mapped IPv6 prefix into an IPv4 one.
// It returns the zero Prefix for an invalid one.
func normPrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return netip.Prefix{}
	}
	a, bits := p.Addr().WithZone(""), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// norm unmaps an IPv4-mapped IPv6 address and strips its zone.
func norm(a netip.Addr) netip.Addr {
	return a.WithZone("").Unmap()
}

// Resolver finds the client address of requests. The zero Resolver trusts
// no proxy: the client is the peer.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver trusting the proxies in the given prefixes, as
// returned by ParseTrusted. Invalid prefixes are ignored; the slice is
// copied.
func New(trusted []netip.Prefix) Resolver {
	var r Resolver
	for _, p := range trusted {
		if p = normPrefix(p); p.IsValid() {
			r.trusted = append(r.trusted, p)
		}
	}
	return r
}

// TrustsProxies reports whether r trusts any proxy: if not, the client is
// always the peer, whatever the headers say.
func (r Resolver) TrustsProxies() bool { return len(r.trusted) > 0 }

// isTrusted reports whether a, which must be normalised, is a trusted proxy.
func (r Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client address of a request with the given
// RemoteAddr and header.
//
// The peer is the host of remoteAddr ("ip:port", "[v6]:port" or a bare IP).
// When the peer is a trusted proxy, X-Forwarded-For (all of its lines,
// joined with commas) is walked from the right skipping trusted addresses,
// and the first untrusted one is returned. An entry that does not parse
// stops the walk: the result is then the last trusted address seen, or the
// peer. When every entry is trusted, the left-most one is returned. When
// X-Forwarded-For has no entry at all, the last X-Real-IP line is used if it
// is a valid address; otherwise the result is the peer.
//
// Entries may carry a port ("1.2.3.4:80", "[::1]:80") and IPv6 brackets.
// IPv4-mapped IPv6 addresses are unmapped and zones are stripped. The zero
// Addr is returned when the peer does not parse.
//
// ClientIP does not allocate unless an address has a zone.
func (r Resolver) ClientIP(remoteAddr string, h http.Header) netip.Addr {
	peer, ok := parseHost(remoteAddr)
	if !ok {
		return netip.Addr{}
	}
	if len(r.trusted) == 0 || !r.isTrusted(peer) {
		return peer
	}

	last := peer // the last trusted hop seen
	seen := false
	lines := h["X-Forwarded-For"]
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for len(line) > 0 {
			var entry string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				entry, line = line[j+1:], line[:j]
			} else {
				entry, line = line, ""
			}
			entry = strings.Trim(entry, " \t")
			if entry == "" {
				continue
			}
			seen = true
			a, ok := parseHost(entry)
			if !ok {
				return last
			}
			if !r.isTrusted(a) {
				return a
			}
			last = a
		}
	}
	if seen {
		return last
	}

	if v := h["X-Real-Ip"]; len(v) > 0 {
		if a, ok := parseHost(strings.Trim(v[len(v)-1], " \t")); ok {
			return a
		}
	}
	return peer
}

// parseHost parses an address with an optional port: "1.2.3.4",
// "1.2.3.4:80", "::1", "[::1]", "[::1]:80", "[fe80::1%eth0]:80". The
// result is normalised (see norm).
func parseHost(s string) (netip.Addr, bool) {
	if a, ok := parseIPv4Port(s); ok {
		return a, true
	}
	return parseHostFull(s)
}

// parseHostFull is parseHost without its fast path.
func parseHostFull(s string) (netip.Addr, bool) {
	host := s
	bracketed := len(s) > 0 && s[0] == '['
	if bracketed {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" && !validPort(rest) {
			return netip.Addr{}, false
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.IndexByte(s[:i], ':') < 0 {
		// One colon: "ip:port" (an IPv6 address without brackets has more).
		if !validPort(s[i:]) {
			return netip.Addr{}, false
		}
		host = s[:i]
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	if bracketed && !a.Is6() {
		return netip.Addr{}, false // "[1.2.3.4]"
	}
	return norm(a), true
}

// validPort reports whether s is ":" followed by a decimal port number
// (0 to 65535, at most 5 digits).
func validPort(s string) bool {
	if len(s) < 2 || len(s) > 6 || s[0] != ':' {
		return false
	}
	n := 0
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n <= 65535
}

// parseIPv4Port is parseHost's fast path for the usual peer address,
// "a.b.c.d:port" or "a.b.c.d", in one pass. It accepts only what
// netip.ParseAddr and validPort accept (four decimal fields of 0 to 255
// without leading zeros) and reports false for anything else, which
// parseHostFull then parses in full.
func parseIPv4Port(s string) (netip.Addr, bool) {
	var ip [4]byte
	field, digits, val := 0, 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			if digits == 1 && val == 0 { // a leading zero
				return netip.Addr{}, false
			}
			val = val*10 + int(c-'0')
			if val > 255 {
				return netip.Addr{}, false
			}
			digits++
		case c == '.':
			if digits == 0 || field == 3 {
				return netip.Addr{}, false
			}
			ip[field] = byte(val)
			field, digits, val = field+1, 0, 0
		case c == ':':
			if digits == 0 || field != 3 || !validPort(s[i:]) {
				return netip.Addr{}, false
			}
			ip[3] = byte(val)
			return netip.AddrFrom4(ip), true
		default:
			return netip.Addr{}, false
		}
	}
	if digits == 0 || field != 3 {
		return netip.Addr{}, false
	}
	ip[3] = byte(val)
	return netip.AddrFrom4(ip), true
}
