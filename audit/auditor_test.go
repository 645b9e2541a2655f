package audit_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"lottery"
	"lottery/audit"
)

// files are the auditor's inputs of a draw, as editable copies.
type files struct {
	key       note.Verifier
	leaves    []audit.LocatedLeaf
	rows      []row
	statement []byte
	receipts  [][]byte // agency i+1's receipts file
}

func (d *draw) files() *files {
	f := &files{key: d.key, leaves: append([]audit.LocatedLeaf(nil), d.leaves...), rows: append([]row(nil), d.rows...), statement: d.signed}
	for _, a := range d.agencies {
		f.receipts = append(f.receipts, bytes.Clone(a.sink.Bytes()))
	}
	return f
}

func (f *files) input() audit.AuditInput {
	in := audit.AuditInput{Key: f.key, Leaves: f.leaves, Statement: f.statement}
	rows := f.rows
	in.Rows = func(yield func(uint32, string, int) bool) error {
		for _, r := range rows {
			if !yield(r.agency, r.document, r.number) {
				return nil
			}
		}
		return nil
	}
	for i, r := range f.receipts {
		in.Receipts = append(in.Receipts, audit.ReceiptsInput{Name: fmt.Sprintf("agency-%d.receipts", i+1), R: bytes.NewReader(r)})
	}
	return in
}

// relocate recomputes the leaves' locations after an edit, as the files
// of a central that rewrote them consistently would give them.
func relocate(leaves []audit.LocatedLeaf, rowBytes func(audit.Leaf) int64) {
	var end int64
	for i := range leaves {
		leaves[i].JournalOffset = 8 + 64*int64(i)
		leaves[i].BetsStart = end
		end += rowBytes(leaves[i].Leaf)
		leaves[i].BetsEnd = end
	}
}

// resign replaces the statement by edit's, signed by signer.
func (f *files) resign(t testing.TB, signer note.Signer, st audit.Statement) {
	t.Helper()
	var err error
	if f.statement, err = audit.SignStatement(st, signer); err != nil {
		t.Fatal(err)
	}
}

func TestAudit_OK(t *testing.T) {
	tests := []struct {
		name string
		opt  drawOptions
	}{
		{"OKFixedNumber", smallDraw},
		{"OKCommitted", drawOptions{agencies: 3, batches: 3, perBatch: 5, group: 2, committed: true}},
		{"OKOneGroupPerRecord", drawOptions{agencies: 2, batches: 4, perBatch: 3, group: 1}},
		{"OKOneBigGroup", drawOptions{agencies: 4, batches: 2, perBatch: 2, group: 100}},
		{"OKNoAgency", drawOptions{agencies: 0, group: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDraw(t, tt.opt)
			rep := audit.Audit(d.files().input())
			if !rep.OK() {
				t.Fatalf("an honest draw fails its audit:\n%s", strings.Join(rep.Lines(), "\n"))
			}
			if rep.Size != d.tree.Size() || rep.Root != d.tree.Root() || !rep.Drawn || rep.Number != d.stmt.Number {
				t.Errorf("report size %d root %s drawn %v number %d; want %d %s true %d", rep.Size, rep.Root, rep.Drawn, rep.Number, d.tree.Size(), d.tree.Root(), d.stmt.Number)
			}
			if rep.Bets != uint64(len(d.rows)) {
				t.Errorf("report counts %d bets, the draw stored %d", rep.Bets, len(d.rows))
			}
			for _, line := range rep.Lines() {
				if !strings.HasPrefix(line, "ok: ") {
					t.Errorf("line %q", line)
				}
			}
		})
	}
}

// TestAudit_OKStatementFromReceipts: with no statement given, the one the
// receipts files hold is audited.
func TestAudit_OKStatementFromReceipts(t *testing.T) {
	d := newDraw(t, smallDraw)
	f := d.files()
	f.statement = nil
	rep := audit.Audit(f.input())
	if !rep.OK() || !rep.Drawn {
		t.Fatalf("drawn %v:\n%s", rep.Drawn, strings.Join(rep.Lines(), "\n"))
	}
}

// TestAudit_OKBeforeTheDraw: the log and receipts alone, before the draw.
func TestAudit_OKBeforeTheDraw(t *testing.T) {
	d := newDraw(t, smallDraw)
	f := d.files()
	f.statement = nil
	for i, r := range f.receipts {
		f.receipts[i] = r[:bytes.LastIndex(r[:len(r)-1], []byte("\n"))+1] // drop the statement line
	}
	rep := audit.Audit(f.input())
	if !rep.OK() || rep.Drawn {
		t.Fatalf("drawn %v:\n%s", rep.Drawn, strings.Join(rep.Lines(), "\n"))
	}
}

// tamper is one dishonest edit of an honest draw's files, and what the
// audit must then say.
type tamper struct {
	name string
	edit func(t *testing.T, d *draw, f *files)
	want []failure // every one must be among the failures
}

// failure is an expected failure: its sentinel, and words its message has.
type failure struct {
	err   error
	words []string
}

func TestAudit_Tampered(t *testing.T) {
	otherSigner, _ := testKey(t, testOrigin, 2)
	// agency 2's batch 2: its leaf index in the honest draw.
	leafOf := func(d *draw, agency uint32, seq uint64) int {
		for i, l := range d.leaves {
			if l.Kind == audit.KindBatch && l.Agency == agency && l.Seq == seq {
				return i
			}
		}
		t.Fatalf("no batch %d of agency %d", seq, agency)
		return 0
	}
	rowBytes := func(d *draw) func(audit.Leaf) int64 {
		sizes := map[[32]byte]int64{}
		for _, l := range d.leaves {
			sizes[l.Digest] = l.BetsEnd - l.BetsStart
		}
		return func(l audit.Leaf) int64 {
			if l.Kind != audit.KindBatch {
				return 0
			}
			return sizes[l.Digest]
		}
	}
	tests := []tamper{
		{
			name: "EditedLeaf", // batch 2 of agency 2 now holds other rows; the statement is left as signed
			edit: func(t *testing.T, d *draw, f *files) {
				i := leafOf(d, 2, 2)
				f.leaves[i].Digest = audit.RowsDigest([]byte("2,Someone,Else,99999999,2000-01-01,7574\r\n"))
			},
			want: []failure{
				{audit.ErrMismatch, []string{"batch 2 of agency 2", "agency-2.receipts line", "altered"}},
				{audit.ErrFork, []string{"a fork or a rewritten log", "agency-1.receipts line"}},
				{audit.ErrMismatch, []string{"the draw statement's tree", "the log was rewritten"}},
			},
		},
		{
			name: "EditedLeafResigned", // the same, and a statement re-signed over the edited log
			edit: func(t *testing.T, d *draw, f *files) {
				i := leafOf(d, 2, 2)
				f.leaves[i].Digest = audit.RowsDigest([]byte("2,Someone,Else,99999999,2000-01-01,7574\r\n"))
				f.resign(t, d.signer, statementFor(f.leaves, f.rows, len(d.agencies), nil))
			},
			want: []failure{
				{audit.ErrMismatch, []string{"batch 2 of agency 2", "altered"}},
				{audit.ErrFork, []string{"a fork or a rewritten log"}},
				{audit.ErrFork, []string{"agency-1.receipts line", "the central signed another draw"}},
			},
		},
		{
			name: "InsertedLeaf", // a batch of an agency 9 slipped in after agency 1's batch 2, the draw re-signed
			edit: func(t *testing.T, d *draw, f *files) {
				i := leafOf(d, 1, 2) + 1
				extraRows := []byte("1,A,B,1,2000-01-01,7574\r\n")
				extra := audit.LocatedLeaf{Leaf: audit.BatchLeaf(1, 3, 1, extraRows)}
				f.leaves = slices.Insert(f.leaves, i, extra)
				// Renumber agency 1's later batches, so the log stays well formed.
				for j := i + 1; j < len(f.leaves); j++ {
					if l := &f.leaves[j].Leaf; l.Agency == 1 {
						l.Seq++
					}
				}
				sizes := rowBytes(d)
				relocate(f.leaves, func(l audit.Leaf) int64 {
					if l == extra.Leaf {
						return int64(len(extraRows))
					}
					return sizes(l)
				})
				f.resign(t, d.signer, statementFor(f.leaves, f.rows, len(d.agencies), nil))
			},
			want: []failure{
				{audit.ErrFork, []string{"a fork or a rewritten log", "agency-2.receipts"}},
				{audit.ErrMismatch, []string{"batch 3 of agency 1", "agency-1.receipts", "altered"}},
				{audit.ErrMismatch, []string{"batch 3 of agency 2", "agency-2.receipts", "inserted or removed before it"}},
			},
		},
		{
			name: "RemovedLeafConsistently", // agency 2's last batch dropped, its finished, rows and the statement made to agree
			edit: func(t *testing.T, d *draw, f *files) {
				last := uint64(d.agencies[1].batches)
				i := leafOf(d, 2, last)
				dropped := f.leaves[i]
				f.leaves = slices.Delete(f.leaves, i, i+1)
				for j := range f.leaves {
					if l := &f.leaves[j].Leaf; l.Kind == audit.KindFinished && l.Agency == 2 {
						l.Seq--
					}
				}
				relocate(f.leaves, rowBytes(d))
				bets := betsOf(2, last, int(dropped.Count))
				f.rows = slices.DeleteFunc(f.rows, func(r row) bool {
					return slices.ContainsFunc(bets, func(b lottery.Bet) bool { return b.Document == r.document })
				})
				f.resign(t, d.signer, statementFor(f.leaves, f.rows, len(d.agencies), nil))
			},
			want: []failure{
				{audit.ErrMissing, []string{fmt.Sprintf("batch %d of agency 2", smallDraw.batches+1), "agency-2.receipts", "dropped"}},
				// The log's finished is named as the log has it.
				{audit.ErrMismatch, []string{fmt.Sprintf("agency 2's finished after batch %d at agency-2.receipts", smallDraw.batches+1),
					fmt.Sprintf("the log's agency 2's finished after batch %d at leaf", smallDraw.batches), "altered"}},
				{audit.ErrFork, []string{"a fork or a rewritten log", "agency-3.receipts"}},
				{audit.ErrFork, []string{"the central signed another draw"}},
			},
		},
		{
			name: "CheckpointResignedWithAnotherKey", // a receipts file's checkpoint signed by a key of the same name
			edit: func(t *testing.T, d *draw, f *files) {
				f.receipts[0] = replaceCheckpoint(t, f.receipts[0], otherSigner, nil)
			},
			want: []failure{
				{audit.ErrWrongKey, []string{"agency-1.receipts line 4", "signed by " + testOrigin + "+", "not by " + testOrigin + "+"}},
			},
		},
		{
			name: "StatementSignedByAnotherKey",
			edit: func(t *testing.T, d *draw, f *files) {
				f.resign(t, otherSigner, d.stmt)
			},
			want: []failure{{audit.ErrWrongKey, []string{"the draw statement", "not by"}}},
		},
		{
			name: "StatementWithAlteredWinnerCount",
			edit: func(t *testing.T, d *draw, f *files) {
				st := d.stmt
				st.Agencies = slices.Clone(st.Agencies)
				st.Agencies[2].Winners--
				f.resign(t, d.signer, st)
			},
			want: []failure{
				{audit.ErrMismatch, []string{"agency 3's winners", "ganadores"}},
				{audit.ErrFork, []string{"agency-3.receipts", "another draw"}},
			},
		},
		{
			name: "StatementWithAlteredWinnersHash", // same count, one winner swapped for another document
			edit: func(t *testing.T, d *draw, f *files) {
				st := d.stmt
				st.Agencies = slices.Clone(st.Agencies)
				w := winnersOf(d.rows, len(d.agencies), st.Number)[0]
				w[0] = "00000001"
				st.Agencies[0].WinnersHash = audit.WinnersHash(audit.AgencySalt(d.agencies[0].digests), w)
				f.resign(t, d.signer, st)
			},
			want: []failure{{audit.ErrMismatch, []string{"agency 1's winners", "hash"}}},
		},
		{
			name: "StatementWithAlteredBets",
			edit: func(t *testing.T, d *draw, f *files) {
				st := d.stmt
				st.Agencies = slices.Clone(st.Agencies)
				st.Agencies[1].Bets++
				f.resign(t, d.signer, st)
			},
			want: []failure{{audit.ErrMismatch, []string{"agency 2's line", "apuestas"}}},
		},
		{
			name: "StatementWithOtherNumber",
			edit: func(t *testing.T, d *draw, f *files) {
				st := d.stmt
				st.Number = 1234
				f.resign(t, d.signer, st)
			},
			want: []failure{{audit.ErrMismatch, []string{"the number", "1234", "7574"}}},
		},
		{
			name: "StatementBeforeTheLastLeaves", // the draw signed over a prefix of the log
			edit: func(t *testing.T, d *draw, f *files) {
				f.resign(t, d.signer, statementFor(f.leaves[:len(f.leaves)-1], f.rows, len(d.agencies), nil))
			},
			want: []failure{
				{audit.ErrMismatch, []string{"came after the draw"}},
				{audit.ErrMissing, []string{"agency 3", "finished"}},
				{audit.ErrMissing, []string{"left out of the draw", "agency-3.receipts"}},
			},
		},
		{
			name: "Fork", // agency 3 was shown another tree of a size agency 1 also holds
			edit: func(t *testing.T, d *draw, f *files) {
				size := firstCheckpoint(t, f.receipts[0]).Size
				forged := audit.Checkpoint{Origin: testOrigin, Size: size, Root: hashOf("another history")}
				f.receipts[2] = insertCheckpointLine(t, f.receipts[2], d.signer, forged)
			},
			want: []failure{
				{audit.ErrFork, []string{"agency-3.receipts line 4", "agency-1.receipts line 4", "holds the signed tree"}},
				{audit.ErrFork, []string{"agency-3.receipts line 4", "a fork or a rewritten log"}},
			},
		},
		{
			name: "ReceiptsFileEdited", // a batch line's hash changed by hand: the file contradicts its own checkpoint
			edit: func(t *testing.T, d *draw, f *files) {
				f.receipts[1] = editBatchHash(t, f.receipts[1])
			},
			want: []failure{{audit.ErrMismatch, []string{"batch 1 of agency 2", "agency-2.receipts line 5", "the receipts file was edited"}}},
		},
		{
			name: "ReceiptsFileCut", // a torn last line
			edit: func(t *testing.T, d *draw, f *files) {
				f.receipts[0] = f.receipts[0][:len(f.receipts[0])-10]
			},
			want: []failure{{audit.ErrMalformed, []string{"agency-1.receipts line", "cut short"}}},
		},
		{
			name: "BatchOutOfSequence",
			edit: func(t *testing.T, d *draw, f *files) {
				f.leaves[leafOf(d, 1, 2)].Seq = 5
			},
			want: []failure{{audit.ErrMalformed, []string{"the log", "batch 5 of agency 1 after its batch 1"}}},
		},
		{
			name: "RowsMissing", // bets.csv lost its last rows
			edit: func(t *testing.T, d *draw, f *files) {
				f.rows = f.rows[:len(f.rows)-1]
			},
			want: []failure{{audit.ErrMismatch, []string{"the rows of bets.csv", "rows, but the log's leaves count"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDraw(t, smallDraw)
			f := d.files()
			tt.edit(t, d, f)
			rep := audit.Audit(f.input())
			if rep.OK() {
				t.Fatalf("the audit passes:\n%s", strings.Join(rep.Lines(), "\n"))
			}
			for _, w := range tt.want {
				if !hasFailure(rep.Failures(), w) {
					t.Errorf("no failure %v naming %q among:\n%s", w.err, w.words, strings.Join(rep.Lines(), "\n"))
				}
			}
		})
	}
}

func hasFailure(errs []error, w failure) bool {
	for _, err := range errs {
		if !errors.Is(err, w.err) {
			continue
		}
		all := true
		for _, word := range w.words {
			all = all && strings.Contains(err.Error(), word)
		}
		if all {
			return true
		}
	}
	return false
}

// TestAudit_TamperedCommitted: in committed mode, a statement whose secret is
// not the one committed to fails, as does one whose commitment line lies.
func TestAudit_TamperedCommitted(t *testing.T) {
	d := newDraw(t, drawOptions{agencies: 2, batches: 2, perBatch: 4, group: 2, committed: true})
	tests := []struct {
		name string
		edit func(*audit.Statement)
		want failure
	}{
		{"OtherSecret", func(st *audit.Statement) {
			st.Reveal = &audit.Reveal{Secret: bytes.Repeat([]byte{1}, audit.SecretSize)}
			st.Reveal.Commitment = audit.Commitment(st.Reveal.Secret)
			st.Number = audit.DrawNumber(st.Reveal.Secret, st.Checkpoint.Root)
		}, failure{audit.ErrMismatch, []string{"commitment", "leaf 1"}}},
		{"NoReveal", func(st *audit.Statement) { st.Reveal = nil; st.Number = 7574 }, failure{audit.ErrMissing, []string{"reveals none"}}},
		{"OtherNumber", func(st *audit.Statement) { st.Number = (st.Number + 1) % audit.NumberSpace }, failure{audit.ErrMismatch, []string{"the secret and the root derive"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := d.files()
			st := d.stmt
			r := *st.Reveal
			st.Reveal = &r
			tt.edit(&st)
			f.resign(t, d.signer, st)
			rep := audit.Audit(f.input())
			if !hasFailure(rep.Failures(), tt.want) {
				t.Errorf("no failure %v naming %q among:\n%s", tt.want.err, tt.want.words, strings.Join(rep.Lines(), "\n"))
			}
		})
	}
	t.Run("ErrRevealWithoutCommitment", func(t *testing.T) {
		plain := newDraw(t, smallDraw)
		f := plain.files()
		st := plain.stmt
		st.Reveal = &audit.Reveal{Secret: bytes.Repeat([]byte{1}, audit.SecretSize)}
		st.Reveal.Commitment = audit.Commitment(st.Reveal.Secret)
		st.Number = audit.DrawNumber(st.Reveal.Secret, st.Checkpoint.Root)
		f.resign(t, plain.signer, st)
		rep := audit.Audit(f.input())
		if w := (failure{audit.ErrMissing, []string{"commits to none", "chosen after the bets"}}); !hasFailure(rep.Failures(), w) {
			t.Errorf("no failure %q among:\n%s", w.words, strings.Join(rep.Lines(), "\n"))
		}
	})
}

// receiptsLines splits a receipts file into its lines.
func receiptsLines(b []byte) []string {
	return strings.SplitAfter(string(b), "\n")
}

// firstCheckpoint is the first checkpoint line's checkpoint.
func firstCheckpoint(t *testing.T, file []byte) audit.Checkpoint {
	t.Helper()
	f, err := audit.ReadReceipts(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	return f.Checkpoints[0].Checkpoint
}

// replaceCheckpoint re-signs the first checkpoint line's checkpoint with
// signer (edit, if not nil, changes it first).
func replaceCheckpoint(t *testing.T, file []byte, signer note.Signer, edit func(*audit.Checkpoint)) []byte {
	t.Helper()
	c := firstCheckpoint(t, file)
	if edit != nil {
		edit(&c)
	}
	lines := receiptsLines(file)
	lines[3] = checkpointLine(t, signer, c)
	return []byte(strings.Join(lines, ""))
}

// insertCheckpointLine puts a checkpoint line signed by signer before the
// first checkpoint line.
func insertCheckpointLine(t *testing.T, file []byte, signer note.Signer, c audit.Checkpoint) []byte {
	t.Helper()
	lines := receiptsLines(file)
	lines = slices.Insert(lines, 3, checkpointLine(t, signer, c))
	return []byte(strings.Join(lines, ""))
}

func checkpointLine(t *testing.T, signer note.Signer, c audit.Checkpoint) string {
	t.Helper()
	msg, err := audit.Sign(c, signer)
	if err != nil {
		t.Fatal(err)
	}
	return "checkpoint " + base64.StdEncoding.EncodeToString(msg) + "\n"
}

// editBatchHash changes the hash of the first batch line.
func editBatchHash(t *testing.T, file []byte) []byte {
	t.Helper()
	lines := receiptsLines(file)
	for i, l := range lines {
		if strings.HasPrefix(l, "batch ") {
			f := strings.Fields(l)
			h := hashOf("edited")
			f[len(f)-1] = base64.StdEncoding.EncodeToString(h[:])
			lines[i] = strings.Join(f, " ") + "\n"
			return []byte(strings.Join(lines, ""))
		}
	}
	t.Fatal("no batch line")
	return nil
}
