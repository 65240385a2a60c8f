package base62_test

import (
	"bytes"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/apitoken/apitoken/internal/base62"
)

func TestCRC32MatchesStdlib(t *testing.T) {
	for _, s := range []string{"", "a", "atk_abc", "12345678", "123456789", strings.Repeat("xyz", 100), "\xff\x00\x80abcdefghijklmnop"} {
		if got, want := base62.CRC32(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Errorf("CRC32(%q) = %08x, want %08x", s, got, want)
		}
	}
}

func TestChecksumRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		v    uint32
	}{
		{"zero", 0},
		{"one", 1},
		{"max", 0xFFFFFFFF},
		{"mid", 0x12345678},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := string(base62.AppendChecksum(nil, tt.v))
			if len(enc) != base62.ChecksumLen {
				t.Fatalf("len(%q) = %d", enc, len(enc))
			}
			got, ok := base62.DecodeChecksum(enc)
			if !ok || got != tt.v {
				t.Fatalf("DecodeChecksum(%q) = %d, %v; want %d", enc, got, ok, tt.v)
			}
		})
	}
}

func TestDecodeChecksumRejects(t *testing.T) {
	for _, s := range []string{"", "00000", "0000000", "00000_", "zzzzzz"} {
		if _, ok := base62.DecodeChecksum(s); ok {
			t.Errorf("DecodeChecksum(%q) accepted", s)
		}
	}
}

func TestRandomUsesOnlyAlphabetAndSkipsHighBytes(t *testing.T) {
	// 0xFF bytes must be rejected, so a reader of 0xFF then 0x00 yields '0's.
	src := bytes.NewReader(append(bytes.Repeat([]byte{0xFF}, 10), make([]byte, 200)...))
	s, err := base62.Random(src, 43)
	if err != nil {
		t.Fatal(err)
	}
	if s != strings.Repeat("0", 43) {
		t.Fatalf("Random = %q", s)
	}
	r, err := base62.Random(nil, 64)
	if err != nil || len(r) != 64 || !base62.Valid(r) {
		t.Fatalf("Random(nil, 64) = %q, %v", r, err)
	}
}

func FuzzCRC32(f *testing.F) {
	f.Add("atk_abc")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := base62.CRC32(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Fatalf("CRC32(%q) = %08x, want %08x", s, got, want)
		}
	})
}
