package audit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Limits of a checkpoint. MaxCheckpointSize bounds the signed note a
// Receipt carries: a checkpoint signed once by the log's key is under 300
// bytes, and 1 KiB leaves room for a few cosignatures while a Receipt stays
// well under the 8 KiB frame. MaxOriginSize bounds the origin, the key's
// name.
const (
	MaxCheckpointSize = 1024
	MaxOriginSize     = 128
)

// rootB64Size is the length of a root in base64 (32 bytes, padded).
var rootB64Size = base64.StdEncoding.EncodedLen(tlog.HashSize)

// Checkpoint is a signed tree head in the C2SP tlog-checkpoint format: the
// log's origin (its key's name), the number of leaves and the root hash.
// The central signs one per group commit; a Receipt carries it.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   tlog.Hash
}

// Body is the checkpoint's text, what the note signs:
//
//	<origin>\n<size in decimal>\n<root in base64>\n
//
// with no extension lines.
func (c Checkpoint) Body() []byte {
	b := make([]byte, 0, len(c.Origin)+1+20+1+rootB64Size+1)
	b = append(b, c.Origin...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, c.Size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, c.Root[:])
	return append(b, '\n')
}

// String is a short form for messages: "tree 64 root <base64>".
func (c Checkpoint) String() string { return fmt.Sprintf("tree %d root %s", c.Size, c.Root) }

// Sign signs the checkpoint with the log's key, whose name must be the
// checkpoint's origin, and returns the signed note.
func Sign(c Checkpoint, signer note.Signer) ([]byte, error) {
	if err := checkOrigin(c.Origin); err != nil {
		return nil, err
	}
	if c.Size > maxTreeSize {
		return nil, malformed("checkpoint", "size %d beyond what tlog addresses", c.Size)
	}
	return signNote(c.Body(), c.Origin, signer, "checkpoint")
}

// OpenCheckpoint verifies a signed checkpoint against the log's key and
// parses it strictly (ParseCheckpoint); its origin must be the key's name.
// A note signed by another key fails with ErrWrongKey naming that key, one
// whose signature does not verify with ErrBadSignature.
func OpenCheckpoint(msg []byte, key note.Verifier) (Checkpoint, error) {
	if len(msg) > MaxCheckpointSize {
		return Checkpoint{}, malformed("checkpoint", "%d bytes (at most %d)", len(msg), MaxCheckpointSize)
	}
	text, err := openNote(msg, key, "checkpoint")
	if err != nil {
		return Checkpoint{}, err
	}
	c, err := ParseCheckpoint([]byte(text))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != key.Name() {
		return Checkpoint{}, malformed("checkpoint", "origin %q, but the log's key is named %q", c.Origin, key.Name())
	}
	return c, nil
}

// ParseCheckpoint parses a checkpoint's body strictly, so that a
// checkpoint has exactly one spelling: exactly three lines, each ended by
// a newline; an origin that is a valid key name (non-empty UTF-8 with no
// space, no '+' and no control character, at most MaxOriginSize bytes); a
// size in decimal without leading zeros that tlog can address; a root of
// exactly 32 bytes in padded standard base64.
func ParseCheckpoint(body []byte) (Checkpoint, error) {
	const what = "checkpoint"
	lines, ok := splitLines(body, 3)
	if !ok {
		return Checkpoint{}, malformed(what, "not three lines each ended by a newline")
	}
	if err := checkOrigin(string(lines[0])); err != nil {
		return Checkpoint{}, err
	}
	size, ok := parseDecimal(lines[1], maxTreeSize)
	if !ok {
		return Checkpoint{}, malformed(what, "size %q is not a decimal number without leading zeros below 2^63", lines[1])
	}
	root, ok := parseHash(lines[2])
	if !ok {
		return Checkpoint{}, malformed(what, "root %q is not 32 bytes in base64", lines[2])
	}
	return Checkpoint{Origin: string(lines[0]), Size: size, Root: root}, nil
}

// splitLines splits text into exactly n lines, each ended by '\n'.
func splitLines(text []byte, n int) ([][]byte, bool) {
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return nil, false
	}
	lines := bytes.Split(text[:len(text)-1], []byte("\n"))
	return lines, len(lines) == n
}

// checkOrigin accepts an origin that note accepts as a key name and that
// prints as it is: no control characters, bounded.
func checkOrigin(origin string) error {
	switch {
	case origin == "" || len(origin) > MaxOriginSize:
		return malformed("origin", "%d bytes: want 1 to %d", len(origin), MaxOriginSize)
	case !utf8.ValidString(origin):
		return malformed("origin", "%q is not UTF-8", origin)
	case strings.ContainsFunc(origin, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '+' }):
		return malformed("origin", "%q has a space, a control character or a '+'", origin)
	}
	return nil
}

// parseDecimal reads a decimal number in its one spelling: digits only, no
// sign, no leading zero (but "0"), at most limit.
func parseDecimal(b []byte, limit uint64) (uint64, bool) {
	if len(b) == 0 || len(b) > 1 && b[0] == '0' || len(b) > 20 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil || n > limit {
		return 0, false
	}
	return n, true
}

// parseHash reads a 32-byte hash in its one base64 spelling (padded,
// standard alphabet, zero trailing bits).
func parseHash(b []byte) (tlog.Hash, bool) {
	var h tlog.Hash
	if len(b) != rootB64Size {
		return h, false
	}
	// Decode needs room for DecodedLen(44) = 33 bytes, which an input with
	// no padding would fill: decode into that, then demand 32.
	var buf [tlog.HashSize + 1]byte
	n, err := base64.StdEncoding.Strict().Decode(buf[:], b)
	copy(h[:], buf[:])
	return h, err == nil && n == tlog.HashSize
}

// signNote signs text with signer, which must be named name.
func signNote(text []byte, name string, signer note.Signer, what string) ([]byte, error) {
	if signer.Name() != name {
		return nil, malformed(what, "origin %q, but the signing key is named %q", name, signer.Name())
	}
	msg, err := note.Sign(&note.Note{Text: string(text)}, signer)
	if err != nil {
		return nil, fmt.Errorf("audit: sign %s: %w", what, err)
	}
	return msg, nil
}

// openNote verifies msg against the log's key and returns its text. Other
// signatures (a witness's cosignature) may be there too; the log's must be.
func openNote(msg []byte, key note.Verifier, what string) (string, error) {
	n, err := note.Open(msg, note.VerifierList(key))
	if err == nil {
		return n.Text, nil
	}
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		var by []string
		for _, s := range unverified.Note.UnverifiedSigs {
			by = append(by, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
		}
		return "", failf(ErrWrongKey, what, "", "signed by %s, not by %s+%08x", strings.Join(by, ", "), key.Name(), key.KeyHash())
	case errors.As(err, &invalid):
		return "", failf(ErrBadSignature, what, "", "the signature of %s+%08x does not verify", invalid.Name, invalid.Hash)
	}
	return "", failf(ErrMalformed, what, "", "not a signed note: %v", err)
}

// noteText returns the text of a signed note without verifying it: what a
// parser of a receipts file, which holds no key, reads a checkpoint's size
// from. Audit verifies the signature.
func noteText(msg []byte) (string, error) {
	_, err := note.Open(msg, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		return unverified.Note.Text, nil
	}
	return "", fmt.Errorf("not a signed note: %v", err)
}
