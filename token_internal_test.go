package apitoken

import (
	"crypto/sha256"
	"hash/crc32"
	"strings"
	"testing"
)

func TestGenerateParseRoundTrip(t *testing.T) {
	f := newTokenFormat("atk", nil, nil)
	for i := 0; i < 1000; i++ {
		s, err := f.generate()
		if err != nil {
			t.Fatal(err)
		}
		if !f.wellFormed(s) {
			t.Fatalf("generated token %d not well formed", i)
		}
	}
}

func TestHashMatchesSHA256AndHMAC(t *testing.T) {
	plain := newTokenFormat("atk", nil, nil)
	s, _ := plain.generate()
	if got, want := plain.hash(s), Hash(sha256.Sum256([]byte(s))); got != want {
		t.Fatal("hash is not SHA-256 of the token")
	}
	a := newTokenFormat("atk", []byte("pepper-a"), nil)
	b := newTokenFormat("atk", []byte("pepper-b"), nil)
	again := newTokenFormat("atk", []byte("pepper-a"), nil)
	if a.hash(s) == plain.hash(s) || a.hash(s) == b.hash(s) || a.hash(s) != again.hash(s) {
		t.Fatal("peppered hashes must differ by pepper and be stable")
	}
	if n := testing.AllocsPerRun(100, func() { _ = plain.hash(s) }); n != 0 {
		t.Fatalf("hash allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = plain.wellFormed(s) }); n != 0 {
		t.Fatalf("wellFormed allocates %v times", n)
	}
}

// FuzzWellFormed: parsing never panics, accepts only tokens whose checksum
// really matches, and rejects every single-character change of a valid one.
func FuzzWellFormed(f *testing.F) {
	tf := newTokenFormat("atk", nil, nil)
	valid, _ := tf.generate()
	f.Add(valid, 0, byte('x'))
	f.Add("atk_", 5, byte('0'))
	f.Add(strings.Repeat("a", 300), 10, byte('_'))
	f.Add("", 0, byte(0))
	f.Fuzz(func(t *testing.T, s string, pos int, c byte) {
		if tf.wellFormed(s) {
			cut := len(s) - 6
			want, ok := decodeForTest(s[cut:])
			if !ok || crc32.ChecksumIEEE([]byte(s[:cut])) != want || !strings.HasPrefix(s, "atk_") || len(s) != 53 {
				t.Fatalf("accepted a bad token %q", s)
			}
		}
		if pos < 0 {
			pos = -pos
		}
		b := []byte(valid)
		i := pos % len(b)
		if b[i] == c {
			return
		}
		b[i] = c
		if tf.wellFormed(string(b)) {
			t.Fatalf("a one-character change at %d to %q was accepted", i, c)
		}
	})
}

func decodeForTest(s string) (uint32, bool) {
	const alpha = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var n uint64
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(alpha, s[i])
		if d < 0 {
			return 0, false
		}
		n = n*62 + uint64(d)
	}
	return uint32(n), n <= 0xFFFFFFFF
}
