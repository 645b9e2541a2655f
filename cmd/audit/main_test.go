package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"lottery/audit"
	"lottery/csvrow"
	"lottery/pki"
)

// fakeSource is a LeafSource in memory: what storage's reader gives.
type fakeSource struct {
	leaves []audit.LocatedLeaf
	rows   [][3]any // agency, document, number
	closed bool
}

func (s *fakeSource) Leaves() ([]audit.LocatedLeaf, error) { return s.leaves, nil }

func (s *fakeSource) Rows(yield func(uint32, string, int) bool) error {
	for _, r := range s.rows {
		if !yield(r[0].(uint32), r[1].(string), r[2].(int)) {
			break
		}
	}
	return nil
}

func (s *fakeSource) Close() error { s.closed = true; return nil }

// fixture is an honest draw of one agency and one bet, on disk: the log
// key, the agency's receipts file, and the source of the central's files.
type fixture struct {
	dir      string
	pub      string
	receipts string
	src      *fakeSource
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.IssueLogKey(dir, ""); err != nil {
		t.Fatal(err)
	}
	signer, err := pki.ReadLogSigner(filepath.Join(dir, pki.LogKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.ReadLogVerifier(filepath.Join(dir, pki.LogPubFile))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, pub: filepath.Join(dir, pki.LogPubFile), receipts: filepath.Join(dir, "agency-1.receipts"), src: &fakeSource{}}
	var tree audit.Tree
	var end int64
	add := func(l audit.Leaf, rows []byte) uint64 {
		i := tree.Size()
		if err := tree.AppendLeaf(l); err != nil {
			t.Fatal(err)
		}
		f.src.leaves = append(f.src.leaves, audit.LocatedLeaf{Leaf: l, JournalOffset: 8 + 64*int64(i), BetsStart: end, BetsEnd: end + int64(len(rows))})
		end += int64(len(rows))
		return i
	}
	add(audit.BaseLeaf(0, nil), nil)
	rows := csvrow.AppendBetRow(nil, 1, "Ana", "Paz", "01234567", "1990-05-17", 7574)
	f.src.rows = [][3]any{{uint32(1), "01234567", 7574}}
	batch := audit.BatchLeaf(1, 1, 1, rows)
	leaves := []audit.Leaf{batch, audit.FinishedLeaf(1, 1)}
	at := []uint64{add(batch, rows), add(leaves[1], nil)}

	file, err := os.Create(f.receipts)
	if err != nil {
		t.Fatal(err)
	}
	w, err := audit.NewReceiptWriter(file, signer.Name(), 1)
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.NewVerifier(key, 1)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := audit.NewSignedCheckpoint(&tree, signer.Name(), tree.Size(), signer)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range leaves {
		r, err := audit.NewReceipt(&tree, 1, at[i], cp, v.Size())
		if err != nil {
			t.Fatal(err)
		}
		s, err := v.Accept(r, l)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Record(s); err != nil {
			t.Fatal(err)
		}
	}
	salt := audit.AgencySalt([][32]byte{batch.Digest})
	st := audit.Statement{Checkpoint: cp.Checkpoint, Number: 7574, Agencies: []audit.AgencyResult{
		{Agency: 1, Batches: 1, Bets: 1, Winners: 1, WinnersHash: audit.WinnersHash(salt, []string{"01234567"})},
	}}
	msg, err := audit.SignStatement(st, signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Statement(msg); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "statement"), msg, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) open(string) (LeafSource, error) { return f.src, nil }

func runAudit(t *testing.T, open opener, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut, open)
	return code, out.String(), errOut.String()
}

func TestRun_OK(t *testing.T) {
	f := newFixture(t)
	for _, extra := range [][]string{nil, {"-statement", filepath.Join(f.dir, "statement")}} {
		args := append([]string{"-pub", f.pub, "-bets", "bets.csv"}, extra...)
		code, stdout, stderr := runAudit(t, f.open, append(args, f.receipts)...)
		if code != exitOK || stderr != "" {
			t.Fatalf("exit %d, stdout %s, stderr %s", code, stdout, stderr)
		}
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "audit: OK: a log of 3 leaves, root ") || !strings.HasSuffix(last, ", 1 bets, number 7574, 1 receipts files") {
			t.Errorf("summary %q", last)
		}
		for _, l := range lines[:len(lines)-1] {
			if !strings.HasPrefix(l, "ok: ") {
				t.Errorf("line %q", l)
			}
		}
		if !f.src.closed {
			t.Error("the source was not closed")
		}
	}
}

func TestRun_Failed(t *testing.T) {
	f := newFixture(t)
	f.src.leaves[1].Digest = audit.RowsDigest([]byte("other rows"))
	code, stdout, _ := runAudit(t, f.open, "-pub", f.pub, f.receipts)
	if code != exitFailed || !strings.Contains(stdout, "FAIL: audit: batch 1 of agency 1 (1 bets) at "+f.receipts+" line ") || !strings.Contains(stdout, "audit: FAILED: ") {
		t.Errorf("exit %d, stdout %s", code, stdout)
	}
}

func TestRun_OtherKey(t *testing.T) {
	f := newFixture(t)
	_, vkey, err := note.GenerateKey(rand.Reader, pki.DefaultLogOrigin)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "log.pub")
	if err := os.WriteFile(other, []byte(vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := runAudit(t, f.open, "-pub", other, f.receipts)
	if code != exitFailed || !strings.Contains(stdout, "not signed by the log's key") {
		t.Errorf("exit %d, stdout %s", code, stdout)
	}
}

func TestRun_ErrUsage(t *testing.T) {
	f := newFixture(t)
	noSource := func(string) (LeafSource, error) { return nil, errors.New("no journal here") }
	tests := []struct {
		name string
		open opener
		args []string
		want string // in stderr
	}{
		{"UnknownFlag", f.open, []string{"-bogus"}, "usage: audit"},
		{"EmptyPub", f.open, []string{"-pub", ""}, "-pub"},
		{"NoPub", f.open, []string{"-pub", filepath.Join(f.dir, "none")}, "none"},
		{"NotAPub", f.open, []string{"-pub", filepath.Join(f.dir, pki.LogKeyFile)}, "not a note verifier key"},
		{"NoSource", noSource, []string{"-pub", f.pub}, "no journal here"},
		{"NoBets", openSource, []string{"-pub", f.pub, "-bets", filepath.Join(f.dir, "none.csv")}, "none.csv"},
		{"NoReceipts", f.open, []string{"-pub", f.pub, filepath.Join(f.dir, "none.receipts")}, "none.receipts"},
		{"NoStatement", f.open, []string{"-pub", f.pub, "-statement", filepath.Join(f.dir, "none")}, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runAudit(t, tt.open, tt.args...)
			if code != exitUsage || stdout != "" || !strings.HasPrefix(stderr, "audit: ") || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d naming %q", code, stdout, stderr, exitUsage, tt.want)
			}
		})
	}
}

func TestRun_Help(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		code, stdout, stderr := runAudit(t, nil, arg)
		if code != exitOK || !strings.HasPrefix(stdout, "usage: audit") || stderr != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", arg, code, stdout, stderr)
		}
	}
}
