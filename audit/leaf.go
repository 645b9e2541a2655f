package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// LeafKind says what a journal record, hence a leaf, records. The values
// are the journal's record kinds (storage/journal.go), so a leaf's kind is
// its record's byte.
type LeafKind uint8

const (
	KindBatch    LeafKind = 1 // an agency's batch Seq of Count bets
	KindFinished LeafKind = 2 // the agency finished after its batch Seq
	KindBase     LeafKind = 3 // always leaf 0: the rows bets.csv held before the journal
	KindCommit   LeafKind = 4 // leaf 1 in committed mode: the commitment to the draw's secret
)

// String names the kind as the receipts file and the reports do.
func (k LeafKind) String() string {
	switch k {
	case KindBatch:
		return "batch"
	case KindFinished:
		return "finished"
	case KindBase:
		return "base"
	case KindCommit:
		return "commit"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Leaf is what one journal record says, in the form that is hashed into
// the tree. Digest is the full SHA-256 of the exact bets.csv bytes the
// record covers (RowsDigest) for a base or batch leaf, zero for a finished
// one, and the Commitment to the draw's secret for a commit leaf.
//
// An agency builds the Leaf of its own batch from its own rows
// (csvrow.AppendBetRow gives the bytes the central stores), so it checks
// its receipt against a hash it computed itself, trusting the central for
// nothing.
type Leaf struct {
	Kind   LeafKind
	Agency uint32 // 0 for base and commit
	Seq    uint64 // batch number; for finished, the last batch; 0 for base and commit
	Count  uint32 // bets in the batch or base; 0 for finished and commit
	Digest [sha256.Size]byte
}

// A leaf's encoding, version 1, is LeafSize (63) bytes, big-endian:
//
//	offset  size  field
//	0       13    "lottery-leaf\x00"   domain prefix
//	13      1     version (1)
//	14      1     kind (LeafKind)
//	15      4     agency
//	19      8     sequence
//	27      4     count
//	31      32    digest
//
// The domain prefix keeps a leaf from ever being mistaken for another
// hashed text of this project, or of any other log hashing with
// tlog.RecordHash; the version byte lets a later layout coexist.
const (
	leafDomain  = "lottery-leaf\x00"
	LeafVersion = 1
	LeafSize    = len(leafDomain) + 1 + 1 + 4 + 8 + 4 + sha256.Size

	leafKindOffset = len(leafDomain) + 1
)

// BatchLeaf is the leaf of batch seq of the agency, whose count bets are
// rows: the exact bytes the central stores (csvrow.AppendBetRow per bet).
func BatchLeaf(agency uint32, seq uint64, count uint32, rows []byte) Leaf {
	return Leaf{Kind: KindBatch, Agency: agency, Seq: seq, Count: count, Digest: RowsDigest(rows)}
}

// FinishedLeaf is the leaf of the agency's "finished after batch lastSeq".
func FinishedLeaf(agency uint32, lastSeq uint64) Leaf {
	return Leaf{Kind: KindFinished, Agency: agency, Seq: lastSeq}
}

// BaseLeaf is leaf 0: the count rows bets.csv held before the journal.
func BaseLeaf(count uint32, rows []byte) Leaf {
	return Leaf{Kind: KindBase, Count: count, Digest: RowsDigest(rows)}
}

// CommitLeaf is leaf 1 in committed mode: the commitment to the secret the
// draw number is derived from (Commitment).
func CommitLeaf(commitment [sha256.Size]byte) Leaf {
	return Leaf{Kind: KindCommit, Digest: commitment}
}

// RowsDigest is the digest a base or batch leaf carries: SHA-256 of the
// bets.csv bytes it covers.
func RowsDigest(rows []byte) [sha256.Size]byte { return sha256.Sum256(rows) }

// Append appends the leaf's encoding to dst.
func (l Leaf) Append(dst []byte) []byte {
	dst = append(dst, leafDomain...)
	dst = append(dst, LeafVersion, byte(l.Kind))
	dst = binary.BigEndian.AppendUint32(dst, l.Agency)
	dst = binary.BigEndian.AppendUint64(dst, l.Seq)
	dst = binary.BigEndian.AppendUint32(dst, l.Count)
	return append(dst, l.Digest[:]...)
}

// Encode returns the leaf's LeafSize bytes.
func (l Leaf) Encode() []byte { return l.Append(make([]byte, 0, LeafSize)) }

// Hash is the leaf's hash in the tree: tlog.RecordHash of its encoding.
func (l Leaf) Hash() tlog.Hash {
	var buf [LeafSize]byte
	return tlog.RecordHash(l.Append(buf[:0]))
}

// DecodeLeaf parses a leaf's encoding strictly: exactly LeafSize bytes, the
// domain prefix, version 1, and fields that fit the kind (Check).
func DecodeLeaf(b []byte) (Leaf, error) {
	const what = "leaf"
	if len(b) != LeafSize {
		return Leaf{}, malformed(what, "%d bytes, want %d", len(b), LeafSize)
	}
	if !bytes.HasPrefix(b, []byte(leafDomain)) {
		return Leaf{}, malformed(what, "no %q prefix", leafDomain)
	}
	if v := b[len(leafDomain)]; v != LeafVersion {
		return Leaf{}, malformed(what, "version %d, want %d", v, LeafVersion)
	}
	p := b[leafKindOffset:]
	l := Leaf{
		Kind:   LeafKind(p[0]),
		Agency: binary.BigEndian.Uint32(p[1:]),
		Seq:    binary.BigEndian.Uint64(p[5:]),
		Count:  binary.BigEndian.Uint32(p[13:]),
	}
	copy(l.Digest[:], p[17:])
	if err := l.Check(); err != nil {
		return Leaf{}, err
	}
	return l, nil
}

// Check reports a leaf whose fields do not fit its kind, as the journal
// writes them: a batch or finished leaf names an agency (≥ 1) and a batch
// leaf a sequence number (≥ 1); base and commit leaves name neither; a
// finished leaf has no bets and no digest, a commit leaf no bets.
func (l Leaf) Check() error {
	bad := func(format string, args ...any) error {
		return malformed(l.Kind.String()+" leaf", format, args...)
	}
	var zero [sha256.Size]byte
	switch l.Kind {
	case KindBatch:
		if l.Agency == 0 || l.Seq == 0 {
			return bad("agency %d, sequence %d: both start at 1", l.Agency, l.Seq)
		}
	case KindFinished:
		if l.Agency == 0 || l.Count != 0 || l.Digest != zero {
			return bad("agency %d, count %d: names an agency, has no bets and no digest", l.Agency, l.Count)
		}
	case KindBase:
		if l.Agency != 0 || l.Seq != 0 {
			return bad("agency %d, sequence %d: names neither", l.Agency, l.Seq)
		}
	case KindCommit:
		if l.Agency != 0 || l.Seq != 0 || l.Count != 0 {
			return bad("agency %d, sequence %d, count %d: names none", l.Agency, l.Seq, l.Count)
		}
	default:
		return malformed("leaf", "unknown kind %d", uint8(l.Kind))
	}
	return nil
}

// String describes the leaf as an error message names it.
func (l Leaf) String() string {
	switch l.Kind {
	case KindBatch:
		return fmt.Sprintf("batch %d of agency %d", l.Seq, l.Agency)
	case KindFinished:
		return fmt.Sprintf("agency %d's finished after batch %d", l.Agency, l.Seq)
	case KindBase:
		return fmt.Sprintf("the base record (%d rows)", l.Count)
	case KindCommit:
		return "the commitment"
	}
	return l.Kind.String() + " leaf"
}

// LocatedLeaf is a leaf and where its record is, as a reader of the
// central's files (storage's) gives it to Audit: what a report names when
// the leaf is wrong. A location unknown is zero.
type LocatedLeaf struct {
	Leaf
	JournalOffset int64 // where its record starts in the journal
	BetsStart     int64 // the bets.csv bytes it covers: [BetsStart, BetsEnd)
	BetsEnd       int64
}
