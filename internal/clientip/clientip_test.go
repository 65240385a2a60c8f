package clientip_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/apitoken/apitoken/internal/clientip"
)

func mustResolver(t testing.TB, trusted ...string) clientip.Resolver {
	t.Helper()
	p, err := clientip.ParseTrusted(trusted)
	if err != nil {
		t.Fatalf("ParseTrusted(%q): %v", trusted, err)
	}
	return clientip.New(p)
}

func TestParseTrusted(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{name: "nil", in: nil, want: []string{}},
		{name: "v4 prefix", in: []string{"10.0.0.0/8"}, want: []string{"10.0.0.0/8"}},
		{name: "v4 address", in: []string{"127.0.0.1"}, want: []string{"127.0.0.1/32"}},
		{name: "v6 address", in: []string{"::1"}, want: []string{"::1/128"}},
		{name: "v6 prefix", in: []string{"fd00::/8"}, want: []string{"fd00::/8"}},
		{name: "host bits masked", in: []string{"10.1.2.3/8"}, want: []string{"10.0.0.0/8"}},
		{name: "spaces trimmed", in: []string{" 192.168.0.0/16 "}, want: []string{"192.168.0.0/16"}},
		{name: "mapped address", in: []string{"::ffff:10.0.0.1"}, want: []string{"10.0.0.1/32"}},
		{name: "mapped prefix", in: []string{"::ffff:10.0.0.0/104"}, want: []string{"10.0.0.0/8"}},
		{name: "zone stripped", in: []string{"fe80::1%eth0"}, want: []string{"fe80::1/128"}},
		{name: "several", in: []string{"10.0.0.0/8", "::1"}, want: []string{"10.0.0.0/8", "::1/128"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := clientip.ParseTrusted(tt.in)
			if err != nil {
				t.Fatalf("ParseTrusted(%q): %v", tt.in, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseTrusted(%q) = %v, want %v", tt.in, got, tt.want)
			}
			for i := range got {
				if got[i].String() != tt.want[i] {
					t.Errorf("ParseTrusted(%q)[%d] = %v, want %v", tt.in, i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseTrustedErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		wantErr string
	}{
		{name: "garbage", in: []string{"10.0.0.0/8", "proxy.local"}, wantErr: `apitoken: invalid trusted proxy "proxy.local": `},
		{name: "empty", in: []string{""}, wantErr: `apitoken: invalid trusted proxy "": `},
		{name: "bad bits", in: []string{"10.0.0.0/33"}, wantErr: `apitoken: invalid trusted proxy "10.0.0.0/33": `},
		{name: "port", in: []string{"10.0.0.1:80"}, wantErr: `apitoken: invalid trusted proxy "10.0.0.1:80": `},
		{name: "first bad named", in: []string{"x", "y"}, wantErr: `apitoken: invalid trusted proxy "x": `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := clientip.ParseTrusted(tt.in)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("ParseTrusted(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	proxies := []string{"10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8"}
	tests := []struct {
		name       string
		trusted    []string
		remoteAddr string
		xff        []string
		xRealIP    []string
		want       string
	}{
		{name: "no proxies", remoteAddr: "203.0.113.7:5555", want: "203.0.113.7"},
		{name: "no proxies ignore headers", remoteAddr: "203.0.113.7:5555", xff: []string{"1.1.1.1"}, xRealIP: []string{"2.2.2.2"}, want: "203.0.113.7"},
		{name: "untrusted peer spoofed xff", trusted: proxies, remoteAddr: "203.0.113.7:5555", xff: []string{"10.0.0.1, 1.1.1.1"}, want: "203.0.113.7"},
		{name: "untrusted peer spoofed x-real-ip", trusted: proxies, remoteAddr: "203.0.113.7:5555", xRealIP: []string{"1.1.1.1"}, want: "203.0.113.7"},
		{name: "trusted peer one hop", trusted: proxies, remoteAddr: "10.0.0.2:80", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "trusted peer right-most untrusted", trusted: proxies, remoteAddr: "10.0.0.2:80", xff: []string{"6.6.6.6, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "chain of trusted proxies", trusted: proxies, remoteAddr: "127.0.0.1:80", xff: []string{"6.6.6.6, 198.51.100.1, 10.1.1.1, 10.2.2.2"}, want: "198.51.100.1"},
		{name: "chain over several lines", trusted: proxies, remoteAddr: "127.0.0.1:80", xff: []string{"6.6.6.6, 198.51.100.1", "10.1.1.1", "10.2.2.2"}, want: "198.51.100.1"},
		{name: "all trusted gives left-most", trusted: proxies, remoteAddr: "127.0.0.1:80", xff: []string{"10.9.9.9, 10.1.1.1"}, want: "10.9.9.9"},
		{name: "spaces tabs and empty entries", trusted: proxies, remoteAddr: "127.0.0.1:80", xff: []string{" 198.51.100.1 ,\t, 10.1.1.1 ,"}, want: "198.51.100.1"},
		{name: "garbage xff right-most", trusted: proxies, remoteAddr: "10.0.0.2:80", xff: []string{"198.51.100.1, garbage"}, want: "10.0.0.2"},
		{name: "garbage xff after trusted hop", trusted: proxies, remoteAddr: "10.0.0.2:80", xff: []string{"198.51.100.1, unknown, 10.3.3.3"}, want: "10.3.3.3"},
		{name: "garbage xff left of client", trusted: proxies, remoteAddr: "10.0.0.2:80", xff: []string{"<script>, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "garbage xff ignores x-real-ip", trusted: proxies, remoteAddr: "10.0.0.2:80", xff: []string{"nope"}, xRealIP: []string{"198.51.100.1"}, want: "10.0.0.2"},
		{name: "xff with ports", trusted: proxies, remoteAddr: "10.0.0.2:80", xff: []string{"[2001:db8::1]:4711, 10.1.1.1:80"}, want: "2001:db8::1"},
		{name: "xff bad port", trusted: proxies, remoteAddr: "10.0.0.2:80", xff: []string{"198.51.100.1:http"}, want: "10.0.0.2"},
		{name: "v6 peer with brackets and zone", trusted: proxies, remoteAddr: "[fe80::1%eth0]:443", want: "fe80::1"},
		{name: "v6 trusted peer", trusted: proxies, remoteAddr: "[::1]:443", xff: []string{"2001:db8::7"}, want: "2001:db8::7"},
		{name: "v6 trusted prefix", trusted: proxies, remoteAddr: "[fd00::2]:443", xff: []string{"2001:db8::7, fd12::1"}, want: "2001:db8::7"},
		{name: "v6 zone in xff", trusted: proxies, remoteAddr: "[::1]:443", xff: []string{"fe80::9%en0"}, want: "fe80::9"},
		{name: "bare v4 peer", trusted: proxies, remoteAddr: "198.51.100.1", want: "198.51.100.1"},
		{name: "bare v6 peer", remoteAddr: "2001:db8::1", want: "2001:db8::1"},
		{name: "bracketed v6 peer without port", remoteAddr: "[2001:db8::1]", want: "2001:db8::1"},
		{name: "x-real-ip fallback", trusted: proxies, remoteAddr: "10.0.0.2:80", xRealIP: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "x-real-ip fallback on empty xff", trusted: proxies, remoteAddr: "10.0.0.2:80", xff: []string{" , "}, xRealIP: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "x-real-ip last line", trusted: proxies, remoteAddr: "10.0.0.2:80", xRealIP: []string{"6.6.6.6", "198.51.100.1"}, want: "198.51.100.1"},
		{name: "x-real-ip invalid", trusted: proxies, remoteAddr: "10.0.0.2:80", xRealIP: []string{"nope"}, want: "10.0.0.2"},
		{name: "xff wins over x-real-ip", trusted: proxies, remoteAddr: "10.0.0.2:80", xff: []string{"198.51.100.1"}, xRealIP: []string{"6.6.6.6"}, want: "198.51.100.1"},
		{name: "mapped v4 peer", remoteAddr: "[::ffff:203.0.113.7]:5555", want: "203.0.113.7"},
		{name: "mapped v4 peer trusted", trusted: proxies, remoteAddr: "[::ffff:10.0.0.2]:80", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "mapped v4 in xff skipped as trusted", trusted: proxies, remoteAddr: "10.0.0.2:80", xff: []string{"198.51.100.1, ::ffff:10.1.1.1"}, want: "198.51.100.1"},
		{name: "mapped v4 in xff unmapped", trusted: proxies, remoteAddr: "10.0.0.2:80", xff: []string{"::ffff:198.51.100.1"}, want: "198.51.100.1"},
		{name: "mapped trusted entry", trusted: []string{"::ffff:10.0.0.0/104"}, remoteAddr: "10.0.0.2:80", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "invalid peer", trusted: proxies, remoteAddr: "garbage", xff: []string{"198.51.100.1"}, want: "invalid IP"},
		{name: "empty peer", remoteAddr: "", want: "invalid IP"},
		{name: "peer bad port", remoteAddr: "1.2.3.4:x", want: "invalid IP"},
		{name: "peer port out of range", remoteAddr: "1.2.3.4:65536", want: "invalid IP"},
		{name: "peer highest port", remoteAddr: "1.2.3.4:65535", want: "1.2.3.4"},
		{name: "peer empty port", remoteAddr: "1.2.3.4:", want: "invalid IP"},
		{name: "bracketed v4 peer", remoteAddr: "[1.2.3.4]:80", want: "invalid IP"},
		{name: "unix socket peer", trusted: proxies, remoteAddr: "@", xff: []string{"198.51.100.1"}, want: "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustResolver(t, tt.trusted...)
			h := http.Header{}
			for _, v := range tt.xff {
				h.Add("X-Forwarded-For", v)
			}
			for _, v := range tt.xRealIP {
				h.Add("X-Real-IP", v)
			}
			got := r.ClientIP(tt.remoteAddr, h)
			if got.String() != tt.want {
				t.Errorf("ClientIP(%q, %v) = %v, want %v", tt.remoteAddr, h, got, tt.want)
			}
			if got.Zone() != "" || got.Is4In6() {
				t.Errorf("ClientIP(%q, %v) = %v is not normalised", tt.remoteAddr, h, got)
			}
		})
	}
}

func TestZeroResolver(t *testing.T) {
	var r clientip.Resolver
	h := http.Header{"X-Forwarded-For": {"1.1.1.1"}, "X-Real-Ip": {"2.2.2.2"}}
	if got, want := r.ClientIP("127.0.0.1:1", h), netip.MustParseAddr("127.0.0.1"); got != want {
		t.Errorf("zero Resolver: ClientIP = %v, want %v", got, want)
	}
}

func TestTrustsProxies(t *testing.T) {
	tests := []struct {
		name string
		r    clientip.Resolver
		want bool
	}{
		{name: "zero", want: false},
		{name: "nothing valid", r: clientip.New([]netip.Prefix{{}}), want: false},
		{name: "one prefix", r: clientip.New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.TrustsProxies(); got != tt.want {
				t.Errorf("TrustsProxies() = %t, want %t", got, tt.want)
			}
		})
	}
}

func TestNewCopiesAndNormalises(t *testing.T) {
	p := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), {}, netip.MustParsePrefix("::ffff:192.168.0.0/112")}
	r := clientip.New(p)
	p[0] = netip.MustParsePrefix("11.0.0.0/8") // must not affect r
	h := http.Header{"X-Forwarded-For": {"198.51.100.1"}}
	tests := []struct {
		name       string
		remoteAddr string
		want       string
	}{
		{name: "copied", remoteAddr: "10.0.0.1:1", want: "198.51.100.1"},
		{name: "not aliased", remoteAddr: "11.0.0.1:1", want: "11.0.0.1"},
		{name: "mapped prefix", remoteAddr: "192.168.3.4:1", want: "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.ClientIP(tt.remoteAddr, h); got.String() != tt.want {
				t.Errorf("ClientIP(%q) = %v, want %v", tt.remoteAddr, got, tt.want)
			}
		})
	}
}

func TestClientIPDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name       string
		trusted    []string
		remoteAddr string
		h          http.Header
	}{
		{name: "no proxies v4", remoteAddr: "203.0.113.7:5555", h: http.Header{"X-Forwarded-For": {"1.1.1.1"}}},
		{name: "untrusted peer v4", trusted: []string{"10.0.0.0/8"}, remoteAddr: "203.0.113.7:5555", h: http.Header{}},
		{name: "trusted chain v4", trusted: []string{"10.0.0.0/8"}, remoteAddr: "10.0.0.1:80", h: http.Header{"X-Forwarded-For": {"6.6.6.6, 198.51.100.1, 10.1.1.1"}}},
		{name: "no proxies v6", remoteAddr: "[2001:db8::1]:443", h: http.Header{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustResolver(t, tt.trusted...)
			if n := testing.AllocsPerRun(100, func() { r.ClientIP(tt.remoteAddr, tt.h) }); n != 0 {
				t.Errorf("ClientIP(%q) allocates %v times", tt.remoteAddr, n)
			}
		})
	}
}

func BenchmarkClientIP(b *testing.B) {
	tests := []struct {
		name       string
		trusted    []string
		remoteAddr string
		h          http.Header
	}{
		{name: "no proxies", remoteAddr: "203.0.113.7:5555", h: http.Header{"X-Forwarded-For": {"1.1.1.1"}}},
		{name: "untrusted peer", trusted: []string{"10.0.0.0/8", "::1"}, remoteAddr: "203.0.113.7:5555", h: http.Header{"X-Forwarded-For": {"1.1.1.1"}}},
		{name: "trusted chain", trusted: []string{"10.0.0.0/8", "::1"}, remoteAddr: "10.0.0.1:80", h: http.Header{"X-Forwarded-For": {"6.6.6.6, 198.51.100.1, 10.1.1.1, 10.2.2.2"}}},
		{name: "v6 zone", trusted: []string{"::1"}, remoteAddr: "[::1]:443", h: http.Header{"X-Forwarded-For": {"fe80::1%eth0"}}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			r := mustResolver(b, tt.trusted...)
			b.ReportAllocs()
			for b.Loop() {
				if !r.ClientIP(tt.remoteAddr, tt.h).IsValid() {
					b.Fatal("invalid")
				}
			}
		})
	}
}
