package audit

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Receipt is what an ack carries once a batch (or a "finished") is
// durable: where its leaf is, a signed checkpoint of a tree that holds it,
// the proof that it does, and the proof that this tree extends the last one
// the agency accepted on this connection.
type Receipt struct {
	Seq         uint64      // the batch acked (for a finished, the last batch)
	Leaf        uint64      // the leaf's index: its journal record's number
	Checkpoint  []byte      // the signed checkpoint; empty: the one the previous receipt brought
	Inclusion   []tlog.Hash // Leaf in the checkpoint's tree
	OldSize     uint64      // the size of the agency's previous checkpoint (0: none)
	Consistency []tlog.Hash // from the tree of OldSize leaves to the checkpoint's
}

// A receipt's encoding, version 1, big-endian, with every length checked
// before anything is allocated:
//
//	offset  size   field
//	0       1      version (1)
//	1       8      sequence
//	9       8      leaf index            (< 2^63)
//	17      8      old size              (< 2^63)
//	25      2      checkpoint length c   (0 … MaxCheckpointSize)
//	27      c      checkpoint            (a signed note)
//	27+c    1      inclusion hashes i    (0 … MaxProofHashes)
//	28+c    32·i   inclusion proof
//	…       1      consistency hashes k  (0 … MaxProofHashes)
//	…       32·k   consistency proof
//
// MaxReceiptSize, 5149 bytes, leaves a protocol message room for its own
// header and fields under the 8 KiB frame.
const (
	ReceiptVersion    = 1
	receiptHeaderSize = 1 + 8 + 8 + 8 + 2
	MaxReceiptSize    = receiptHeaderSize + MaxCheckpointSize + 2*(1+MaxProofHashes*tlog.HashSize)
)

// Encode returns the receipt's encoding; it fails on a receipt over the
// limits, which no honest central builds.
func (r Receipt) Encode() ([]byte, error) { return r.AppendEncode(nil) }

// AppendEncode appends the receipt's encoding to dst.
func (r Receipt) AppendEncode(dst []byte) ([]byte, error) {
	const what = "receipt"
	switch {
	case r.Leaf > maxTreeSize || r.OldSize > maxTreeSize:
		return nil, malformed(what, "leaf %d, old size %d: beyond what tlog addresses", r.Leaf, r.OldSize)
	case len(r.Checkpoint) > MaxCheckpointSize:
		return nil, malformed(what, "a checkpoint of %d bytes (at most %d)", len(r.Checkpoint), MaxCheckpointSize)
	case len(r.Inclusion) > MaxProofHashes || len(r.Consistency) > MaxProofHashes:
		return nil, malformed(what, "proofs of %d and %d hashes (at most %d)", len(r.Inclusion), len(r.Consistency), MaxProofHashes)
	}
	dst = append(dst, ReceiptVersion)
	dst = binary.BigEndian.AppendUint64(dst, r.Seq)
	dst = binary.BigEndian.AppendUint64(dst, r.Leaf)
	dst = binary.BigEndian.AppendUint64(dst, r.OldSize)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(r.Checkpoint)))
	dst = append(dst, r.Checkpoint...)
	dst = appendHashes(dst, r.Inclusion)
	return appendHashes(dst, r.Consistency), nil
}

func appendHashes(dst []byte, hs []tlog.Hash) []byte {
	dst = append(dst, byte(len(hs)))
	for _, h := range hs {
		dst = append(dst, h[:]...)
	}
	return dst
}

// DecodeReceipt parses a receipt strictly: version 1, every length within
// its limit and within b, no byte left over. The receipt owns its memory
// (nothing aliases b); an empty checkpoint or proof decodes as nil.
func DecodeReceipt(b []byte) (Receipt, error) {
	const what = "receipt"
	if len(b) < receiptHeaderSize {
		return Receipt{}, malformed(what, "%d bytes, shorter than its %d-byte header", len(b), receiptHeaderSize)
	}
	if b[0] != ReceiptVersion {
		return Receipt{}, malformed(what, "version %d, want %d", b[0], ReceiptVersion)
	}
	r := Receipt{
		Seq:     binary.BigEndian.Uint64(b[1:]),
		Leaf:    binary.BigEndian.Uint64(b[9:]),
		OldSize: binary.BigEndian.Uint64(b[17:]),
	}
	if r.Leaf > maxTreeSize || r.OldSize > maxTreeSize {
		return Receipt{}, malformed(what, "leaf %d, old size %d: beyond what tlog addresses", r.Leaf, r.OldSize)
	}
	n := int(binary.BigEndian.Uint16(b[25:]))
	rest := b[receiptHeaderSize:]
	if n > MaxCheckpointSize || n > len(rest) {
		return Receipt{}, malformed(what, "a checkpoint of %d bytes (at most %d, and %d left)", n, MaxCheckpointSize, len(rest))
	}
	if n > 0 {
		r.Checkpoint = append([]byte(nil), rest[:n]...)
	}
	rest = rest[n:]
	var err error
	if r.Inclusion, rest, err = decodeHashes(rest, "inclusion proof"); err != nil {
		return Receipt{}, err
	}
	if r.Consistency, rest, err = decodeHashes(rest, "consistency proof"); err != nil {
		return Receipt{}, err
	}
	if len(rest) != 0 {
		return Receipt{}, malformed(what, "%d bytes after the consistency proof", len(rest))
	}
	return r, nil
}

func decodeHashes(b []byte, what string) ([]tlog.Hash, []byte, error) {
	if len(b) < 1 {
		return nil, nil, malformed("receipt", "ends before its %s", what)
	}
	k := int(b[0])
	b = b[1:]
	if k > MaxProofHashes || k*tlog.HashSize > len(b) {
		return nil, nil, malformed("receipt", "an %s of %d hashes (at most %d, and %d bytes left)", what, k, MaxProofHashes, len(b))
	}
	if k == 0 {
		return nil, b, nil
	}
	hs := make([]tlog.Hash, k)
	for i := range hs {
		copy(hs[i][:], b[i*tlog.HashSize:])
	}
	return hs, b[k*tlog.HashSize:], nil
}

// SignedCheckpoint is a checkpoint with its signed note: what the central
// keeps of the last one it signed, to hand out in receipts.
type SignedCheckpoint struct {
	Checkpoint
	Note []byte
}

// NewSignedCheckpoint signs the checkpoint of the tree of size leaves held
// by r: what the central does once per group commit.
func NewSignedCheckpoint(r tlog.HashReader, origin string, size uint64, signer note.Signer) (SignedCheckpoint, error) {
	root, err := TreeRoot(r, size)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	c := Checkpoint{Origin: origin, Size: size, Root: root}
	msg, err := Sign(c, signer)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	return SignedCheckpoint{Checkpoint: c, Note: msg}, nil
}

// NewReceipt builds the receipt of batch seq (or a finished after batch
// seq) stored at leaf, in the tree of the signed checkpoint cp, for an
// agency whose last checkpoint on this connection had oldSize leaves (0:
// none yet). When oldSize is cp's size the agency already holds cp, and
// the receipt leaves it out; otherwise it carries cp and the consistency
// proof from oldSize. r holds the central's tree.
func NewReceipt(r tlog.HashReader, seq, leaf uint64, cp SignedCheckpoint, oldSize uint64) (Receipt, error) {
	if oldSize > cp.Size {
		return Receipt{}, fmt.Errorf("audit: the agency holds a checkpoint of %d leaves, the tree has %d", oldSize, cp.Size)
	}
	incl, err := ProveInclusion(r, cp.Size, leaf)
	if err != nil {
		return Receipt{}, err
	}
	rc := Receipt{Seq: seq, Leaf: leaf, Inclusion: incl, OldSize: oldSize}
	if oldSize == cp.Size {
		return rc, nil
	}
	if rc.Consistency, err = ProveConsistency(r, oldSize, cp.Size); err != nil {
		return Receipt{}, err
	}
	rc.Checkpoint = cp.Note
	return rc, nil
}
