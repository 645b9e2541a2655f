package audit_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"lottery/audit"
	"lottery/csvrow"
)

// update rewrites the golden files: go test ./audit -run Golden -update
var update = flag.Bool("update", false, "rewrite audit/testdata/*.golden from the code")

// goldenKeySeed is the seed of the example key of the golden files and of
// docs/audit.md: anyone can rebuild it, so it signs nothing real.
const goldenKeySeed = 1

// exampleDraw is the small draw the golden files show, built step by step
// as the central and two agencies would: a base record, agency 1's batch 1
// (one bet, a winner), agency 2's batch 1 (one bet), both finished, two
// group commits, the draw.
type exampleDraw struct {
	signer   note.Signer
	key      note.Verifier
	vkey     string
	tree     audit.Tree
	batch1   audit.Leaf
	receipt  audit.Receipt // agency 1's batch 1, the first on its connection
	receipts []byte        // agency 1's receipts file
	stmt     []byte        // the signed statement
	checkpt  []byte        // the first signed checkpoint
	files    files         // what an auditor holds
}

func newExampleDraw(t *testing.T, committed bool) *exampleDraw {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{goldenKeySeed}, 32)), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	e := &exampleDraw{vkey: vkey}
	if e.signer, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	if e.key, err = note.NewVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var end int64 // of bets.csv
	add := func(l audit.Leaf, rows []byte) uint64 {
		t.Helper()
		i := e.tree.Size()
		must(e.tree.AppendLeaf(l))
		e.files.leaves = append(e.files.leaves, audit.LocatedLeaf{Leaf: l, JournalOffset: 8 + 64*int64(i), BetsStart: end, BetsEnd: end + int64(len(rows))})
		end += int64(len(rows))
		return i
	}
	e.files.key = e.key
	var secret []byte
	add(audit.BaseLeaf(0, nil), nil)
	if committed {
		secret = bytes.Repeat([]byte{0x5e}, audit.SecretSize)
		add(audit.CommitLeaf(audit.Commitment(secret)), nil)
	}
	rows1 := csvrow.AppendBetRow(nil, 1, "Ana", "Paz", "01234567", "1990-05-17", 7574)
	rows2 := csvrow.AppendBetRow(nil, 2, "Juan", "Pérez, h.", "30904465", "1999-03-17", 1234)
	e.files.rows = []row{{1, "01234567", 7574}, {2, "30904465", 1234}}
	e.batch1 = audit.BatchLeaf(1, 1, 1, rows1)
	batch2 := audit.BatchLeaf(2, 1, 1, rows2)
	leaf1 := add(e.batch1, rows1)
	add(batch2, rows2)
	cp1, err := audit.NewSignedCheckpoint(&e.tree, testOrigin, e.tree.Size(), e.signer)
	must(err)
	e.checkpt = cp1.Note
	if e.receipt, err = audit.NewReceipt(&e.tree, 1, leaf1, cp1, 0); err != nil {
		t.Fatal(err)
	}
	v, err := audit.NewVerifier(e.key, 1)
	must(err)
	var file memSink
	w, err := audit.NewReceiptWriter(&file, testOrigin, 1)
	must(err)
	s, err := v.Accept(e.receipt, e.batch1)
	must(err)
	must(w.Record(s))

	fin := add(audit.FinishedLeaf(1, 1), nil)
	add(audit.FinishedLeaf(2, 1), nil)
	cp2, err := audit.NewSignedCheckpoint(&e.tree, testOrigin, e.tree.Size(), e.signer)
	must(err)
	r, err := audit.NewReceipt(&e.tree, 1, fin, cp2, v.Size())
	must(err)
	s, err = v.Accept(r, audit.FinishedLeaf(1, 1))
	must(err)
	must(w.Record(s))

	st := audit.Statement{Checkpoint: cp2.Checkpoint, Number: 7574, Agencies: []audit.AgencyResult{
		{Agency: 1, Batches: 1, Bets: 1, Winners: 1, WinnersHash: audit.WinnersHash(audit.AgencySalt([][32]byte{e.batch1.Digest}), []string{"01234567"})},
		{Agency: 2, Batches: 1, Bets: 1, Winners: 0, WinnersHash: audit.WinnersHash(audit.AgencySalt([][32]byte{batch2.Digest}), nil)},
	}}
	if committed {
		st.Reveal = &audit.Reveal{Commitment: audit.Commitment(secret), Secret: secret}
		st.Number = audit.DrawNumber(secret, st.Checkpoint.Root)
		st.Agencies[0].Winners, st.Agencies[0].WinnersHash = 0, audit.WinnersHash(audit.AgencySalt([][32]byte{e.batch1.Digest}), nil)
	}
	e.stmt, err = audit.SignStatement(st, e.signer)
	must(err)
	var winners []string
	if !committed {
		winners = []string{"01234567"}
	}
	_, err = v.VerifyStatement(e.stmt, nil, audit.OwnResult{LastSeq: 1, Bets: 1, Winners: winners, Salt: audit.AgencySalt([][32]byte{e.batch1.Digest})})
	must(err)
	must(w.Statement(e.stmt))
	e.receipts = file.Bytes()
	e.files.statement, e.files.receipts = e.stmt, [][]byte{e.receipts}
	return e
}

// hexDump shows bytes 16 a line, each line led by its offset.
func hexDump(b []byte) string {
	var s strings.Builder
	for off := 0; off < len(b); off += 16 {
		fmt.Fprintf(&s, "%04x  % x\n", off, b[off:min(off+16, len(b))])
	}
	return s.String()
}

// goldens are the golden files and what writes them.
func goldens(t *testing.T) map[string]string {
	e := newExampleDraw(t, false)
	c := newExampleDraw(t, true)
	receipt, err := e.receipt.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"log.pub.golden":             e.vkey + "\n",
		"leaf.golden":                hexDump(e.batch1.Encode()) + "hash " + e.batch1.Hash().String() + "\n",
		"checkpoint.golden":          string(e.checkpt),
		"receipt.golden":             hexDump(receipt),
		"receipts.golden":            string(e.receipts),
		"statement.golden":           string(e.stmt),
		"statement-committed.golden": string(c.stmt),
	}
}

// TestGolden pins every format, byte for byte, to its golden file.
func TestGolden(t *testing.T) {
	for name, got := range goldens(t) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./audit -run Golden -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("the code writes\n%s\n%s holds\n%s\n(go test ./audit -run Golden -update if that is meant)", got, path, want)
			}
		})
	}
}

// TestGolden_Audit: the example draws pass their audit.
func TestGolden_Audit(t *testing.T) {
	for _, committed := range []bool{false, true} {
		e := newExampleDraw(t, committed)
		if rep := audit.Audit(e.files.input()); !rep.OK() || !rep.Drawn {
			t.Errorf("committed %v:\n%s", committed, strings.Join(rep.Lines(), "\n"))
		}
	}
}

// TestDocs_Examples: every example of docs/audit.md marked
// "<!-- golden: NAME -->" is the golden file NAME, and every golden file
// is shown: a doc that disagrees with the code is a bug.
func TestDocs_Examples(t *testing.T) {
	doc, err := os.ReadFile("../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	text := string(doc)
	const marker = "<!-- golden: "
	for {
		i := strings.Index(text, marker)
		if i < 0 {
			break
		}
		text = text[i+len(marker):]
		name, rest, _ := strings.Cut(text, " -->\n")
		text = rest
		block, ok := fencedBlock(rest)
		if !ok {
			t.Errorf("no fenced block after the marker of %s", name)
			continue
		}
		want, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Errorf("docs/audit.md shows %s: %v", name, err)
			continue
		}
		if block != string(want) {
			t.Errorf("docs/audit.md shows as %s\n%s\nthe golden file holds\n%s", name, block, want)
		}
		shown[name] = true
	}
	for name := range goldens(t) {
		if !shown[name] {
			t.Errorf("docs/audit.md does not show %s", name)
		}
	}
}

// fencedBlock returns the content of the ``` block text starts with.
func fencedBlock(text string) (string, bool) {
	if !strings.HasPrefix(text, "```") {
		return "", false
	}
	_, body, ok := strings.Cut(text, "\n")
	if !ok {
		return "", false
	}
	end := strings.Index(body, "\n```")
	if end < 0 {
		return "", false
	}
	return body[:end+1], true
}
