package clientip

import (
	"net/netip"
	"testing"
)

func TestParseIPv4Port(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" when the fast path must leave the input to parseHostFull
	}{
		{name: "with port", in: "192.0.2.1:1234", want: "192.0.2.1"},
		{name: "bare", in: "203.0.113.7", want: "203.0.113.7"},
		{name: "zeros", in: "0.0.0.0:0", want: "0.0.0.0"},
		{name: "max", in: "255.255.255.255:65535", want: "255.255.255.255"},
		{name: "leading zero", in: "01.2.3.4"},
		{name: "octet too big", in: "256.1.1.1"},
		{name: "three fields", in: "1.2.3"},
		{name: "five fields", in: "1.2.3.4.5"},
		{name: "empty field", in: "1..3.4"},
		{name: "trailing dot", in: "1.2.3.4."},
		{name: "port too big", in: "1.2.3.4:65536"},
		{name: "empty port", in: "1.2.3.4:"},
		{name: "two colons", in: "1.2.3.4:80:80"},
		{name: "ipv6", in: "::1"},
		{name: "bracketed", in: "[1.2.3.4]:80"},
		{name: "space", in: " 1.2.3.4"},
		{name: "zone", in: "1.2.3.4%eth0"},
		{name: "empty", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseIPv4Port(tt.in)
			if tt.want == "" {
				if ok {
					t.Fatalf("parseIPv4Port(%q) = %v, want no answer", tt.in, got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("parseIPv4Port(%q) = %v, %t, want %s", tt.in, got, ok, tt.want)
			}
		})
	}
}

// FuzzParseIPv4Port checks that the fast path answers only where the full
// parser gives the same address.
func FuzzParseIPv4Port(f *testing.F) {
	for _, s := range []string{"192.0.2.1:1234", "1.2.3.4", "01.2.3.4", "1.2.3.4:99999", "[::1]:80", "::ffff:1.2.3.4", "1.2.3.4%eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, ok := parseIPv4Port(s)
		if !ok {
			return
		}
		full, fok := parseHostFull(s)
		if !fok || full != fast {
			t.Fatalf("parseIPv4Port(%q) = %v, but parseHostFull gives %v, %t", s, fast, full, fok)
		}
	})
}
