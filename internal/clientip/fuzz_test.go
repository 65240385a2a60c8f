package clientip_test

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// hostCandidates returns the addresses spelled by the given tokens, found
// independently of the package: each token as is, trimmed, as the host of
// net.SplitHostPort, and without brackets.
func hostCandidates(tokens ...string) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, raw := range tokens {
		tok := strings.TrimSpace(raw)
		forms := []string{raw, tok, strings.TrimSuffix(strings.TrimPrefix(tok, "["), "]")}
		if host, _, err := net.SplitHostPort(tok); err == nil {
			forms = append(forms, host)
		}
		for _, f := range forms {
			if a, err := netip.ParseAddr(f); err == nil {
				out[a.WithZone("").Unmap()] = true
			}
		}
	}
	return out
}

// FuzzClientIP checks that ClientIP never panics and that its result, when
// valid, is an address written as a host in one of the inputs; without
// trusted proxies, or with an untrusted peer, it must come from remoteAddr.
func FuzzClientIP(f *testing.F) {
	for _, seed := range []struct{ remoteAddr, xff, xRealIP string }{
		{"203.0.113.7:5555", "10.0.0.1, 1.1.1.1", ""},
		{"10.0.0.2:80", "6.6.6.6, 198.51.100.1, 10.1.1.1", ""},
		{"127.0.0.1:80", "198.51.100.1;10.1.1.1;10.2.2.2", "1.2.3.4"},
		{"10.0.0.2:80", "garbage, 10.3.3.3", ""},
		{"[fe80::1%eth0]:443", "", ""},
		{"[::1]:443", "[2001:db8::1]:4711, fe80::9%en0", ""},
		{"[::ffff:10.0.0.2]:80", "::ffff:198.51.100.1", ""},
		{"[::ffff:192.168.1.1]:80", "", "198.51.100.1"},
		{"10.0.0.2", " , ", " 198.51.100.1 "},
		{"[1.2.3.4]:80", "", ""},
		{"1.2.3.4:99999", "", ""},
		{"", "", ""},
	} {
		f.Add(seed.remoteAddr, seed.xff, seed.xRealIP)
	}
	trusting := mustResolver(f, "10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8", "::ffff:192.168.0.0/112")
	f.Fuzz(func(t *testing.T, remoteAddr, xff, xRealIP string) {
		h := http.Header{}
		if xff != "" {
			h["X-Forwarded-For"] = strings.Split(xff, ";")
		}
		if xRealIP != "" {
			h["X-Real-Ip"] = []string{xRealIP}
		}
		zero := mustResolver(t)
		direct := zero.ClientIP(remoteAddr, h)
		got := trusting.ClientIP(remoteAddr, h)

		peers := hostCandidates(remoteAddr)
		if direct.IsValid() && !peers[direct] {
			t.Fatalf("zero Resolver: ClientIP(%q) = %v, not a host of remoteAddr", remoteAddr, direct)
		}
		if got.IsValid() != direct.IsValid() {
			t.Fatalf("ClientIP(%q, %q, %q) = %v, but the peer is %v", remoteAddr, xff, xRealIP, got, direct)
		}
		if !got.IsValid() {
			return
		}
		for _, a := range []netip.Addr{direct, got} {
			if a.Zone() != "" || a.Is4In6() {
				t.Fatalf("result %v is not normalised", a)
			}
		}
		xffTokens := strings.FieldsFunc(xff, func(r rune) bool { return r == ',' || r == ';' })
		all := hostCandidates(append(xffTokens, remoteAddr, xRealIP)...)
		if !all[got] {
			t.Fatalf("ClientIP(%q, %q, %q) = %v, not a host in the inputs", remoteAddr, xff, xRealIP, got)
		}
		// An untrusted peer's headers are never read.
		if !isTrusted(direct) && got != direct {
			t.Fatalf("ClientIP(%q, %q, %q) = %v, but the untrusted peer is %v", remoteAddr, xff, xRealIP, got, direct)
		}
	})
}

func isTrusted(a netip.Addr) bool {
	for _, p := range []string{"10.0.0.0/8", "127.0.0.1/32", "::1/128", "fd00::/8", "192.168.0.0/16"} {
		if netip.MustParsePrefix(p).Contains(a) {
			return true
		}
	}
	return false
}
