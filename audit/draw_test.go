package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"lottery/audit"
)

func TestDrawNumber(t *testing.T) {
	secret := bytes.Repeat([]byte{0x5e}, audit.SecretSize)
	root := hashOf("root")
	n := audit.DrawNumber(secret, root)
	if n < 0 || n >= audit.NumberSpace || audit.DrawNumber(secret, root) != n {
		t.Fatalf("DrawNumber = %d, not a stable number of 0…9999", n)
	}
	// The documented derivation, spelled out once more: counter 0, the
	// first word, mod 10000 (a rejection has probability 1616/2⁶⁴).
	h := sha256.Sum256(append(append(append([]byte("lottery-draw v1\x00"), 0, 0, 0, 0), root[:]...), secret...))
	if want := int(binary.BigEndian.Uint64(h[:8]) % 10000); n != want {
		t.Errorf("DrawNumber = %d, the documented derivation gives %d", n, want)
	}
	// Every root gives some number, spread over the space: 2000 draws
	// land in at least 1500 different numbers (a uniform draw gives
	// about 1813).
	seen := map[int]bool{}
	for i := range 2000 {
		seen[audit.DrawNumber(secret, hashOf(string(rune(i))))] = true
	}
	if len(seen) < 1500 {
		t.Errorf("2000 roots drew only %d different numbers", len(seen))
	}
	if audit.DrawNumber(bytes.Repeat([]byte{1}, audit.SecretSize), root) == n && audit.DrawNumber(bytes.Repeat([]byte{2}, audit.SecretSize), root) == n {
		t.Error("the number does not depend on the secret")
	}
}

func TestNewSecret(t *testing.T) {
	s, err := audit.NewSecret(bytes.NewReader(bytes.Repeat([]byte{9}, 64)))
	if err != nil || len(s) != audit.SecretSize {
		t.Fatalf("secret %x, %v", s, err)
	}
	if audit.Commitment(s) != sha256.Sum256(s) {
		t.Error("the commitment is not the secret's SHA-256")
	}
	if _, err := audit.NewSecret(bytes.NewReader(make([]byte, 3))); err == nil {
		t.Error("a short read gave a secret")
	}
}

// TestWinnersHash: the hash changes with the salt, the documents and their
// order, and is never that of the same bytes cut otherwise.
func TestWinnersHash(t *testing.T) {
	salt := audit.AgencySalt([][32]byte{{1}, {2}})
	base := audit.WinnersHash(salt, []string{"30904465", "01234567"})
	others := [][32]byte{
		audit.WinnersHash(audit.AgencySalt([][32]byte{{2}, {1}}), []string{"30904465", "01234567"}),
		audit.WinnersHash(audit.AgencySalt([][32]byte{{1}}), []string{"30904465", "01234567"}),
		audit.WinnersHash(salt, []string{"01234567", "30904465"}),
		audit.WinnersHash(salt, []string{"3090446501234567"}),
		audit.WinnersHash(salt, []string{"30904465"}),
		audit.WinnersHash(salt, nil),
	}
	for i, h := range others {
		if h == base {
			t.Errorf("variant %d has the same hash", i)
		}
	}
	if audit.AgencySalt(nil) == sha256.Sum256(nil) {
		t.Error("the salt has no domain prefix")
	}
}
