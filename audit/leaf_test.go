package audit_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"lottery/audit"
)

// sampleLeaves are leaves of every kind, with extreme values.
var sampleLeaves = []audit.Leaf{
	audit.BaseLeaf(0, nil),
	audit.BaseLeaf(78_697, []byte("1,Ana,Paz,01234567,1990-05-17,7574\r\n")),
	audit.CommitLeaf(audit.Commitment([]byte("a secret of the central's"))),
	audit.BatchLeaf(1, 1, 1, []byte("1,Ana,Paz,01234567,1990-05-17,7574\r\n")),
	{Kind: audit.KindBatch, Agency: 1<<32 - 1, Seq: 1<<64 - 1, Count: 1<<32 - 1, Digest: [32]byte{0xff}},
	audit.FinishedLeaf(3, 0),
	audit.FinishedLeaf(3, 17),
}

func TestLeaf_EncodeRoundTrip(t *testing.T) {
	seen := map[tlog.Hash]bool{}
	for _, l := range sampleLeaves {
		b := l.Encode()
		if len(b) != audit.LeafSize {
			t.Fatalf("%v: %d bytes, want %d", l, len(b), audit.LeafSize)
		}
		got, err := audit.DecodeLeaf(b)
		if err != nil || got != l {
			t.Errorf("%v: decoded %+v, %v", l, got, err)
		}
		if h := l.Hash(); h != tlog.RecordHash(b) || seen[h] {
			t.Errorf("%v: hash %s is not RecordHash of its encoding, or not unique", l, h)
		} else {
			seen[h] = true
		}
	}
}

func TestLeaf_Kinds(t *testing.T) {
	// The journal's record kinds (storage/journal.go): never renumber.
	for k, want := range map[audit.LeafKind]uint8{audit.KindBatch: 1, audit.KindFinished: 2, audit.KindBase: 3, audit.KindCommit: 4} {
		if uint8(k) != want {
			t.Errorf("%s = %d, want %d", k, k, want)
		}
	}
}

func TestBatchLeaf_DigestIsSHA256OfRows(t *testing.T) {
	rows := []byte("2,Juan,Pérez,30904465,1999-03-17,1234\r\n")
	if l := audit.BatchLeaf(2, 1, 1, rows); l.Digest != sha256.Sum256(rows) || audit.RowsDigest(rows) != l.Digest {
		t.Errorf("digest %x", l.Digest)
	}
}

func TestDecodeLeaf_Err(t *testing.T) {
	valid := audit.BatchLeaf(1, 1, 1, nil).Encode()
	with := func(at int, v byte) []byte {
		b := bytes.Clone(valid)
		b[at] = v
		return b
	}
	encode := func(l audit.Leaf) []byte { return l.Encode() }
	tests := []struct {
		name string
		b    []byte
	}{
		{"ErrEmpty", nil},
		{"ErrShort", valid[:audit.LeafSize-1]},
		{"ErrLong", append(bytes.Clone(valid), 0)},
		{"ErrPrefix", with(0, 'L')},
		{"ErrVersion", with(13, 2)},
		{"ErrKindZero", with(14, 0)},
		{"ErrKindUnknown", with(14, 5)},
		{"ErrBatchAgencyZero", encode(audit.Leaf{Kind: audit.KindBatch, Seq: 1})},
		{"ErrBatchSeqZero", encode(audit.Leaf{Kind: audit.KindBatch, Agency: 1})},
		{"ErrFinishedAgencyZero", encode(audit.Leaf{Kind: audit.KindFinished})},
		{"ErrFinishedWithBets", encode(audit.Leaf{Kind: audit.KindFinished, Agency: 1, Count: 1})},
		{"ErrFinishedWithDigest", encode(audit.Leaf{Kind: audit.KindFinished, Agency: 1, Digest: [32]byte{1}})},
		{"ErrBaseWithAgency", encode(audit.Leaf{Kind: audit.KindBase, Agency: 1})},
		{"ErrBaseWithSeq", encode(audit.Leaf{Kind: audit.KindBase, Seq: 1})},
		{"ErrCommitWithCount", encode(audit.Leaf{Kind: audit.KindCommit, Count: 1})},
		{"ErrCommitWithAgency", encode(audit.Leaf{Kind: audit.KindCommit, Agency: 1})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := audit.DecodeLeaf(tt.b)
			if !errors.Is(err, audit.ErrMalformed) {
				t.Errorf("decoded %+v, err %v; want ErrMalformed", l, err)
			}
		})
	}
}

// FuzzDecodeLeaf: DecodeLeaf never panics, and a leaf that decodes
// encodes back to exactly its bytes: one spelling per leaf, hence one hash.
func FuzzDecodeLeaf(f *testing.F) {
	for _, l := range sampleLeaves {
		f.Add(l.Encode())
	}
	f.Add(make([]byte, audit.LeafSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := audit.DecodeLeaf(b)
		if err != nil {
			return
		}
		if l.Check() != nil {
			t.Fatalf("decoded an impossible leaf %+v", l)
		}
		if got := l.Encode(); !bytes.Equal(got, b) {
			t.Fatalf("% x decoded as %+v, encodes as % x", b, l, got)
		}
	})
}
