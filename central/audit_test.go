package central_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"lottery"
	"lottery/agency"
	"lottery/audit"
	"lottery/central"
	"lottery/gendata"
	"lottery/internal/testutil"
	"lottery/metrics"
	"lottery/pki"
	"lottery/protocol"
	"lottery/storage"
)

// The audit log as an agency sees it on the wire (issue 16): receipts in
// the acks of an agency that asks for them, checked with audit.Verifier
// against leaves the test hashes from the rows bets.csv holds, and the
// signed draw statement after the winners.

// logKeys returns a log key pair named as bin/pki names it, drawn from
// seed: two seeds give two keys of the same name.
func logKeys(t testing.TB, seed byte) (note.Signer, note.Verifier) {
	t.Helper()
	return testutil.LogKeys(t, pki.DefaultLogOrigin, seed)
}

func newVerifier(t testing.TB, key note.Verifier, agency uint32) *audit.Verifier {
	t.Helper()
	v, err := audit.NewVerifier(key, agency)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// helloReceipts identifies the connection as an agency that checks the
// audit log and last accepted a tree of size leaves.
func (c *raw) helloReceipts(agency uint32, size uint64) protocol.Welcome {
	c.t.Helper()
	c.send(protocol.Hello{Agency: agency, Receipts: true, TreeSize: size})
	m := c.recv()
	w, ok := m.(protocol.Welcome)
	if !ok {
		c.t.Fatalf("hello(%d) asking for receipts: got %#v, want Welcome", agency, m)
	}
	return w
}

// ack reads the ack of batch seq, which must say stored.
func (c *raw) ack(seq uint64) protocol.BatchAck {
	c.t.Helper()
	m := c.recv()
	ack, ok := m.(protocol.BatchAck)
	if !ok || ack.Seq != seq || ack.Code != lottery.NoError {
		c.t.Fatalf("got %#v, want the ack of batch %d", m, seq)
	}
	return ack
}

// finishAck sends Finished and returns its ack.
func (c *raw) finishAck(agency uint32, lastSeq uint64) protocol.FinishedAck {
	c.t.Helper()
	c.send(protocol.Finished{Agency: agency, LastSeq: lastSeq})
	m := c.recv()
	ack, ok := m.(protocol.FinishedAck)
	if !ok {
		c.t.Fatalf("finished: got %#v, want FinishedAck", m)
	}
	return ack
}

// statement reads the Statement frames that follow the winners and splits
// what they carry: the signed statement, and the consistency proof from the
// agency's tree to the statement's.
func (c *raw) statement() (msg []byte, proof []tlog.Hash) {
	c.t.Helper()
	var blob []byte
	for {
		m := c.recv()
		st, ok := m.(protocol.Statement)
		if !ok {
			c.t.Fatalf("got %#v, want the statement after the winners", m)
		}
		blob = append(blob, st.Data...)
		if st.Final {
			break
		}
	}
	if len(blob) < 4 {
		c.t.Fatalf("a statement blob of %d bytes", len(blob))
	}
	n := int(binary.BigEndian.Uint32(blob))
	if len(blob) < 4+n+1 {
		c.t.Fatalf("a statement of %d bytes in a blob of %d", n, len(blob))
	}
	msg, rest := blob[4:4+n], blob[4+n:]
	if k := int(rest[0]); len(rest) != 1+k*tlog.HashSize {
		c.t.Fatalf("a proof of %d hashes in %d bytes", k, len(rest)-1)
	}
	for i := 1; i < len(rest); i += tlog.HashSize {
		proof = append(proof, tlog.Hash(rest[i:i+tlog.HashSize]))
	}
	return msg, proof
}

// expectEcho sends an echo and expects it as the next frame: whatever the
// central answered before it, it sent nothing more.
func (c *raw) expectEcho() {
	c.t.Helper()
	c.send(protocol.Echo{Data: []byte("¿algo más?")})
	if m := c.recv(); !reflect.DeepEqual(m, protocol.Echo{Data: []byte("¿algo más?")}) {
		c.t.Fatalf("got %#v, want the echo: nothing after the answer", m)
	}
}

func receiptOf(t testing.TB, b []byte) audit.Receipt {
	t.Helper()
	if len(b) == 0 {
		t.Fatal("an ack without a receipt, to an agency that asked for receipts")
	}
	r, err := audit.DecodeReceipt(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// betsFile reads what the central appended to its bets file: the rows a
// batch's leaf covers, as stored.
type betsFile struct {
	t    testing.TB
	path string
	read int
}

// next returns the bytes appended since the last call.
func (f *betsFile) next() []byte {
	f.t.Helper()
	b, err := os.ReadFile(f.path)
	if err != nil {
		f.t.Fatal(err)
	}
	rows := b[f.read:]
	f.read = len(b)
	return rows
}

// winnersOf returns the documents of the winning bets, in order.
func winnersOf(bets []lottery.Bet) []string {
	docs := []string{}
	for _, b := range bets {
		if b.HasWon() {
			docs = append(docs, b.Document)
		}
	}
	return docs
}

// TestCentral_Receipts: an agency that asks for receipts gets one with every
// ack, and each verifies against the leaf of the rows bets.csv holds for its
// batch: a new checkpoint whenever the tree grew, none when the agency
// already holds the tree (a resend, on the same connection or on a new one
// that said the size it holds), the same leaf for a resend, the finished's
// leaf in the FinishedAck. After the draw the signed statement follows its
// winners and verifies; every agency's line says what it sent and was
// answered; the central wrote the same statement to its file and logged its
// tree. An agency that asked for nothing gets none of it.
func TestCentral_Receipts(t *testing.T) {
	signer, key := logKeys(t, 1)
	path := filepath.Join(t.TempDir(), "bets.csv")
	srv := startServer(t, central.Config{Agencies: 2, Log: central.NewLog(signer), StatementFile: path + ".sorteo"}, path)
	file := &betsFile{t: t, path: path}
	v := newVerifier(t, key, 1)

	one := gendata.Bets(1, 30, 3, seed)
	leaves := map[uint64]audit.Leaf{}
	var digests [][32]byte
	a := dialRaw(t, srv.addr)
	if w := a.helloReceipts(1, 0); w.LastSeq != 0 {
		t.Fatalf("welcomed with last_seq %d on a new central", w.LastSeq)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		a.sendBatch(1, seq, one[(seq-1)*10:seq*10])
		r := receiptOf(t, a.ack(seq).Receipt)
		want := audit.BatchLeaf(1, seq, 10, file.next())
		s, err := v.Accept(r, want)
		if err != nil {
			t.Fatalf("batch %d: %v", seq, err)
		}
		if r.Leaf != seq {
			t.Errorf("batch %d at leaf %d, want %d (leaf 0 is the base record)", seq, r.Leaf, seq)
		}
		// The agency held no tree, then the one of its previous receipt
		// (batch seq-1 at leaf seq-1: seq leaves).
		wantOld := seq
		if seq == 1 {
			wantOld = 0
		}
		if s.Checkpoint == nil || r.OldSize != wantOld {
			t.Errorf("batch %d: receipt from size %d with checkpoint %q, want a new checkpoint from size %d", seq, r.OldSize, r.Checkpoint, wantOld)
		}
		leaves[seq] = want
		digests = append(digests, want.Digest)
	}
	held := v.Size()

	t.Run("resend on the connection", func(t *testing.T) {
		a.sendBatch(1, 2, one[10:20])
		r := receiptOf(t, a.ack(2).Receipt)
		if r.Leaf != 2 || r.Checkpoint != nil || r.OldSize != held || r.Consistency != nil {
			t.Errorf("resent batch 2: leaf %d, old size %d, checkpoint %q, %d consistency hashes; want leaf 2 in the tree of %d the agency holds, no checkpoint",
				r.Leaf, r.OldSize, r.Checkpoint, len(r.Consistency), held)
		}
		if _, err := v.Accept(r, leaves[2]); err != nil {
			t.Fatal(err)
		}
		if rows := file.next(); len(rows) != 0 {
			t.Errorf("the resend was stored again: %q", rows)
		}
	})
	a.conn.Close()
	b := dialRaw(t, srv.addr)
	t.Run("resend on a new connection", func(t *testing.T) {
		if w := b.helloReceipts(1, held); w.LastSeq != 3 {
			t.Fatalf("welcomed with last_seq %d, want 3", w.LastSeq)
		}
		b.sendBatch(1, 3, one[20:30])
		r := receiptOf(t, b.ack(3).Receipt)
		if r.Leaf != 3 || r.Checkpoint != nil || r.OldSize != held {
			t.Errorf("resent batch 3: leaf %d, old size %d, checkpoint %q; want leaf 3 in the tree of %d the Hello said, no checkpoint",
				r.Leaf, r.OldSize, r.Checkpoint, held)
		}
		if _, err := v.Accept(r, leaves[3]); err != nil {
			t.Fatal(err)
		}
	})

	// Agency 2 asks for no receipts: its acks are the bytes they always were.
	two := gendata.Bets(2, 10, 1, seed)
	c := dialRaw(t, srv.addr)
	c.hello(2)
	c.sendBatch(2, 1, two)
	if ack := c.ack(1); ack.Receipt != nil {
		t.Errorf("agency 2 asked for no receipts, got one of %d bytes", len(ack.Receipt))
	}
	twoRows := file.next()
	c.finish(2, 1) // FinishedAck{}: no receipt

	fa := b.finishAck(1, 3)
	r := receiptOf(t, fa.Receipt)
	s, err := v.Accept(r, audit.FinishedLeaf(1, 3))
	if err != nil {
		t.Fatalf("finished: %v", err)
	}
	// Leaves: 0 base, 1-3 agency 1's batches, 4 agency 2's, 5 its finished.
	if r.Leaf != 6 || s.Checkpoint == nil || len(r.Consistency) == 0 {
		t.Errorf("finished at leaf %d, %d consistency hashes, checkpoint %q; want leaf 6, proven consistent with the tree of %d", r.Leaf, len(r.Consistency), s.Checkpoint, held)
	}

	b.send(protocol.WinnersQuery{Agency: 1})
	docs := b.readWinners()
	if want := winnersOf(one); !slices.Equal(docs, want) {
		t.Fatalf("agency 1's winners %v, want %v", docs, want)
	}
	msg, proof := b.statement()
	last, _ := v.Last()
	st, err := v.VerifyStatement(msg, proof, audit.OwnResult{LastSeq: 3, Bets: 30, Winners: docs, Salt: audit.AgencySalt(digests)})
	if err != nil {
		t.Fatalf("the statement: %v", err)
	}
	if st.Checkpoint != last.Checkpoint || proof != nil {
		t.Errorf("the statement's tree is %s with %d proof hashes, want the tree of the last receipt, %s, and none", st.Checkpoint, len(proof), last.Checkpoint)
	}
	docs2 := c.winners(2)
	c.expectEcho() // no statement to an agency that asked for none
	salt2 := audit.AgencySalt([][32]byte{audit.RowsDigest(twoRows)})
	wantLines := []audit.AgencyResult{
		{Agency: 1, Batches: 3, Bets: 30, Winners: uint64(len(docs)), WinnersHash: audit.WinnersHash(audit.AgencySalt(digests), docs)},
		{Agency: 2, Batches: 1, Bets: 10, Winners: uint64(len(docs2)), WinnersHash: audit.WinnersHash(salt2, docs2)},
	}
	if !reflect.DeepEqual(st.Agencies, wantLines) {
		t.Errorf("statement lines %+v, want %+v", st.Agencies, wantLines)
	}
	if len(docs2) != 1 {
		t.Errorf("agency 2's winners %v, want its one", docs2)
	}
	if written, err := os.ReadFile(path + ".sorteo"); err != nil || !bytes.Equal(written, msg) {
		t.Errorf("STORAGE_FILEPATH.sorteo holds %q (%v), want the statement sent", written, err)
	}
	srv.stop()
	lines := srv.log.Lines(t)
	if l, ok := testutil.FindOne(lines, "sorteo", "success"); !ok || l.Get("arbol") != strconv.FormatUint(st.Checkpoint.Size, 10) || l.Get("raiz") != st.Checkpoint.Root.String() {
		t.Errorf("sorteo line %q, want arbol: %d | raiz: %s", l.Raw, st.Checkpoint.Size, st.Checkpoint.Root)
	}
	if fails := testutil.Results(lines, "fail"); len(fails) > 0 {
		t.Errorf("central logged failures: %v", fails)
	}
}

// TestCentral_ReceiptFromTreeSize: the first receipt on a connection is
// proven from the tree its Hello says the agency holds, and verifies for an
// agency resumed from that checkpoint; a Hello that claims a tree bigger
// than the central's is answered as from no tree (the agency finds out from
// last_seq that the central forgot).
func TestCentral_ReceiptFromTreeSize(t *testing.T) {
	tests := []struct {
		name    string
		size    uint64 // the Hello's
		wantOld uint64 // the receipt's old size
	}{
		{name: "no tree", size: 0, wantOld: 0},
		{name: "an earlier tree", size: 2, wantOld: 2},
		{name: "the last tree", size: 3, wantOld: 3},
		{name: "a tree beyond the central's", size: 1000, wantOld: 0},
	}
	signer, key := logKeys(t, 2)
	bets := gendata.Bets(1, 3, 0, seed)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			srv := startServer(t, central.Config{Agencies: 1, Log: central.NewLog(signer)}, path)
			file := &betsFile{t: t, path: path}
			first := newVerifier(t, key, 1)
			notes := map[uint64][]byte{} // the checkpoints shown, by size
			a := dialRaw(t, srv.addr)
			a.helloReceipts(1, 0)
			for seq := uint64(1); seq <= 2; seq++ {
				a.sendBatch(1, seq, bets[seq-1:seq])
				s, err := first.Accept(receiptOf(t, a.ack(seq).Receipt), audit.BatchLeaf(1, seq, 1, file.next()))
				if err != nil {
					t.Fatal(err)
				}
				notes[s.TreeSize] = s.Checkpoint
			}
			a.conn.Close()

			b := dialRaw(t, srv.addr)
			if w := b.helloReceipts(1, tt.size); w.LastSeq != 2 {
				t.Fatalf("welcomed with last_seq %d, want 2", w.LastSeq)
			}
			b.sendBatch(1, 3, bets[2:3])
			r := receiptOf(t, b.ack(3).Receipt)
			if r.OldSize != tt.wantOld || r.Checkpoint == nil {
				t.Fatalf("receipt from size %d (checkpoint %q), want a new checkpoint from size %d", r.OldSize, r.Checkpoint, tt.wantOld)
			}
			if tt.wantOld == 0 && r.Consistency != nil {
				t.Errorf("a receipt from no tree with %d consistency hashes", len(r.Consistency))
			}
			v := newVerifier(t, key, 1)
			if tt.wantOld > 0 {
				if err := v.Resume(notes[tt.wantOld]); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := v.Accept(r, audit.BatchLeaf(1, 3, 1, file.next())); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCentral_NoReceipts: an agency that does not ask for receipts, or asks
// a central without a log, is answered the bytes it always was: a 13-byte
// BatchAck, an empty FinishedAck, its winners and nothing after them.
func TestCentral_NoReceipts(t *testing.T) {
	signer, _ := logKeys(t, 3)
	tests := []struct {
		name  string
		log   *central.Log
		hello protocol.Hello
	}{
		{name: "a central with a log, a Hello without receipts", log: central.NewLog(signer), hello: protocol.Hello{Agency: 1}},
		{name: "a central without a log, a Hello asking for them", hello: protocol.Hello{Agency: 1, Receipts: true, TreeSize: 7}},
	}
	bets := gendata.Bets(1, 5, 1, seed)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, central.Config{Agencies: 1, Log: tt.log}, filepath.Join(t.TempDir(), "bets.csv"))
			c := dialRaw(t, srv.addr)
			c.send(tt.hello)
			if m := c.recv(); !reflect.DeepEqual(m, protocol.Welcome{}) {
				t.Fatalf("got %#v, want Welcome", m)
			}
			c.sendBatch(1, 1, bets)
			f, err := c.next(waitLong)
			if err != nil {
				t.Fatal(err)
			}
			m, err := protocol.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			ack, _ := m.(protocol.BatchAck)
			want, _ := protocol.AppendFrame(nil, protocol.BatchAck{Seq: 1, Count: uint16(len(bets)), Window: ack.Window})
			if f.Type != protocol.TypeBatchAck || !bytes.Equal(f.Payload, want[protocol.HeaderSize:]) {
				t.Errorf("ack payload % x, want % x: no receipt field", f.Payload, want[protocol.HeaderSize:])
			}
			c.send(protocol.Finished{Agency: 1, LastSeq: 1})
			if f, err := c.next(waitLong); err != nil || f.Type != protocol.TypeFinishedAck || len(f.Payload) != 0 {
				t.Errorf("finished answered with a %s of %d bytes (%v), want an empty FinishedAck", f.Type, len(f.Payload), err)
			}
			if docs := c.winners(1); !slices.Equal(docs, winnersOf(bets)) {
				t.Errorf("winners %v, want %v", docs, winnersOf(bets))
			}
			c.expectEcho() // no statement after the winners
		})
	}
}

// countingLedger counts the batches submitted to the ledger it wraps.
type countingLedger struct {
	lottery.Ledger
	appends atomic.Int64
}

func (l *countingLedger) Append(agency uint32, seq uint64, rows *lottery.Rows) *lottery.Commit {
	c := l.Ledger.Append(agency, seq, rows)
	l.appends.Add(1)
	return c
}

// TestCentral_ReceiptsShareCheckpoint: the batches of one group commit are
// proven in one tree, whose checkpoint is signed once and sent once: the
// first ack of the group carries it, the next ones, on the same connection,
// refer to it. The disk is held in the first batch's fsync while two more
// batches are submitted, so that they make the next group together.
func TestCentral_ReceiptsShareCheckpoint(t *testing.T) {
	signer, key := logKeys(t, 4)
	disk := &hungDisk{release: make(chan struct{})}
	var ledger *countingLedger
	path := filepath.Join(t.TempDir(), "bets.csv")
	srv := startNodeOpts(t, central.Config{Agencies: 1, Log: central.NewLog(signer)}, path, "127.0.0.1:0", storage.Options{FS: disk},
		func(s *storage.Store) lottery.Ledger {
			ledger = &countingLedger{Ledger: s}
			return ledger
		})
	defer func() {
		if disk.armed.Load() {
			close(disk.release)
		}
	}()
	bets := gendata.Bets(1, 3, 0, seed)
	c := dialRaw(t, srv.addr)
	c.helloReceipts(1, 0) // once welcomed, the store is ready
	fsyncs := srv.store.Stats().Fsyncs
	disk.armed.Store(true)
	for seq := uint64(1); seq <= 3; seq++ {
		c.sendBatch(1, seq, bets[seq-1:seq])
		if seq == 1 {
			waitFor(t, "the first batch's fsync", func() bool { return srv.store.Stats().Fsyncs > fsyncs })
		}
	}
	waitFor(t, "the batches submitted", func() bool { return ledger.appends.Load() == 3 })
	disk.armed.Store(false)
	close(disk.release)

	v := newVerifier(t, key, 1)
	var rs []audit.Receipt
	for seq := uint64(1); seq <= 3; seq++ {
		r := receiptOf(t, c.ack(seq).Receipt)
		if _, err := v.Accept(r, audit.BatchLeaf(1, seq, 1, rowsOf(bets[seq-1]))); err != nil {
			t.Fatalf("batch %d: %v", seq, err)
		}
		rs = append(rs, r)
	}
	// Trees: 2 leaves after batch 1's group, 4 after batches 2 and 3's.
	if rs[0].Checkpoint == nil || rs[1].Checkpoint == nil || rs[1].OldSize != 2 {
		t.Errorf("batches 1 and 2: checkpoints %q and %q, want one each, the second from size 2", rs[0].Checkpoint, rs[1].Checkpoint)
	}
	if rs[2].Checkpoint != nil || rs[2].OldSize != 4 || rs[2].Consistency != nil {
		t.Errorf("batch 3, in batch 2's group: old size %d, checkpoint %q, %d consistency hashes; want the tree of 4 it already holds and no checkpoint",
			rs[2].OldSize, rs[2].Checkpoint, len(rs[2].Consistency))
	}
	if last, _ := v.Last(); last.Size != 4 {
		t.Errorf("the last tree has %d leaves, want 4", last.Size)
	}
}

// rowsOf is the bet's row as the central stores it.
func rowsOf(bets ...lottery.Bet) []byte {
	var rows lottery.Rows
	for _, b := range bets {
		rows.AddBet(b)
	}
	return rows.Bytes()
}

// unsignedStatements signs checkpoints but fails on a draw statement.
type unsignedStatements struct{ note.Signer }

func (s unsignedStatements) Sign(msg []byte) ([]byte, error) {
	if bytes.Contains(msg, []byte("\nsorteo v1\n")) {
		return nil, errors.New("the signer is gone")
	}
	return s.Signer.Sign(msg)
}

// TestCentral_NoStatement: a central that could not sign its draw
// statement still answers the winners, and an agency that checks the audit
// log refuses the draw at once: verificar_sorteo fails, naming the missing
// statement, and Run ends with an error. It does not ask again and again
// for a statement that will never come. A statement that was signed but
// cannot be kept in STORAGE_FILEPATH.sorteo still reaches the agencies:
// the central says the file failed, the agency verifies the draw.
func TestCentral_NoStatement(t *testing.T) {
	for _, tt := range []struct {
		name     string
		unsigned bool
	}{{"Unsigned", true}, {"FileNotWritten", false}} {
		t.Run(tt.name, func(t *testing.T) {
			signer, key := logKeys(t, 5)
			dir := t.TempDir()
			path := filepath.Join(dir, "bets.csv")
			if tt.unsigned {
				signer = unsignedStatements{signer}
			}
			srv := startServer(t, central.Config{Agencies: 1, Log: central.NewLog(signer), StatementFile: filepath.Join(dir, "missing", "bets.csv.sorteo")}, path)
			d := genData(t, 1, 50, func(int) int { return 2 })
			r := startAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: srv.addr, DataFile: d.file(1), MaxAmount: 20,
				LogKey: key, Receipts: filepath.Join(dir, "agency-1.receipts"), ReplyTimeout: 2 * time.Second})
			_, err := r.wait(t)
			lines, perr := testutil.ParseAll(r.log.String())
			if perr != nil {
				t.Fatal(perr)
			}
			if n := srv.log.String(); !strings.Contains(n, "the draw statement") {
				t.Errorf("the central did not say its statement failed:\n%s", n)
			}
			if !tt.unsigned {
				if _, ok := testutil.FindOne(lines, "verificar_sorteo", "success"); err != nil || !ok {
					t.Errorf("Run = %v; want the draw verified though the file was not written:\n%s", err, r.log.String())
				}
				return
			}
			if err == nil {
				t.Fatal("Run succeeded on a draw without a statement")
			}
			l, ok := testutil.FindOne(lines, "verificar_sorteo", "fail")
			if !ok || l.Level != "ERROR" || !strings.Contains(l.Get("error"), "without the signed draw statement") {
				t.Errorf("verificar_sorteo line %q, want one ERROR naming the missing statement", l.Raw)
			}
			if errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v: it had to be stopped", err)
			}
		})
	}
}

// TestCentral_AuditedAgencies: agencies that check the audit log upload
// together to a real central, pipelining, so that receipts of one group
// share a checkpoint: every receipt and the statement verify, each agency
// logs verificar_sorteo success with the central's tree and root and the
// whole draw's bets, and keeps one receipt per batch, its finished and the
// statement the central wrote. Run again after the draw (a restart), an
// agency is acked its batches as resends, with receipts from no tree,
// verifies the same statement, and keeps its first receipts aside.
func TestCentral_AuditedAgencies(t *testing.T) {
	signer, key := logKeys(t, 6)
	const agencies, bets = 3, 600
	dir := t.TempDir()
	path := filepath.Join(dir, "bets.csv")
	m := metrics.New(agencies)
	srv := startServer(t, central.Config{Agencies: agencies, Log: central.NewLog(signer), StatementFile: path + ".sorteo", Metrics: m}, path)
	d := genData(t, agencies, bets, realWinners)
	receipts := func(id int) string { return filepath.Join(dir, "agency-"+strconv.Itoa(id)+".receipts") }
	audited := func(cfg *agency.Config) { cfg.LogKey, cfg.Receipts = key, receipts(cfg.ID) }
	runs := runAgencies(t, srv.addr, d, []int{1, 2, 3}, audited)
	checkWinners(t, d, runs)

	statement, err := os.ReadFile(path + ".sorteo")
	if err != nil {
		t.Fatal(err)
	}
	draw, ok := testutil.FindOne(srv.log.Lines(t), "sorteo", "success")
	if !ok {
		t.Fatal("no sorteo line")
	}
	// The operator's status page shows the newest checkpoint: the draw's.
	if cp := m.Snapshot(0, 0).Checkpoint; cp == nil || strconv.FormatUint(cp.Size, 10) != draw.Get("arbol") || cp.Root != draw.Get("raiz") {
		t.Errorf("the status's checkpoint is %+v, want the draw's tree %s, root %s", cp, draw.Get("arbol"), draw.Get("raiz"))
	}
	// check checks an agency's verificar_sorteo line and its receipts file
	// at path.
	check := func(t *testing.T, r *run, path string) {
		t.Helper()
		lines, err := testutil.ParseAll(r.log.String())
		if err != nil {
			t.Fatal(err)
		}
		l, ok := testutil.FindOne(lines, "verificar_sorteo", "success")
		want := map[string]string{"raiz": draw.Get("raiz"), "arbol": draw.Get("arbol"), "apuestas": strconv.Itoa(agencies * bets),
			"agency": strconv.Itoa(r.id), "apuestas_agencia": strconv.Itoa(bets), "ganadores_agencia": strconv.Itoa(len(d.winners(r.id)))}
		for k, v := range want {
			if !ok || l.Get(k) != v {
				t.Errorf("agency %d verificar_sorteo line %q: %s is %q, want %q", r.id, l.Raw, k, l.Get(k), v)
			}
		}
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rf, err := audit.ReadReceipts(bytes.NewReader(text))
		if err != nil {
			t.Fatalf("agency %d's receipts: %v", r.id, err)
		}
		batches := (bets + 36) / 37 // MaxAmount 37
		if n := len(rf.Records); n != batches+1 || rf.Records[n-1].Kind != audit.KindFinished {
			t.Errorf("agency %d keeps %d receipts, want one per batch (%d) and its finished", r.id, n, batches)
		}
		if len(rf.Checkpoints) == 0 || len(rf.Checkpoints) > len(rf.Records) {
			t.Errorf("agency %d keeps %d checkpoints for %d receipts", r.id, len(rf.Checkpoints), len(rf.Records))
		}
		if !bytes.Equal(rf.Statement, statement) {
			t.Errorf("agency %d keeps another statement than the central's", r.id)
		}
	}
	for _, r := range runs {
		t.Run("agency "+strconv.Itoa(r.id), func(t *testing.T) { check(t, r, receipts(r.id)) })
	}
	t.Run("restart after the draw", func(t *testing.T) {
		first, err := os.ReadFile(receipts(1))
		if err != nil {
			t.Fatal(err)
		}
		runs := runAgencies(t, srv.addr, d, []int{1}, audited)
		checkWinners(t, d, runs)
		check(t, runs[0], receipts(1))
		prev, _ := filepath.Glob(receipts(1) + ".prev-*")
		if len(prev) != 1 {
			t.Fatalf("files %v, want the first run's receipts in one .prev-<time>", prev)
		}
		if b, err := os.ReadFile(prev[0]); err != nil || !bytes.Equal(b, first) {
			t.Errorf("%s is not the first run's receipts file (%v)", prev[0], err)
		}
	})
}

// TestCentral_AuditedRestart: an agency that checks the audit log finishes
// and waits for the draw while the central restarts (with the same log
// key): it reconnects saying the tree it holds, and the statement the new
// central signs is proven consistent with it. After a second restart,
// after the draw, the recovered statement is the same bytes.
func TestCentral_AuditedRestart(t *testing.T) {
	signer, key := logKeys(t, 7)
	d := genData(t, 3, 300, realWinners)
	dir := t.TempDir()
	path := filepath.Join(dir, "bets.csv")
	cfg := func() central.Config {
		return central.Config{Agencies: 3, Log: central.NewLog(signer), StatementFile: path + ".sorteo"}
	}
	audited := func(c *agency.Config) {
		c.LogKey, c.Receipts = key, filepath.Join(dir, "agency-"+strconv.Itoa(c.ID)+".receipts")
	}
	srv := startServer(t, cfg(), path)
	r1 := runAgencies(t, srv.addr, d, []int{1}, audited)
	waitFor(t, "agency 1 finished", func() bool {
		return len(testutil.Find(srv.log.Lines(t), "agencia_finalizada", "success")) == 1
	})
	srv.stop()

	srv2 := startServerAt(t, cfg(), path, srv.addr)
	waitFor(t, "agency 1 counted as finished again", func() bool { return srv2.c.Barrier().Pending() == 2 })
	checkWinners(t, d, runAgencies(t, srv2.addr, d, []int{2, 3}, audited))
	checkWinners(t, d, r1)
	lines, err := testutil.ParseAll(r1[0].log.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := testutil.FindOne(lines, "verificar_sorteo", "success"); !ok {
		t.Errorf("agency 1 did not verify the statement across the restart")
	}
	statement, err := os.ReadFile(path + ".sorteo")
	if err != nil {
		t.Fatal(err)
	}
	srv2.stop()

	srv3 := startServer(t, cfg(), path)
	waitFor(t, "the draw recovered at start", func() bool {
		_, ok := testutil.FindOne(srv3.log.Lines(t), "recuperar_sorteo", "success")
		return ok
	})
	c := dialRaw(t, srv3.addr)
	c.helloReceipts(2, 0)
	c.winners(2)
	msg, _ := c.statement()
	if !bytes.Equal(msg, statement) {
		t.Errorf("the recovered statement differs from the draw's:\n%s\nwant\n%s", msg, statement)
	}
}
