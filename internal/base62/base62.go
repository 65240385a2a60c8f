// Package base62 holds the alphabet and the fixed-width encodings used by the
// token format: random base62 secrets and a CRC32 checksum written as six
// base62 characters.
package base62

import (
	"crypto/rand"
	"hash/crc32"
	"io"
)

// Alphabet is the base62 alphabet in the order digits, upper case, lower case.
const Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ChecksumLen is the width of an encoded CRC32: 62^6 > 2^32.
const ChecksumLen = 6

var isChar = func() (t [256]bool) {
	for i := 0; i < len(Alphabet); i++ {
		t[Alphabet[i]] = true
	}
	return t
}()

// IsChar reports whether c is in the alphabet.
func IsChar(c byte) bool { return isChar[c] }

// Valid reports whether every byte of s is in the alphabet.
func Valid(s string) bool {
	for i := 0; i < len(s); i++ {
		if !IsChar(s[i]) {
			return false
		}
	}
	return true
}

// Random returns n characters drawn uniformly from the alphabet, reading r
// (crypto/rand.Reader when r is nil). Rejection sampling keeps every
// character uniform: bytes of 248 and above are thrown away, so each
// character carries log2(62) ≈ 5.954 bits.
func Random(r io.Reader, n int) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62: keeps b%62 uniform
				continue
			}
			out = append(out, Alphabet[b%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out), nil
}

// crcTables are the slicing-by-8 tables of the IEEE polynomial: crcTables[0]
// is the byte-wise table, crcTables[k][b] is the CRC of b followed by k zero
// bytes.
var crcTables = func() (t [8][256]uint32) {
	t[0] = *crc32.IEEETable
	for b := 0; b < 256; b++ {
		c := t[0][b]
		for k := 1; k < 8; k++ {
			c = t[0][c&0xFF] ^ (c >> 8)
			t[k][b] = c
		}
	}
	return t
}()

// CRC32 is crc32.ChecksumIEEE of s, computed over the string eight bytes at
// a time without converting it to a byte slice (so it never allocates).
func CRC32(s string) uint32 {
	crc := ^uint32(0)
	t := &crcTables
	for len(s) >= 8 {
		lo := crc ^ (uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24)
		crc = t[7][lo&0xFF] ^ t[6][(lo>>8)&0xFF] ^ t[5][(lo>>16)&0xFF] ^ t[4][lo>>24] ^
			t[3][s[4]] ^ t[2][s[5]] ^ t[1][s[6]] ^ t[0][s[7]]
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		crc = t[0][byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}

// AppendChecksum appends v as exactly ChecksumLen base62 characters, most
// significant first, zero-padded.
func AppendChecksum(dst []byte, v uint32) []byte {
	var b [ChecksumLen]byte
	n := uint64(v)
	for i := ChecksumLen - 1; i >= 0; i-- {
		b[i] = Alphabet[n%62]
		n /= 62
	}
	return append(dst, b[:]...)
}

// DecodeChecksum decodes ChecksumLen base62 characters; ok is false when s
// has the wrong length, a character outside the alphabet, or a value that
// does not fit in 32 bits.
func DecodeChecksum(s string) (v uint32, ok bool) {
	if len(s) != ChecksumLen {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		d, ok := digit(s[i])
		if !ok {
			return 0, false
		}
		n = n*62 + uint64(d)
	}
	if n > 0xFFFFFFFF {
		return 0, false
	}
	return uint32(n), true
}

func digit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'Z':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'z':
		return c - 'a' + 36, true
	}
	return 0, false
}
