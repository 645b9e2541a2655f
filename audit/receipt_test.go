package audit_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"lottery/audit"
)

// frameLimit is the protocol's: no frame exceeds 8 KiB, header included.
const frameLimit = 8192

func sampleReceipts(t testing.TB) []audit.Receipt {
	t.Helper()
	signer, _ := testKey(t, testOrigin, 1)
	msg, err := audit.Sign(sampleCheckpoint, signer)
	if err != nil {
		t.Fatal(err)
	}
	full := make([]tlog.Hash, audit.MaxProofHashes)
	for i := range full {
		full[i] = hashOf(string(rune('a' + i%26)))
	}
	return []audit.Receipt{
		{Seq: 1, Leaf: 2, Checkpoint: msg, Inclusion: []tlog.Hash{hashOf("a"), hashOf("b")}},
		{Seq: 7, Leaf: 40, OldSize: 33, Checkpoint: msg, Inclusion: full[:6], Consistency: full[:5]},
		{Seq: 8, Leaf: 41, OldSize: 64, Inclusion: full[:6]}, // the checkpoint of the previous receipt
		{Seq: 1<<64 - 1, Leaf: 1<<63 - 1, OldSize: 1<<63 - 1, Checkpoint: bytes.Repeat([]byte("c"), audit.MaxCheckpointSize), Inclusion: full, Consistency: full},
		{},
	}
}

func TestReceipt_EncodeRoundTrip(t *testing.T) {
	for _, r := range sampleReceipts(t) {
		b, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := audit.DecodeReceipt(b)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("%+v decoded as %+v, %v", r, got, err)
		}
	}
}

// TestReceipt_FitsAFrame: the largest receipt leaves a protocol message
// more than 2 KiB of the frame for its header and its own fields.
func TestReceipt_FitsAFrame(t *testing.T) {
	rs := sampleReceipts(t)
	b, err := rs[3].Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != audit.MaxReceiptSize || audit.MaxReceiptSize > frameLimit-2048 {
		t.Errorf("the largest receipt is %d bytes (MaxReceiptSize %d); the frame is %d", len(b), audit.MaxReceiptSize, frameLimit)
	}
}

func TestReceipt_EncodeErr(t *testing.T) {
	tests := []struct {
		name string
		r    audit.Receipt
	}{
		{"ErrLeafBeyondTlog", audit.Receipt{Leaf: 1 << 63}},
		{"ErrOldSizeBeyondTlog", audit.Receipt{OldSize: 1 << 63}},
		{"ErrBigCheckpoint", audit.Receipt{Checkpoint: make([]byte, audit.MaxCheckpointSize+1)}},
		{"ErrLongInclusion", audit.Receipt{Inclusion: make([]tlog.Hash, audit.MaxProofHashes+1)}},
		{"ErrLongConsistency", audit.Receipt{Consistency: make([]tlog.Hash, audit.MaxProofHashes+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := tt.r.Encode(); !errors.Is(err, audit.ErrMalformed) {
				t.Errorf("encoded %d bytes, err %v", len(b), err)
			}
		})
	}
}

func TestDecodeReceipt_Err(t *testing.T) {
	valid, err := sampleReceipts(t)[1].Encode()
	if err != nil {
		t.Fatal(err)
	}
	with := func(edit func(b []byte) []byte) []byte { return edit(bytes.Clone(valid)) }
	ckLen := int(binary.BigEndian.Uint16(valid[25:]))
	inclAt := 27 + ckLen
	tests := []struct {
		name string
		b    []byte
	}{
		{"ErrEmpty", nil},
		{"ErrShortHeader", valid[:26]},
		{"ErrVersion", with(func(b []byte) []byte { b[0] = 2; return b })},
		{"ErrLeafBeyondTlog", with(func(b []byte) []byte { b[9] = 0x80; return b })},
		{"ErrOldSizeBeyondTlog", with(func(b []byte) []byte { b[17] = 0x80; return b })},
		{"ErrCheckpointPastEnd", with(func(b []byte) []byte { binary.BigEndian.PutUint16(b[25:], uint16(len(b))); return b })},
		{"ErrCheckpointTooBig", with(func(b []byte) []byte { binary.BigEndian.PutUint16(b[25:], audit.MaxCheckpointSize+1); return b })},
		{"ErrInclusionTooLong", with(func(b []byte) []byte { b[inclAt] = audit.MaxProofHashes + 1; return b })},
		{"ErrInclusionPastEnd", with(func(b []byte) []byte { b[inclAt] = 60; return b })},
		{"ErrNoConsistencyCount", valid[:len(valid)-5*32-1]},
		{"ErrTruncated", valid[:len(valid)-1]},
		{"ErrTrailing", append(bytes.Clone(valid), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := audit.DecodeReceipt(tt.b)
			if !errors.Is(err, audit.ErrMalformed) {
				t.Errorf("decoded %+v, err %v", r, err)
			}
		})
	}
}

// FuzzDecodeReceipt: DecodeReceipt never panics, never returns more than
// its limits, and a receipt that decodes encodes back to its bytes.
func FuzzDecodeReceipt(f *testing.F) {
	for _, r := range sampleReceipts(f) {
		b, _ := r.Encode()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := audit.DecodeReceipt(b)
		if err != nil {
			return
		}
		if len(r.Checkpoint) > audit.MaxCheckpointSize || len(r.Inclusion) > audit.MaxProofHashes || len(r.Consistency) > audit.MaxProofHashes {
			t.Fatalf("decoded beyond the limits: %+v", r)
		}
		got, err := r.Encode()
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("% x decoded as %+v, encodes as % x (%v)", b, r, got, err)
		}
	})
}

// TestNewReceipt: the central's receipts carry a checkpoint and the proof
// from the agency's last size, or, when the agency holds that checkpoint
// already, neither.
func TestNewReceipt(t *testing.T) {
	signer, _ := testKey(t, testOrigin, 1)
	tr := treeOf(t, leafHashes(20))
	cp, err := audit.NewSignedCheckpoint(tr, testOrigin, 20, signer)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Root != tr.Root() || cp.Size != 20 {
		t.Fatalf("signed %s", cp.Checkpoint)
	}
	tests := []struct {
		name       string
		oldSize    uint64
		checkpoint bool
		proof      bool
	}{
		{"OKFirst", 0, true, false},
		{"OKGrown", 13, true, true},
		{"OKSame", 20, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := audit.NewReceipt(tr, 5, 17, cp, tt.oldSize)
			if err != nil {
				t.Fatal(err)
			}
			if r.Seq != 5 || r.Leaf != 17 || r.OldSize != tt.oldSize || (r.Checkpoint != nil) != tt.checkpoint || (r.Consistency != nil) != tt.proof || len(r.Inclusion) == 0 {
				t.Errorf("receipt %+v", r)
			}
		})
	}
	t.Run("ErrAgencyAhead", func(t *testing.T) {
		if _, err := audit.NewReceipt(tr, 5, 17, cp, 21); err == nil {
			t.Error("no error")
		}
	})
	t.Run("ErrLeafBeyond", func(t *testing.T) {
		if _, err := audit.NewReceipt(tr, 5, 20, cp, 0); err == nil {
			t.Error("no error")
		}
	})
}
