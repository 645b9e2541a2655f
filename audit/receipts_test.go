package audit_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"lottery/audit"
)

// TestReceipts_RoundTrip: what an agency's ReceiptWriter wrote during a
// draw reads back as the receipts its verifier accepted.
func TestReceipts_RoundTrip(t *testing.T) {
	d := newDraw(t, smallDraw)
	a := d.agencies[1]
	f, err := audit.ReadReceipts(bytes.NewReader(a.sink.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if f.Origin != testOrigin || f.Agency != 2 || f.Statement == nil || !bytes.Equal(f.Statement, d.signed) {
		t.Fatalf("file %+v", f)
	}
	batches := 0
	for i, r := range f.Records {
		switch r.Kind {
		case audit.KindBatch:
			batches++
			want := audit.BatchLeaf(2, r.Seq, uint32(smallDraw.perBatch), rowsOf(betsOf(2, r.Seq, smallDraw.perBatch)))
			if r.Seq != uint64(i+1) || r.Hash != want.Hash() || r.Count != want.Count {
				t.Errorf("line %d: %+v", r.Line, r)
			}
		case audit.KindFinished:
			if i != len(f.Records)-1 || r.Seq != uint64(a.batches) || r.Hash != audit.FinishedLeaf(2, r.Seq).Hash() {
				t.Errorf("line %d: %+v", r.Line, r)
			}
		}
		if h, _ := d.tree.LeafHash(r.Leaf); h != r.Hash {
			t.Errorf("line %d: leaf %d is not the log's", r.Line, r.Leaf)
		}
	}
	if batches != a.batches || len(f.Checkpoints) == 0 {
		t.Errorf("%d batches, %d checkpoints", batches, len(f.Checkpoints))
	}
	last, ok := f.LastCheckpoint()
	if held, _ := a.ver.Last(); !ok || last.Checkpoint != held.Checkpoint || !bytes.Equal(last.Note, held.Note) {
		t.Errorf("last checkpoint %+v, the verifier holds %+v", last.Checkpoint, held.Checkpoint)
	}
	// Synced at the statement and on Close.
	if a.sink.syncs != 2 {
		t.Errorf("%d syncs", a.sink.syncs)
	}
	text := a.sink.String()
	if !strings.HasPrefix(text, "lottery-receipts v1\norigin "+testOrigin+"\nagency 2\ncheckpoint ") {
		t.Errorf("file starts %q", text[:80])
	}
}

func TestReadReceipts_Err(t *testing.T) {
	signer, _ := testKey(t, testOrigin, 1)
	ck := func(size uint64) string {
		msg, err := audit.Sign(audit.Checkpoint{Origin: testOrigin, Size: size, Root: hashOf("r")}, signer)
		if err != nil {
			t.Fatal(err)
		}
		return "checkpoint " + base64.StdEncoding.EncodeToString(msg) + "\n"
	}
	other, _ := testKey(t, "other", 1)
	otherMsg, _ := audit.Sign(audit.Checkpoint{Origin: "other", Size: 5, Root: hashOf("r")}, other)
	h := hashOf("leaf").String()
	header := "lottery-receipts v1\norigin " + testOrigin + "\nagency 2\n"
	tests := []struct {
		name   string
		text   string
		header bool // the header parsed: a file comes with the error
		line   string
	}{
		{"ErrEmpty", "", false, ""},
		{"ErrMagic", "lottery-receipts v2\n", false, "line 1"},
		{"ErrNoOrigin", "lottery-receipts v1\nagency 2\n", false, "line 2"},
		{"ErrBadOrigin", "lottery-receipts v1\norigin a+b\nagency 2\n", false, "line 2"},
		{"ErrAgencyZero", "lottery-receipts v1\norigin x\nagency 0\n", false, "line 3"},
		{"ErrAgencyLeadingZero", "lottery-receipts v1\norigin x\nagency 02\n", false, "line 3"},
		{"ErrUnknownLine", header + "receipt 1\n", true, "line 4"},
		{"ErrBatchBeforeCheckpoint", header + "batch 1 5 1 5 " + h + "\n", true, "line 4"},
		{"ErrBatchOtherSize", header + ck(5) + "batch 1 5 1 6 " + h + "\n", true, "line 5"},
		{"ErrBatchLeafBeyond", header + ck(5) + "batch 1 5 5 5 " + h + "\n", true, "line 5"},
		{"ErrBatchFields", header + ck(5) + "batch 1 5 1 5\n", true, "line 5"},
		{"ErrBatchHash", header + ck(5) + "batch 1 5 1 5 " + h[:43] + "\n", true, "line 5"},
		{"ErrBatchDoubleSpace", header + ck(5) + "batch 1  5 1 5 " + h + "\n", true, "line 5"},
		{"ErrFinishedWithCount", header + ck(5) + "finished 1 5 1 5 " + h + "\n", true, "line 5"},
		{"ErrCheckpointNotBase64", header + "checkpoint !!!\n", true, "line 4"},
		{"ErrCheckpointNotANote", header + "checkpoint " + base64.StdEncoding.EncodeToString([]byte("x\n")) + "\n", true, "line 4"},
		{"ErrCheckpointOtherOrigin", header + "checkpoint " + base64.StdEncoding.EncodeToString(otherMsg) + "\n", true, "line 4"},
		{"ErrCheckpointTooBig", header + "checkpoint " + base64.StdEncoding.EncodeToString(make([]byte, audit.MaxCheckpointSize+1)) + "\n", true, "line 4"},
		{"ErrLineAfterStatement", header + "statement " + base64.StdEncoding.EncodeToString([]byte("s")) + "\n" + ck(5), true, "line 5"},
		{"ErrTornLastLine", header + ck(5) + "batch 1 5 1 5 " + h, true, "line 5"},
		{"ErrCRLF", strings.ReplaceAll(header, "\n", "\r\n"), false, "line 1"},
		{"ErrTooLong", header + "statement " + strings.Repeat("A", audit.MaxStatementSize*2) + "\n", true, "line 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := audit.ReadReceipts(strings.NewReader(tt.text))
			if !errors.Is(err, audit.ErrMalformed) || !strings.Contains(err.Error(), tt.line) {
				t.Fatalf("err %v, want ErrMalformed at %q", err, tt.line)
			}
			if (f != nil) != tt.header {
				t.Errorf("file %+v with the error, want one: %v", f, tt.header)
			}
		})
	}
	t.Run("OKPartialFileWithTheError", func(t *testing.T) {
		f, err := audit.ReadReceipts(strings.NewReader(header + ck(5) + "batch 1 5 1 5 " + h + "\nbatch 2 5 2 5 " + h))
		if err == nil || f == nil || len(f.Records) != 1 || len(f.Checkpoints) != 1 {
			t.Errorf("file %+v, err %v", f, err)
		}
	})
}

// FuzzReadReceipts: ReadReceipts never panics, and every line it accepts
// is within its limits.
func FuzzReadReceipts(f *testing.F) {
	d := newDraw(f, drawOptions{agencies: 1, batches: 2, perBatch: 2, group: 1})
	f.Add(d.agencies[0].sink.Bytes())
	f.Add([]byte("lottery-receipts v1\norigin x\nagency 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rf, err := audit.ReadReceipts(bytes.NewReader(b))
		if rf == nil {
			if err == nil {
				t.Fatal("no file and no error")
			}
			return
		}
		for _, c := range rf.Checkpoints {
			if len(c.Note) > audit.MaxCheckpointSize || c.Checkpoint.Origin != rf.Origin {
				t.Fatalf("checkpoint %+v", c)
			}
		}
		for _, r := range rf.Records {
			if r.Leaf >= r.TreeSize || r.Kind != audit.KindBatch && r.Kind != audit.KindFinished {
				t.Fatalf("record %+v", r)
			}
		}
	})
}

// failingSink fails its writes after n of them.
type failingSink struct {
	memSink
	n int
}

var errDisk = errors.New("disk full")

func (s *failingSink) Write(p []byte) (int, error) {
	if s.n == 0 {
		return 0, errDisk
	}
	s.n--
	return s.memSink.Write(p)
}

func TestReceiptWriter_Err(t *testing.T) {
	s := &failingSink{n: 1}
	w, err := audit.NewReceiptWriter(s, testOrigin, 1)
	if err != nil {
		t.Fatal(err)
	}
	stored := audit.Stored{Kind: audit.KindBatch, Seq: 1, Count: 1, Leaf: 1, TreeSize: 2}
	if err := w.Record(stored); !errors.Is(err, errDisk) {
		t.Fatalf("err %v", err)
	}
	s.n = 10
	if err := w.Record(stored); !errors.Is(err, errDisk) {
		t.Errorf("the error did not stick: %v", err)
	}
	if err := w.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, errDisk) {
		t.Errorf("second Close: %v", err)
	}

	t.Run("ErrClosed", func(t *testing.T) {
		w, _ := audit.NewReceiptWriter(&memSink{}, testOrigin, 1)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := w.Record(stored); err == nil {
			t.Error("wrote to a closed file")
		}
	})
	t.Run("ErrHeader", func(t *testing.T) {
		if _, err := audit.NewReceiptWriter(&memSink{}, "a b", 1); err == nil {
			t.Error("bad origin")
		}
		if _, err := audit.NewReceiptWriter(&memSink{}, testOrigin, 0); err == nil {
			t.Error("agency 0")
		}
	})
	t.Run("ErrKind", func(t *testing.T) {
		w, _ := audit.NewReceiptWriter(&memSink{}, testOrigin, 1)
		if err := w.Record(audit.Stored{Kind: audit.KindBase}); err == nil {
			t.Error("wrote a base receipt")
		}
	})
}

// TestAppendReceipts: an agency that restarts reads its file back, resumes
// its verifier from the last checkpoint and appends.
func TestAppendReceipts(t *testing.T) {
	signer, key := testKey(t, testOrigin, 1)
	c := newCentral(t, signer)
	sink := &memSink{}
	w, err := audit.NewReceiptWriter(sink, testOrigin, 1)
	if err != nil {
		t.Fatal(err)
	}
	v := newTestVerifier(t, key)
	leaf := c.add(batch(1))
	s, err := v.Accept(c.receipt(1, leaf, c.sign(), 0), batch(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Record(s); err != nil {
		t.Fatal(err)
	}
	// Restart.
	f, err := audit.ReadReceipts(bytes.NewReader(sink.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	last, _ := f.LastCheckpoint()
	v = newTestVerifier(t, key)
	if err := v.Resume(last.Note); err != nil {
		t.Fatal(err)
	}
	w = audit.AppendReceipts(sink)
	leaf = c.add(batch(2))
	if s, err = v.Accept(c.receipt(2, leaf, c.sign(), v.Size()), batch(2)); err != nil {
		t.Fatal(err)
	}
	if err := w.Record(s); err != nil {
		t.Fatal(err)
	}
	f, err = audit.ReadReceipts(bytes.NewReader(sink.Bytes()))
	if err != nil || len(f.Records) != 2 || len(f.Checkpoints) != 2 {
		t.Fatalf("file %+v, %v", f, err)
	}
}
