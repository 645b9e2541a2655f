package audit_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"lottery"
	"lottery/audit"
	"lottery/csvrow"
)

// row is one stored bet, as the auditor's Rows yields it.
type row struct {
	agency   uint32
	document string
	number   int
}

// simAgency is an agency of a simulated draw.
type simAgency struct {
	n       uint32
	batches int
	ver     *audit.Verifier
	sink    *memSink
	w       *audit.ReceiptWriter
	size    uint64 // the central's view of its last checkpoint
	digests [][sha256.Size]byte
	lastSeq uint64
	bets    uint64
}

// draw is a whole honest draw, simulated at the library level: the
// central's log and bets.csv, the agencies' verifiers and receipts files,
// and the signed statement. Tamper tests edit a copy of its output.
type draw struct {
	t        testing.TB
	signer   note.Signer
	key      note.Verifier
	tree     audit.Tree
	leaves   []audit.LocatedLeaf
	rows     []row
	betsEnd  int64
	agencies []*simAgency
	pending  []pendingAck
	cp       audit.SignedCheckpoint
	secret   []byte
	stmt     audit.Statement
	signed   []byte // the signed statement
}

type pendingAck struct {
	a    *simAgency
	leaf uint64
	want audit.Leaf
}

// drawOptions shape a simulated draw.
type drawOptions struct {
	agencies  int
	batches   int // per agency; agency n sends batches+n-1, so counts differ
	perBatch  int
	group     int // records per group commit
	committed bool
}

// smallDraw is the draw most tests use: three agencies sending 3, 4 and
// 5 batches of 5 bets, two records per group commit.
var smallDraw = drawOptions{agencies: 3, batches: 3, perBatch: 5, group: 2}

// newDraw runs an honest draw: a base record, in committed mode a
// commitment, then rounds in which every agency sends its next batch,
// group commits of opt.group records each answered with receipts the
// agencies verify and keep, every agency's finished, and the draw.
func newDraw(t testing.TB, opt drawOptions) *draw {
	t.Helper()
	d := &draw{t: t}
	d.signer, d.key = testKey(t, testOrigin, 1)
	d.append(audit.BaseLeaf(0, nil), 0)
	if opt.committed {
		d.secret = bytes.Repeat([]byte{0x5e}, audit.SecretSize)
		d.append(audit.CommitLeaf(audit.Commitment(d.secret)), 0)
	}
	d.commit()
	for n := 1; n <= opt.agencies; n++ {
		a := &simAgency{n: uint32(n), batches: opt.batches + n - 1, sink: &memSink{}}
		var err error
		if a.ver, err = audit.NewVerifier(d.key, a.n); err != nil {
			t.Fatal(err)
		}
		if a.w, err = audit.NewReceiptWriter(a.sink, testOrigin, a.n); err != nil {
			t.Fatal(err)
		}
		d.agencies = append(d.agencies, a)
	}
	for seq := 1; ; seq++ {
		sent := false
		for _, a := range d.agencies {
			switch {
			case seq <= a.batches:
				d.sendBatch(a, uint64(seq), opt.perBatch)
				sent = true
			case seq == a.batches+1:
				d.sendFinished(a)
				sent = true
			}
			if len(d.pending) >= opt.group {
				d.commit()
			}
		}
		if !sent {
			break
		}
	}
	d.commit()
	d.drawNumbers()
	return d
}

// append adds a leaf covering rows bytes of bets.csv.
func (d *draw) append(l audit.Leaf, rows int64) uint64 {
	d.t.Helper()
	i := d.tree.Size()
	if err := d.tree.AppendLeaf(l); err != nil {
		d.t.Fatal(err)
	}
	d.leaves = append(d.leaves, audit.LocatedLeaf{Leaf: l, JournalOffset: 8 + 64*int64(i), BetsStart: d.betsEnd, BetsEnd: d.betsEnd + rows})
	d.betsEnd += rows
	return i
}

// betsOf is batch seq of agency n: names with accents and a comma (quoted
// in bets.csv), and one bet in four playing the course's number.
func betsOf(n uint32, seq uint64, count int) []lottery.Bet {
	bets := make([]lottery.Bet, count)
	for i := range bets {
		number := int((uint64(n)*7919 + seq*104729 + uint64(i)*31) % audit.NumberSpace)
		if i%4 == 1 {
			number = lottery.WinningNumber
		}
		bets[i] = lottery.Bet{
			Agency: int(n), FirstName: "María José", LastName: "Pérez, " + fmt.Sprint(i),
			Document: fmt.Sprintf("%08d", uint64(n)*1_000_000+seq*1000+uint64(i)), Birthdate: "1990-05-17", Number: number,
		}
	}
	return bets
}

// rowsOf is what the central stores of bets: csvrow's rows.
func rowsOf(bets []lottery.Bet) []byte {
	var b []byte
	for _, bet := range bets {
		b = csvrow.AppendBetRow(b, bet.Agency, bet.FirstName, bet.LastName, bet.Document, bet.Birthdate, bet.Number)
	}
	return b
}

func (d *draw) sendBatch(a *simAgency, seq uint64, count int) {
	bets := betsOf(a.n, seq, count)
	rows := rowsOf(bets)
	// The agency's leaf, from its own rows; the central's, from what it
	// stores: the same bytes.
	want := audit.BatchLeaf(a.n, seq, uint32(count), rows)
	leaf := d.append(want, int64(len(rows)))
	for _, b := range bets {
		d.rows = append(d.rows, row{a.n, b.Document, b.Number})
	}
	a.digests = append(a.digests, want.Digest)
	d.pending = append(d.pending, pendingAck{a, leaf, want})
}

func (d *draw) sendFinished(a *simAgency) {
	want := audit.FinishedLeaf(a.n, uint64(a.batches))
	d.pending = append(d.pending, pendingAck{a, d.append(want, 0), want})
}

// commit ends a group commit: the central signs the tree, then answers
// every record of the group with a receipt the agency verifies and keeps.
func (d *draw) commit() {
	d.t.Helper()
	cp, err := audit.NewSignedCheckpoint(&d.tree, testOrigin, d.tree.Size(), d.signer)
	if err != nil {
		d.t.Fatal(err)
	}
	d.cp = cp
	for _, p := range d.pending {
		r, err := audit.NewReceipt(&d.tree, p.want.Seq, p.leaf, cp, p.a.size)
		if err != nil {
			d.t.Fatal(err)
		}
		r = wire(d.t, r)
		s, err := p.a.ver.Accept(r, p.want)
		if err != nil {
			d.t.Fatalf("agency %d: %v", p.a.n, err)
		}
		if err := p.a.w.Record(s); err != nil {
			d.t.Fatal(err)
		}
		p.a.size = cp.Size
		if p.want.Kind == audit.KindBatch {
			p.a.lastSeq, p.a.bets = p.want.Seq, p.a.bets+uint64(p.want.Count)
		}
	}
	d.pending = d.pending[:0]
}

// wire sends a receipt through its encoding, as the protocol will.
func wire(t testing.TB, r audit.Receipt) audit.Receipt {
	t.Helper()
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := audit.DecodeReceipt(b)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// statementFor is the central's draw over leaves and rows: what an honest
// central signs (and a dishonest one that rewrote its files consistently).
func statementFor(leaves []audit.LocatedLeaf, rows []row, agencies int, secret []byte) audit.Statement {
	var tree audit.Tree
	for _, l := range leaves {
		tree.AppendLeaf(l.Leaf)
	}
	st := audit.Statement{Checkpoint: tree.Checkpoint(testOrigin), Number: lottery.WinningNumber}
	if secret != nil {
		st.Reveal = &audit.Reveal{Commitment: audit.Commitment(secret), Secret: secret}
		st.Number = audit.DrawNumber(secret, st.Checkpoint.Root)
	}
	st.Agencies = make([]audit.AgencyResult, agencies)
	digests := make([][][sha256.Size]byte, agencies)
	for _, l := range leaves {
		if l.Kind == audit.KindBatch {
			a := &st.Agencies[l.Agency-1]
			a.Batches, a.Bets = l.Seq, a.Bets+uint64(l.Count)
			digests[l.Agency-1] = append(digests[l.Agency-1], l.Digest)
		}
	}
	winners := winnersOf(rows, agencies, st.Number)
	for i := range st.Agencies {
		a := &st.Agencies[i]
		a.Agency = uint32(i + 1)
		a.Winners = uint64(len(winners[i]))
		a.WinnersHash = audit.WinnersHash(audit.AgencySalt(digests[i]), winners[i])
	}
	return st
}

// winnersOf groups the documents of the rows that played number by agency.
func winnersOf(rows []row, agencies, number int) [][]string {
	w := make([][]string, agencies)
	for _, r := range rows {
		if r.number == number {
			w[r.agency-1] = append(w[r.agency-1], r.document)
		}
	}
	return w
}

// drawNumbers signs the statement, and every agency verifies it with the
// consistency proof from its last checkpoint and keeps it.
func (d *draw) drawNumbers() {
	d.t.Helper()
	d.stmt = statementFor(d.leaves, d.rows, len(d.agencies), d.secret)
	var err error
	if d.signed, err = audit.SignStatement(d.stmt, d.signer); err != nil {
		d.t.Fatal(err)
	}
	winners := winnersOf(d.rows, len(d.agencies), d.stmt.Number)
	for i, a := range d.agencies {
		proof, err := audit.ProveConsistency(&d.tree, a.ver.Size(), d.tree.Size())
		if err != nil {
			d.t.Fatal(err)
		}
		own := audit.OwnResult{LastSeq: a.lastSeq, Bets: a.bets, Winners: winners[i], Salt: audit.AgencySalt(a.digests)}
		if _, err := a.ver.VerifyStatement(d.signed, proof, own); err != nil {
			d.t.Fatalf("agency %d: %v", a.n, err)
		}
		if err := a.w.Statement(d.signed); err != nil {
			d.t.Fatal(err)
		}
		if err := a.w.Close(); err != nil {
			d.t.Fatal(err)
		}
	}
}
