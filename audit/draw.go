package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/tlog"
)

// The committed mode (DRAW_NUMBER=committed): the central draws a secret
// before any bet, stores its Commitment as leaf 1, and at the draw derives
// the number from the secret and the final root (DrawNumber), revealing the
// secret in the statement. Without the mode the number is the course's
// lottery.WinningNumber.
const (
	SecretSize    = 32 // what NewSecret draws
	MinSecretSize = 16 // below this a secret could be guessed from its commitment
	MaxSecretSize = 64
	// NumberSpace is how many numbers a bet can play: 0000 to 9999.
	NumberSpace = 10000
)

// Domain prefixes of the hashes this package defines itself (the leaf's
// is leafDomain). Each ends in a NUL, which no prefix contains, so no two
// kinds of hash ever take the same input.
const (
	drawDomain    = "lottery-draw v1\x00"
	winnersDomain = "lottery-winners v1\x00"
	saltDomain    = "lottery-salt v1\x00"
)

// NewSecret draws a secret for the committed mode from rand (crypto/rand's
// Reader).
func NewSecret(rand io.Reader) ([]byte, error) {
	s := make([]byte, SecretSize)
	if _, err := io.ReadFull(rand, s); err != nil {
		return nil, fmt.Errorf("audit: draw a secret: %w", err)
	}
	return s, nil
}

// Commitment is what leaf 1 carries in committed mode: the SHA-256 of the
// secret. A secret of SecretSize random bytes cannot be found from it, and
// cannot be swapped for another with the same commitment.
func Commitment(secret []byte) [sha256.Size]byte { return sha256.Sum256(secret) }

// DrawNumber derives the committed mode's number from the secret and the
// root of the tree at the draw, which holds every bet: neither the central
// (bound by the commitment made before any bet) nor the agencies (who do
// not know the secret) choose it alone.
//
// The derivation: for counter = 0, 1, …, h = SHA-256("lottery-draw v1\0" ‖
// counter (4 bytes, big-endian) ‖ root (32 bytes) ‖ secret); each of h's
// four big-endian 8-byte words x, in order, gives the number x mod 10000
// unless x ≥ 2⁶⁴ − (2⁶⁴ mod 10000), in which case the next word is tried.
// Rejecting that last partial range makes every number exactly equally
// likely; a word is rejected with probability 1616/2⁶⁴ (under 10⁻¹⁶), so the first
// almost always decides.
func DrawNumber(secret []byte, root tlog.Hash) int {
	const limit = ^uint64(0) - (^uint64(0)%NumberSpace+1)%NumberSpace // 2⁶⁴ − (2⁶⁴ mod 10000) − 1
	buf := make([]byte, 0, len(drawDomain)+4+tlog.HashSize+len(secret))
	for counter := uint32(0); ; counter++ {
		buf = append(buf[:0], drawDomain...)
		buf = binary.BigEndian.AppendUint32(buf, counter)
		buf = append(buf, root[:]...)
		buf = append(buf, secret...)
		h := sha256.Sum256(buf)
		for i := 0; i < sha256.Size; i += 8 {
			if x := binary.BigEndian.Uint64(h[i:]); x <= limit {
				return int(x % NumberSpace)
			}
		}
	}
}

// AgencySalt is the salt of an agency's WinnersHash: the SHA-256 of
// "lottery-salt v1\0" and the rows digests (Leaf.Digest) of every batch of
// that agency, in sequence order. The agency knows them (it hashed its own
// rows) and so does an auditor holding bets.csv; other agencies do not:
// receipts carry leaf hashes, never digests. Without a salt, a document of
// 8 digits would be found from the hash in seconds.
func AgencySalt(digests [][sha256.Size]byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(saltDomain))
	for _, d := range digests {
		h.Write(d[:])
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// WinnersHash is how a statement shows an agency's winners without
// showing them: the SHA-256 of "lottery-winners v1\0", the agency's salt
// and the winners' documents in stored order, separated by "\n" (a document
// is digits, never a newline). The agency recomputes it from the winners it
// was answered.
func WinnersHash(salt [sha256.Size]byte, docs []string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(winnersDomain))
	h.Write(salt[:])
	for i, d := range docs {
		if i > 0 {
			h.Write([]byte{'\n'})
		}
		io.WriteString(h, d)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
