package audit

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// AuditInput is what an auditor holds: the log's public key, the leaves
// recomputed from the central's files (the journal's records, in order,
// with the digests of the bets.csv bytes each covers), the rows of
// bets.csv, the signed statement and any agencies' receipts files. The
// journal's format is storage's: the caller reads it and fills Leaves.
type AuditInput struct {
	Key    note.Verifier
	Leaves []LocatedLeaf
	// Rows yields every row of bets.csv in stored order (base rows
	// included) and returns the error that stopped it, if any; winners are
	// recomputed from it. It may be nil when there is no statement.
	Rows func(yield func(agency uint32, document string, number int) bool) error
	// Statement is the signed draw statement; nil takes the first one a
	// receipts file holds, and if none does only the log and the receipts
	// are checked.
	Statement []byte
	Receipts  []ReceiptsInput
}

// ReceiptsInput is one agency's receipts file, named as the report names it.
type ReceiptsInput struct {
	Name string // e.g. ".data/agency-2.receipts"
	R    io.Reader
}

// Report is what Audit found: one Finding per check, passed or failed, in
// the order checked, and what the log recomputes to.
type Report struct {
	Findings []Finding
	Size     uint64    // leaves in the log
	Root     tlog.Hash // the log's root
	Bets     uint64    // bets the log's base and batch leaves count
	Drawn    bool      // a statement was checked
	Number   int       // the statement's number, when Drawn
}

// Finding is one check: Err is nil when it passed.
type Finding struct {
	Err  error
	Text string // what was checked, for a passed check
}

// String is the finding's line: "ok: …" or "FAIL: …".
func (f Finding) String() string {
	if f.Err == nil {
		return "ok: " + f.Text
	}
	return "FAIL: " + f.Err.Error()
}

// OK reports whether every check passed.
func (r *Report) OK() bool { return len(r.Failures()) == 0 }

// Failures are the errors of the failed checks.
func (r *Report) Failures() []error {
	var errs []error
	for _, f := range r.Findings {
		if f.Err != nil {
			errs = append(errs, f.Err)
		}
	}
	return errs
}

// Lines are the findings as lines to print.
func (r *Report) Lines() []string {
	lines := make([]string, len(r.Findings))
	for i, f := range r.Findings {
		lines[i] = f.String()
	}
	return lines
}

// WriteTo prints the findings, one a line.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	for _, f := range r.Findings {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.WriteTo(w)
}

// Audit checks a draw from its files, trusting none of them: the log's
// structure (leaf 0 the base, batches numbered 1, 2, … per agency, a
// finished after an agency's last batch, contiguous bets.csv ranges); the
// statement's signature, that its root is the log's root at its size and
// that the log holds nothing after it; each agency's line against the log
// (batches, bets, finished) and against bets.csv (winners of the number,
// their count and hash); the number (7574, or in committed mode the one the
// revealed secret, matching leaf 1's commitment, derives); and every
// receipts file: every checkpoint signed by the log's key, with the root
// the log recomputes at its size (else a fork or a rewritten log, naming
// the file, the line and the size; two files holding different roots for
// one size are both named), and every acknowledged batch at its leaf in the
// log (else the batch dropped, moved or altered, named by agency and
// sequence). It reports every failure, not only the first.
func Audit(in AuditInput) *Report {
	in.Receipts = slices.Clone(in.Receipts) // statementMsg replaces the readers it reads
	a := &auditor{in: in, rep: &Report{}}
	a.checkLog()
	a.checkStatement()
	for _, rc := range a.in.Receipts {
		a.checkReceipts(rc)
	}
	return a.rep
}

type auditor struct {
	in   AuditInput
	rep  *Report
	tree Tree
	log  map[uint32]*agencyLog // every agency's part of the whole log
	st   *Statement            // the statement, once verified
	// stText is the statement's text, which a receipts file's statement
	// must equal.
	stText string
	seen   map[uint64]signedRoot // the first verified checkpoint of each size among the receipts
}

// agencyLog is an agency's part of a prefix of the log.
type agencyLog struct {
	batchLeaves []uint64            // leaf of batch i+1
	digests     [][sha256.Size]byte // rows digest of batch i+1
	bets        uint64
	finished    bool
	finishLeaf  uint64
}

func (g *agencyLog) lastSeq() uint64 { return uint64(len(g.batchLeaves)) }

// signedRoot is where a receipts file shows a signed root.
type signedRoot struct {
	root tlog.Hash
	file string
	line int
}

func (a *auditor) ok(format string, args ...any) {
	a.rep.Findings = append(a.rep.Findings, Finding{Text: fmt.Sprintf(format, args...)})
}

func (a *auditor) failed(err error) {
	a.rep.Findings = append(a.rep.Findings, Finding{Err: err})
}

// leafWhere names leaf i and, when known, where its record is.
func (a *auditor) leafWhere(i uint64) string {
	if i >= uint64(len(a.in.Leaves)) {
		return fmt.Sprintf("leaf %d", i)
	}
	l := a.in.Leaves[i]
	if l.JournalOffset == 0 && l.BetsStart == 0 && l.BetsEnd == 0 {
		return fmt.Sprintf("leaf %d", i)
	}
	return fmt.Sprintf("leaf %d (journal offset %d, bets.csv bytes %d to %d)", i, l.JournalOffset, l.BetsStart, l.BetsEnd)
}

// checkLog builds the tree from the leaves and checks the log's structure.
func (a *auditor) checkLog() {
	failures := len(a.rep.Findings)
	a.log = map[uint32]*agencyLog{}
	var prevEnd int64
	for i, l := range a.in.Leaves {
		if err := a.tree.AppendLeaf(l.Leaf); err != nil {
			a.failed(err)
			return
		}
		if err := a.checkLeafPlace(uint64(i), l, prevEnd); err != nil {
			a.failed(err)
		}
		a.log = addLeaf(a.log, uint64(i), l.Leaf)
		prevEnd = l.BetsEnd
		if l.Kind == KindBase || l.Kind == KindBatch {
			a.rep.Bets += uint64(l.Count)
		}
	}
	a.rep.Size, a.rep.Root = a.tree.Size(), a.tree.Root()
	if len(a.in.Leaves) == 0 {
		a.failed(failf(ErrMissing, "the log", "leaf 0", "the log is empty: it always starts with the base record"))
		return
	}
	if len(a.rep.Findings) == failures {
		a.ok("the log: %d leaves, %d agencies, %d bets, root %s", a.rep.Size, len(a.log), a.rep.Bets, a.rep.Root)
	}
}

// checkLeafPlace checks that leaf i may be where it is, after the leaves
// before it, which ended at byte prevEnd of bets.csv.
func (a *auditor) checkLeafPlace(i uint64, l LocatedLeaf, prevEnd int64) error {
	where := a.leafWhere(i)
	bad := func(format string, args ...any) error {
		return failf(ErrMalformed, "the log", where, format, args...)
	}
	if err := l.Check(); err != nil {
		return relabel(err, "", where)
	}
	switch {
	case (i == 0) != (l.Kind == KindBase):
		return bad("%s: only leaf 0, always, is the base record", l.Leaf)
	case l.Kind == KindCommit && i != 1:
		return bad("the commitment: only leaf 1 may be one")
	case l.BetsStart != prevEnd || l.BetsEnd < l.BetsStart:
		return bad("covers bets.csv bytes %d to %d, but the leaf before ended at %d", l.BetsStart, l.BetsEnd, prevEnd)
	case (l.Kind == KindFinished || l.Kind == KindCommit) && l.BetsEnd != l.BetsStart:
		return bad("%s covers no rows, yet bets.csv bytes %d to %d", l.Leaf, l.BetsStart, l.BetsEnd)
	}
	if l.Kind != KindBatch && l.Kind != KindFinished {
		return nil
	}
	prev := a.log[l.Agency]
	if prev == nil {
		prev = &agencyLog{}
	}
	switch {
	case l.Kind == KindBatch && prev.finished:
		return bad("%s after the agency finished", l.Leaf)
	case l.Kind == KindBatch && l.Seq != prev.lastSeq()+1:
		return bad("%s after its batch %d", l.Leaf, prev.lastSeq())
	case l.Kind == KindFinished && prev.finished:
		return bad("%s, but it had finished already", l.Leaf)
	case l.Kind == KindFinished && l.Seq != prev.lastSeq():
		return bad("%s, but its last batch is %d", l.Leaf, prev.lastSeq())
	}
	return nil
}

// summarize is every agency's part of leaves.
func summarize(leaves []LocatedLeaf) map[uint32]*agencyLog {
	m := map[uint32]*agencyLog{}
	for i, l := range leaves {
		m = addLeaf(m, uint64(i), l.Leaf)
	}
	return m
}

// addLeaf counts leaf i, when it is an agency's, in m. A batch out of
// sequence, which checkLeafPlace reports, counts as the next.
func addLeaf(m map[uint32]*agencyLog, i uint64, l Leaf) map[uint32]*agencyLog {
	if l.Kind != KindBatch && l.Kind != KindFinished {
		return m
	}
	g := m[l.Agency]
	if g == nil {
		g = &agencyLog{}
		m[l.Agency] = g
	}
	switch l.Kind {
	case KindBatch:
		g.batchLeaves = append(g.batchLeaves, i)
		g.digests = append(g.digests, l.Digest)
		g.bets += uint64(l.Count)
	case KindFinished:
		g.finished, g.finishLeaf = true, i
	}
	return m
}

// statementMsg is the statement to audit: the input's, or the first a
// receipts file holds (the files are read again by checkReceipts).
func (a *auditor) statementMsg() []byte {
	if a.in.Statement != nil {
		return a.in.Statement
	}
	for i, rc := range a.in.Receipts {
		data, err := io.ReadAll(rc.R)
		a.in.Receipts[i].R = bytes.NewReader(data)
		if err != nil {
			continue
		}
		if f, _ := ReadReceipts(bytes.NewReader(data)); f != nil && f.Statement != nil {
			return f.Statement
		}
	}
	return nil
}

// checkStatement checks the draw statement against the log and bets.csv.
func (a *auditor) checkStatement() {
	msg := a.statementMsg()
	if msg == nil {
		a.ok("no draw statement: the log and the receipts are checked, not a draw")
		return
	}
	st, err := OpenStatement(msg, a.in.Key)
	if err != nil {
		a.failed(relabel(err, "the draw statement", ""))
		return
	}
	text, _ := noteText(msg)
	a.st, a.stText = &st, text
	a.rep.Drawn, a.rep.Number = true, st.Number
	a.ok("the draw statement is signed by %s+%08x: %s, number %04d, %d agencies", a.in.Key.Name(), a.in.Key.KeyHash(), st.Checkpoint, st.Number, len(st.Agencies))

	covered := a.checkStatementTree(st)
	parts := a.log
	if covered != a.tree.Size() {
		parts = summarize(a.in.Leaves[:covered])
	}
	a.checkAgencies(st, parts)
	a.checkNumber(st)
	a.checkWinners(st, parts, covered)
}

// checkStatementTree checks the statement's tree against the log's and
// returns how many leaves of the log the draw covers.
func (a *auditor) checkStatementTree(st Statement) uint64 {
	const what = "the draw statement's tree"
	size := st.Checkpoint.Size
	if size > a.tree.Size() {
		a.failed(failf(ErrShrank, what, "", "%d leaves signed, but the log holds %d: leaves the central signed are gone", size, a.tree.Size()))
		return a.tree.Size()
	}
	root, _ := a.tree.RootAt(size)
	switch {
	case root != st.Checkpoint.Root:
		a.failed(failf(ErrMismatch, what, fmt.Sprintf("size %d", size), "signed root %s, but the log's root at that size is %s: the log was rewritten", st.Checkpoint.Root, root))
	case size < a.tree.Size():
		a.failed(failf(ErrMismatch, what, "", "it covers %d leaves, but the log holds %d: %s came after the draw", size, a.tree.Size(), a.in.Leaves[size].Leaf))
	default:
		a.ok("the draw statement's root is the log's")
	}
	return size
}

// checkAgencies checks each agency's batches and bets, and that it
// finished, against the log's leaves the draw covers.
func (a *auditor) checkAgencies(st Statement, parts map[uint32]*agencyLog) {
	for _, line := range st.Agencies {
		what := fmt.Sprintf("agency %d's line of the draw statement", line.Agency)
		g := parts[line.Agency]
		if g == nil {
			g = &agencyLog{}
		}
		switch {
		case line.Batches != g.lastSeq():
			a.failed(failf(ErrMismatch, what, "", "lotes %d, but the log holds %d batches of the agency", line.Batches, g.lastSeq()))
		case line.Bets != g.bets:
			a.failed(failf(ErrMismatch, what, "", "apuestas %d, but the agency's batches in the log hold %d bets", line.Bets, g.bets))
		case !g.finished:
			a.failed(failf(ErrMissing, what, "", "the log holds no finished of agency %d, yet the draw happened", line.Agency))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(parts)) {
		if uint64(n) <= uint64(len(st.Agencies)) {
			continue
		}
		a.failed(failf(ErrMissing, fmt.Sprintf("agency %d", n), "", "its %d batches are in the log, but the draw statement has lines for agencies 1 to %d only", parts[n].lastSeq(), len(st.Agencies)))
	}
}

// checkNumber checks the statement's number, and in committed mode that
// the secret revealed is the one leaf 1 committed to before any bet.
func (a *auditor) checkNumber(st Statement) {
	const what = "the number of the draw statement"
	var commit *Leaf
	if len(a.in.Leaves) > 1 && a.in.Leaves[1].Kind == KindCommit {
		commit = &a.in.Leaves[1].Leaf
	}
	switch {
	case commit != nil && st.Reveal == nil:
		a.failed(failf(ErrMissing, what, "", "leaf 1 commits to a secret, but the statement reveals none"))
		return
	case commit == nil && st.Reveal != nil:
		a.failed(failf(ErrMissing, what, "", "the statement reveals a secret, but leaf 1 commits to none: it was chosen after the bets"))
		return
	case commit != nil && commit.Digest != st.Reveal.Commitment:
		a.failed(failf(ErrMismatch, what, a.leafWhere(1), "the statement's commitment is not the one leaf 1 holds"))
		return
	}
	if err := checkNumber(st); err != nil {
		a.failed(err)
		return
	}
	if commit != nil {
		a.ok("the number %04d derives from the secret committed to at leaf 1 and the root", st.Number)
	} else {
		a.ok("the number %04d is the course's", st.Number)
	}
}

// checkWinners recomputes every agency's winners from bets.csv: its rows
// the draw covers that played the number, in stored order.
func (a *auditor) checkWinners(st Statement, parts map[uint32]*agencyLog, covered uint64) {
	if a.in.Rows == nil {
		a.failed(failf(ErrMissing, "the winners", "", "no rows of bets.csv to recompute them from"))
		return
	}
	var inDraw, total uint64 // rows the draw covers, rows the log counts
	for i, l := range a.in.Leaves {
		if l.Kind == KindBase || l.Kind == KindBatch {
			total += uint64(l.Count)
			if uint64(i) < covered {
				inDraw += uint64(l.Count)
			}
		}
	}
	docs := make([][]string, len(st.Agencies))
	strays := map[uint32]uint64{} // winners of agencies without a line
	var rows uint64
	err := a.in.Rows(func(agency uint32, document string, number int) bool {
		rows++
		if rows > inDraw || number != st.Number {
			return true
		}
		if agency == 0 || uint64(agency) > uint64(len(docs)) {
			strays[agency]++
		} else {
			docs[agency-1] = append(docs[agency-1], document)
		}
		return true
	})
	if err != nil {
		a.failed(failf(ErrMalformed, "the rows of bets.csv", fmt.Sprintf("row %d", rows), "%v", err))
		return
	}
	if rows != total {
		a.failed(failf(ErrMismatch, "the rows of bets.csv", "", "%d rows, but the log's leaves count %d", rows, total))
	}
	for _, n := range slices.Sorted(maps.Keys(strays)) {
		a.failed(failf(ErrMissing, fmt.Sprintf("agency %d's winners", n), "", "%d rows of bets.csv won, but the statement has no line for the agency", strays[n]))
	}
	bad := false
	for i, line := range st.Agencies {
		what := fmt.Sprintf("agency %d's winners", line.Agency)
		var digests [][sha256.Size]byte
		if g := parts[line.Agency]; g != nil {
			digests = g.digests
		}
		h := WinnersHash(AgencySalt(digests), docs[i])
		switch {
		case line.Winners != uint64(len(docs[i])):
			a.failed(failf(ErrMismatch, what, "", "ganadores %d, but bets.csv holds %d winning rows of the agency", line.Winners, len(docs[i])))
			bad = true
		case line.WinnersHash != h:
			a.failed(failf(ErrMismatch, what, "", "the statement's hash is not that of the agency's %d winners in bets.csv", len(docs[i])))
			bad = true
		}
	}
	if !bad {
		a.ok("every agency's winners in bets.csv are what the statement says (%d rows)", rows)
	}
}

// checkReceipts checks one agency's receipts file against the log.
func (a *auditor) checkReceipts(in ReceiptsInput) {
	f, err := ReadReceipts(in.R)
	if err != nil {
		a.failed(relabel(err, "", strings.TrimSpace(in.Name+" "+whereOf(err))))
		if f == nil {
			return
		}
	}
	failures := len(a.rep.Findings)
	if f.Origin != a.in.Key.Name() {
		a.failed(failf(ErrWrongKey, "the receipts file", in.Name, "it is of the log %q, the key of %q", f.Origin, a.in.Key.Name()))
		return
	}
	matches := a.checkFileCheckpoints(in.Name, f)
	c := -1 // the checkpoint line each record cites: the last before it
	for _, r := range f.Records {
		for c+1 < len(f.Checkpoints) && f.Checkpoints[c+1].Line < r.Line {
			c++
		}
		if err := a.checkRecord(in.Name, f.Agency, r, matches[c]); err != nil {
			a.failed(err)
		}
	}
	a.checkFileStatement(in.Name, f)
	if len(a.rep.Findings) == failures {
		a.ok("%s: agency %d, %d checkpoints signed by the log's key with the log's roots, %d receipts of leaves the log holds", in.Name, f.Agency, len(f.Checkpoints), len(f.Records))
	}
}

// whereOf is an *Error's Where, "" for any other error.
func whereOf(err error) string {
	if e, ok := err.(*Error); ok {
		return e.Where
	}
	return ""
}

// checkFileCheckpoints checks each checkpoint of a receipts file: signed by
// the log's key, never smaller than the one before, with the root the log
// has at its size, and the root any other file shows for that size. It
// reports which are signed and match the log.
func (a *auditor) checkFileCheckpoints(name string, f *ReceiptFile) (matches []bool) {
	if a.seen == nil {
		a.seen = map[uint64]signedRoot{}
	}
	matches = make([]bool, len(f.Checkpoints))
	forked := 0 // checkpoints whose roots are not the log's
	var prev *FileCheckpoint
	for i, fc := range f.Checkpoints {
		where := fmt.Sprintf("%s line %d", name, fc.Line)
		c, err := OpenCheckpoint(fc.Note, a.in.Key)
		if err != nil {
			a.failed(relabel(err, fmt.Sprintf("the checkpoint of tree %d", fc.Checkpoint.Size), where))
			continue
		}
		what := "the signed " + c.String()
		if prev != nil && c.Size < prev.Checkpoint.Size {
			a.failed(failf(ErrShrank, what, where, "after the signed tree %d of line %d", prev.Checkpoint.Size, prev.Line))
		}
		prev = &f.Checkpoints[i]
		if other, ok := a.seen[c.Size]; ok && other.root != c.Root {
			a.failed(failf(ErrFork, what, where, "%s line %d holds the signed tree %d with root %s: two agencies were shown two logs", other.file, other.line, c.Size, other.root))
		} else if !ok {
			a.seen[c.Size] = signedRoot{root: c.Root, file: name, line: fc.Line}
		}
		if c.Size > a.tree.Size() {
			a.failed(failf(ErrShrank, what, where, "the log holds only %d leaves: leaves the central signed are gone (a fork or a rewritten log)", a.tree.Size()))
			continue
		}
		root, _ := a.tree.RootAt(c.Size)
		switch {
		case root == c.Root:
			matches[i] = true
		case forked == 0:
			a.failed(failf(ErrFork, what, where, "the log's root at %d leaves is %s: a fork or a rewritten log (the files were rewritten, or the agency was shown another log)", c.Size, root))
			forked++
		default:
			forked++ // every later tree extends the first that differs: one line says it
		}
	}
	if forked > 1 {
		a.failed(failf(ErrFork, fmt.Sprintf("%d later signed trees", forked-1), name, "their roots are not the log's either: they extend the first that differs"))
	}
	return matches
}

// checkRecord checks that an acknowledged batch or finished of the agency
// is at its leaf in the log, and in the draw; if not, it says what became
// of it. cited tells whether the checkpoint the record cites is signed and
// matches the log: then the log holds what the central signed, the agency's
// Verifier checked the leaf against that root, and a leaf that differs
// means the file was edited, not the log.
func (a *auditor) checkRecord(name string, agency uint32, r FileRecord, cited bool) error {
	l := Leaf{Kind: r.Kind, Agency: agency, Seq: r.Seq}
	what := l.String()
	if r.Kind == KindBatch {
		what = fmt.Sprintf("%s (%d bets)", what, r.Count)
	}
	where := fmt.Sprintf("%s line %d", name, r.Line)
	acked := fmt.Sprintf("acked at leaf %d in the signed tree %d", r.Leaf, r.TreeSize)
	if r.Leaf < a.tree.Size() {
		if h, _ := a.tree.LeafHash(r.Leaf); h == r.Hash {
			if a.st != nil && r.Leaf >= a.st.Checkpoint.Size {
				return failf(ErrMissing, what, where, "%s, but the draw covers only %d leaves: it was left out of the draw", acked, a.st.Checkpoint.Size)
			}
			return nil
		}
	}
	if cited {
		return failf(ErrMismatch, what, where, "%s, but the log's leaf %d is another, and the log matches that signed tree: the receipts file was edited", acked, r.Leaf)
	}
	// Not where it was acked: find the log's leaf of that batch.
	at, ok := uint64(0), false
	if g := a.log[agency]; g != nil {
		switch {
		case r.Kind == KindBatch && r.Seq >= 1 && r.Seq <= g.lastSeq():
			at, ok = g.batchLeaves[r.Seq-1], true
		case r.Kind == KindFinished && g.finished:
			at, ok = g.finishLeaf, true
		}
	}
	if !ok {
		return failf(ErrMissing, what, where, "%s, but the log (%d leaves) does not hold it: dropped", acked, a.tree.Size())
	}
	if h, _ := a.tree.LeafHash(at); h == r.Hash {
		return failf(ErrMismatch, what, where, "%s, but the log has it at %s: leaves were inserted or removed before it", acked, a.leafWhere(at))
	}
	// Name the log's leaf as the log has it: a finished moved to another
	// batch says which.
	got := l
	if at < uint64(len(a.in.Leaves)) {
		got = a.in.Leaves[at].Leaf
	}
	return failf(ErrMismatch, what, where, "%s, but the log's %s at %s is not the one acked: altered", acked, got, a.leafWhere(at))
}

// checkFileStatement checks that the statement a receipts file holds, if
// any, is the one audited: two different signed draws are two histories.
func (a *auditor) checkFileStatement(name string, f *ReceiptFile) {
	if f.Statement == nil {
		return
	}
	where := fmt.Sprintf("%s line %d", name, f.StatementLine)
	if _, err := OpenStatement(f.Statement, a.in.Key); err != nil {
		a.failed(relabel(err, "the draw statement", where))
		return
	}
	if text, _ := noteText(f.Statement); a.st != nil && text != a.stText {
		a.failed(failf(ErrFork, "the draw statement", where, "the central signed another draw than the one audited"))
	}
}
