package agency_test

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"lottery"
	"lottery/agency"
	"lottery/audit"
	"lottery/internal/testutil"
	"lottery/logline"
	"lottery/protocol"
)

const (
	waitLong  = 60 * time.Second
	waitShort = 10 * time.Second
)

// fakeCentral speaks the protocol as the central does, with the knobs a
// test needs: it stores batches in sequence (acking a repeated one as the
// real central does), can drop a connection once, can hold back the
// winners, can act as a node of a replicated central that does not lead,
// can delay its acks, and can keep an audit log (fakeLog) that lies.
type fakeCentral struct {
	t    testing.TB
	ln   net.Listener
	addr string

	// dropAt: the first time batch dropAt arrives, it is stored but the
	// connection is closed before its ack, after calling onDrop (if set).
	dropAt uint64
	onDrop func()
	// ackDelay: each ack leaves ackDelay after its batch arrived (a
	// central with a constant latency that pipelines its batches), or,
	// with serialAcks, ackDelay after the previous ack (a saturated
	// central that serves one batch at a time, so its latency grows with
	// the batches queued).
	ackDelay   time.Duration
	serialAcks bool
	// refuse: answer the first refuse batch frames with EStorage, storing
	// nothing, as a central with a sick disk does.
	refuse int
	// holdWinners: never answer a WinnersQuery.
	holdWinners bool
	// forgetAt, forgetTo: the first time batch forgetAt is stored (or, with
	// forgetAfterFinish, once the agency has finished), the fake acks it,
	// then forgets every batch after forgetTo and drops the connection: a
	// central whose files were cut back and repaired.
	forgetAt, forgetTo uint64
	forgetAfterFinish  bool
	forgotten          bool
	// hangUps: close that many connections at their Hello, unanswered.
	hangUps int
	// winners is the answer to a WinnersQuery.
	winners []string
	// log, when set, is the fake's audit log: an agency whose Hello asks
	// for receipts gets them, and the signed draw statement after its
	// winners (see fakeLog). Nil: a central without a log, whose acks
	// carry no receipt whatever the Hello asks.
	log *fakeLog

	mu sync.Mutex
	// follower: a node of a replicated central that does not lead: it
	// answers any request with not_leader naming hint, and closes.
	follower    bool
	hint        string
	welcome     bool // a follower that still welcomes a Hello (it believes it leads), and refuses the rest
	notLeader   int  // not_leader answers sent
	maxInFlight int  // most batches received and not yet acked on a connection
	conns       map[net.Conn]bool
	connections int
	dropped     bool
	batches     []fakeBatch // stored, in sequence
	frameSizes  []int       // every batch frame received, in order
	duplicates  int
	finished    []protocol.Finished
	queries     int
	queried     chan struct{} // closed at the first WinnersQuery

	wg sync.WaitGroup
}

type fakeBatch struct {
	seq  uint64
	bets []lottery.Bet
	leaf uint64 // its leaf in the audit log, with one
}

func newFake(t testing.TB, configure func(*fakeCentral)) *fakeCentral {
	t.Helper()
	return newFakeAt(t, "127.0.0.1:0", configure)
}

// newFakeAt is newFake listening on addr.
func newFakeAt(t testing.TB, addr string, configure func(*fakeCentral)) *fakeCentral {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCentral{t: t, ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]bool{}, queried: make(chan struct{})}
	if configure != nil {
		configure(f)
	}
	if f.log != nil {
		f.log.start(t)
	}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *fakeCentral) accept() {
	defer f.wg.Done()
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns[conn] = true
		f.connections++
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer conn.Close()
			f.serve(conn)
		}()
	}
}

func (f *fakeCentral) close() {
	f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeCentral) lastSeq() uint64 {
	if n := len(f.batches); n > 0 {
		return f.batches[n-1].seq
	}
	return 0
}

// follow makes the fake a node that does not lead, naming hint as the
// leader ("" for none known).
func (f *fakeCentral) follow(hint string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.follower, f.hint = true, hint
}

// lead makes the fake the leader, with the batches already stored (as
// replicated from the previous leader).
func (f *fakeCentral) lead(stored []fakeBatch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.follower, f.hint = false, ""
	f.batches = slices.Clone(stored)
}

// dropConns closes every connection, as a node that dies does.
func (f *fakeCentral) dropConns() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
}

// storedBatches returns the batches stored, in sequence.
func (f *fakeCentral) storedBatches() []fakeBatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

// delayedAck is an ack and when to send it.
type delayedAck struct {
	ack protocol.BatchAck
	due time.Time
}

func (f *fakeCentral) serve(conn net.Conn) {
	r := protocol.NewReader(conn)
	var wmu sync.Mutex // the ack sender writes too
	send := func(m protocol.Message) bool {
		b, _ := protocol.AppendFrame(nil, m)
		wmu.Lock()
		defer wmu.Unlock()
		conn.SetWriteDeadline(time.Now().Add(waitShort))
		_, err := conn.Write(b)
		return err == nil
	}
	var inFlight atomic.Int64
	var au connAudit // what this connection was shown of the audit log
	if f.ackDelay > 0 {
		acks := make(chan delayedAck, 4096)
		quit, sent := make(chan struct{}), make(chan struct{})
		defer func() {
			close(quit) // the connection ends: the acks still due are not sent
			close(acks)
			<-sent
		}()
		var last time.Time
		sendNow := send
		send = func(m protocol.Message) bool {
			ack, ok := m.(protocol.BatchAck)
			if !ok {
				return sendNow(m)
			}
			start := time.Now()
			if f.serialAcks && last.After(start) {
				start = last
			}
			due := start.Add(f.ackDelay)
			last = due
			acks <- delayedAck{ack, due}
			return true
		}
		go func() {
			defer close(sent)
			for a := range acks {
				select {
				case <-time.After(time.Until(a.due)):
				case <-quit:
					continue
				}
				inFlight.Add(-1)
				if !sendNow(a.ack) {
					conn.Close()
				}
			}
		}()
	}
	for {
		fr, err := r.Next()
		if err != nil {
			return
		}
		f.mu.Lock()
		follower, hint := f.follower && !(f.welcome && fr.Type == protocol.TypeHello), f.hint
		if follower {
			f.notLeader++
		}
		f.mu.Unlock()
		if follower {
			send(protocol.Error{Code: lottery.ENotLeader, Message: hint})
			return
		}
		if fr.Type == protocol.TypeBatch {
			if n := inFlight.Add(1); f.ackDelay > 0 {
				f.mu.Lock()
				f.maxInFlight = max(f.maxInFlight, int(n))
				f.mu.Unlock()
			}
			if !f.batch(conn, fr, send, &au) {
				return
			}
			continue
		}
		m, err := protocol.Decode(fr)
		if err != nil {
			f.t.Errorf("fake central: %v", err)
			return
		}
		var ok bool
		switch m := m.(type) {
		case protocol.Hello:
			f.mu.Lock()
			last, hangUp := f.lastSeq(), f.hangUps > 0
			f.hangUps--
			if f.log != nil && m.Receipts {
				au = f.log.hello(m.TreeSize)
			}
			f.mu.Unlock()
			ok = !hangUp && send(protocol.Welcome{LastSeq: last})
		case protocol.Finished:
			f.mu.Lock()
			f.finished = append(f.finished, m)
			forget := f.forgetAfterFinish && !f.forgotten
			var receipt []byte
			if au.receipts {
				receipt = f.log.finished(&au, m.Agency, m.LastSeq)
			}
			f.mu.Unlock()
			ok = send(protocol.FinishedAck{Receipt: receipt}) && !(forget && f.forget())
		case protocol.WinnersQuery:
			f.mu.Lock()
			if f.queries == 0 {
				close(f.queried)
			}
			f.queries++
			var statement []protocol.Statement
			if au.receipts && !f.holdWinners {
				statement = f.log.statementFrames(&au, f.lastSeq(), f.winners)
			}
			f.mu.Unlock()
			ok = f.holdWinners || send(protocol.Winners{Final: true, Documents: f.winners})
			for _, st := range statement {
				ok = ok && send(st)
			}
		case protocol.Echo:
			ok = send(m)
		default:
			f.t.Errorf("fake central: unexpected %T", m)
		}
		if !ok {
			return
		}
	}
}

// batch stores a batch in sequence and acks it; it reports whether to keep
// the connection.
func (f *fakeCentral) batch(conn net.Conn, fr protocol.Frame, send func(protocol.Message) bool, au *connAudit) bool {
	v, err := protocol.ParseBatch(fr.Payload)
	if err != nil {
		f.t.Errorf("fake central: %v", err)
		return false
	}
	var bets []lottery.Bet
	for b := range v.Bets() {
		bets = append(bets, b.Bet(int(v.Agency)))
	}
	f.mu.Lock()
	f.frameSizes = append(f.frameSizes, protocol.HeaderSize+len(fr.Payload))
	if f.refuse > 0 {
		f.refuse--
		f.mu.Unlock()
		return send(protocol.BatchAck{Seq: v.Seq, Code: lottery.EStorage, Count: uint16(v.Count)})
	}
	code := lottery.NoError
	var leaf uint64
	switch last := f.lastSeq(); {
	case v.Seq <= last:
		f.duplicates++
		if i := slices.IndexFunc(f.batches, func(b fakeBatch) bool { return b.seq == v.Seq }); i >= 0 {
			leaf = f.batches[i].leaf
		}
	case v.Seq == last+1:
		if f.log != nil {
			leaf = f.log.batch(v.Agency, v.Seq, bets)
		}
		f.batches = append(f.batches, fakeBatch{seq: v.Seq, bets: bets, leaf: leaf})
	default:
		code = lottery.ESequence
		f.t.Errorf("fake central: batch %d after %d", v.Seq, last)
	}
	var receipt []byte
	if code == lottery.NoError && au.receipts {
		receipt = f.log.receipt(au, v.Seq, leaf)
	}
	drop := f.dropAt == v.Seq && !f.dropped
	if drop {
		f.dropped = true
	}
	forget := f.forgetAt == v.Seq && !f.forgotten && !f.forgetAfterFinish
	f.mu.Unlock()
	ack := protocol.BatchAck{Seq: v.Seq, Code: code, Count: uint16(v.Count), Receipt: receipt}
	if forget {
		return send(ack) && !f.forget()
	}
	if drop {
		if f.onDrop != nil {
			f.onDrop()
		}
		return false
	}
	return send(ack)
}

// forget drops every batch after forgetTo, once; the caller then closes
// the connection. It returns true.
func (f *fakeCentral) forget() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgotten = true
	f.batches = slices.DeleteFunc(f.batches, func(b fakeBatch) bool { return b.seq > f.forgetTo })
	if f.log != nil {
		f.log.cut(f.batches)
	}
	return true
}

// stored returns every stored bet in order.
func (f *fakeCentral) stored() []lottery.Bet {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []lottery.Bet
	for _, b := range f.batches {
		out = append(out, b.bets...)
	}
	return out
}

// snapshot is the fake's counters at one moment.
type snapshot struct {
	connections, duplicates, frames, notLeader, queries, maxInFlight int
	finished                                                         []protocol.Finished
}

func (f *fakeCentral) snapshot() snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return snapshot{connections: f.connections, duplicates: f.duplicates, frames: len(f.frameSizes),
		notLeader: f.notLeader, queries: f.queries, maxInFlight: f.maxInFlight, finished: slices.Clone(f.finished)}
}

// sizes returns the size of every batch frame received.
func (f *fakeCentral) sizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.frameSizes)
}

// batchCounts returns the number of bets of each stored batch.
func (f *fakeCentral) batchCounts() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, b := range f.batches {
		out = append(out, len(b.bets))
	}
	return out
}

// runAgency runs an agency to its end (or the test's deadline) and returns
// its result, error and log.
func runAgency(t testing.TB, ctx context.Context, cfg agency.Config) (agency.Result, error, *testutil.Buffer) {
	t.Helper()
	logs := testutil.NewBuffer()
	a, err := agency.New(cfg, logline.New(logs, slog.LevelDebug))
	if err != nil {
		t.Fatalf("agency.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, waitLong)
	defer cancel()
	res, err := a.Run(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("agency did not finish in %v:\n%s", waitLong, logs.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agency %d log:\n%s", cfg.ID, logs.String())
		}
	})
	return res, err, logs
}

// fakeLog is the fake central's audit log, built as the central builds it
// (docs/audit.md): a tree whose leaf 0 is the base record and then one leaf
// per batch stored and per finished, a checkpoint signed for every
// receipt, receipts proven from the last tree shown on the connection, and
// the signed draw statement. Its knobs make it lie in the ways the
// agency must catch.
type fakeLog struct {
	// signer signs the checkpoints; statementSigner the statement (nil:
	// signer).
	signer, statementSigner note.Signer
	// The lies, each told in the ack of one batch (0: never):
	otherRows uint64 // its leaf hashes other rows than the agency sent: the central stored others
	omit      uint64 // its ack carries no receipt
	fork      uint64 // it is stored in another history: leaf 0 was rewritten
	shrink    uint64 // its receipt shows a tree smaller than the one shown before
	// omitFinished: the FinishedAck carries no receipt.
	omitFinished bool
	// statement changes the draw statement before it is signed;
	// noStatement sends one empty final piece instead of it, as a central
	// that has none does.
	statement   func(*audit.Statement)
	noStatement bool

	// Guarded by fakeCentral.mu.
	t        testing.TB
	leaves   []audit.Leaf
	tree     audit.Tree
	bets     uint64
	digests  [][32]byte // the rows digests of the agency's batches: the statement's salt
	finishAt uint64     // the finished's leaf, once stored (0: not yet)
	// signed is every statement signed, in order.
	signed [][]byte
}

// connAudit is what one connection of the fake knows of the audit log:
// whether its agency asked for receipts, and the size of the last tree
// shown to it.
type connAudit struct {
	receipts bool
	shown    uint64
}

func (l *fakeLog) start(t testing.TB) {
	l.t = t
	l.append(audit.BaseLeaf(0, nil))
}

func (l *fakeLog) append(leaf audit.Leaf) uint64 {
	i := l.tree.Size()
	if err := l.tree.AppendLeaf(leaf); err != nil {
		l.t.Errorf("fake central: %v", err)
	}
	l.leaves = append(l.leaves, leaf)
	return i
}

// hello is a connection's state after a Hello that asks for receipts: a
// tree the fake does not hold counts as none, as the central does.
func (l *fakeLog) hello(size uint64) connAudit {
	if size > l.tree.Size() {
		size = 0
	}
	return connAudit{receipts: true, shown: size}
}

// batch stores the leaf of a new batch and returns its index.
func (l *fakeLog) batch(agency uint32, seq uint64, bets []lottery.Bet) uint64 {
	var rows lottery.Rows
	for _, b := range bets {
		rows.AddBet(b)
	}
	stored := rows.Bytes()
	if seq == l.otherRows {
		stored = append(slices.Clone(stored), "1,Otra,Persona,1,2000-01-01,7574\r\n"...)
	}
	if seq == l.fork {
		l.rewrite()
	}
	leaf := audit.BatchLeaf(agency, seq, uint32(len(bets)), stored)
	l.bets += uint64(len(bets))
	l.digests = append(l.digests, leaf.Digest)
	return l.append(leaf)
}

// rewrite replaces the history: the same leaves, but leaf 0 says the bets
// file held a row before the journal.
func (l *fakeLog) rewrite() {
	leaves := slices.Clone(l.leaves)
	leaves[0] = audit.BaseLeaf(1, []byte("1,Otra,Historia,1,2000-01-01,7574\r\n"))
	l.tree, l.leaves = audit.Tree{}, nil
	for _, leaf := range leaves {
		l.append(leaf)
	}
}

// cut cuts the tree back after the last of the batches kept, as a central
// whose files were cut and repaired holds it: the finished and every later
// batch are gone.
func (l *fakeLog) cut(kept []fakeBatch) {
	n, bets := uint64(1), uint64(0)
	for _, b := range kept {
		n, bets = b.leaf+1, bets+uint64(len(b.bets))
	}
	leaves := l.leaves[:n]
	l.tree, l.leaves = audit.Tree{}, nil
	for _, leaf := range leaves {
		l.append(leaf)
	}
	l.digests, l.bets, l.finishAt = l.digests[:len(kept)], bets, 0
}

// finished stores the agency's finished leaf, once, and returns the
// FinishedAck's receipt.
func (l *fakeLog) finished(au *connAudit, agency uint32, lastSeq uint64) []byte {
	if l.finishAt == 0 {
		l.finishAt = l.append(audit.FinishedLeaf(agency, lastSeq))
	}
	if l.omitFinished {
		return nil
	}
	return l.receipt(au, lastSeq, l.finishAt)
}

// checkpoint signs the checkpoint of the tree of size leaves.
func (l *fakeLog) checkpoint(size uint64) audit.SignedCheckpoint {
	cp, err := audit.NewSignedCheckpoint(&l.tree, l.signer.Name(), size, l.signer)
	if err != nil {
		l.t.Errorf("fake central: %v", err)
	}
	return cp
}

// receipt proves leaf in the whole tree, from the tree last shown on the
// connection, and tells the lie due at batch seq, if any.
func (l *fakeLog) receipt(au *connAudit, seq, leaf uint64) []byte {
	var r audit.Receipt
	switch {
	case seq == l.omit:
		return nil
	case seq == l.shrink && au.shown > 1:
		cp := l.checkpoint(au.shown - 1)
		r = audit.Receipt{Seq: seq, Leaf: leaf, Checkpoint: cp.Note, OldSize: au.shown}
		au.shown = cp.Size
	default:
		cp := l.checkpoint(l.tree.Size())
		var err error
		if r, err = audit.NewReceipt(&l.tree, seq, leaf, cp, au.shown); err != nil {
			l.t.Errorf("fake central: %v", err)
			return nil
		}
		au.shown = cp.Size
	}
	b, err := r.Encode()
	if err != nil {
		l.t.Errorf("fake central: %v", err)
	}
	return b
}

// statementFrames signs the draw statement over the whole tree, for
// agencies 1 to the one asking (only the last line is checked by it), and
// cuts it, with the consistency proof from the tree shown, into Statement
// frames.
func (l *fakeLog) statementFrames(au *connAudit, lastSeq uint64, winners []string) []protocol.Statement {
	if l.noStatement {
		return []protocol.Statement{{Final: true}}
	}
	cp := l.checkpoint(l.tree.Size())
	st := audit.Statement{Checkpoint: cp.Checkpoint, Number: lottery.WinningNumber, Agencies: []audit.AgencyResult{{Agency: 1,
		Batches: lastSeq, Bets: l.bets, Winners: uint64(len(winners)), WinnersHash: audit.WinnersHash(audit.AgencySalt(l.digests), winners)}}}
	if l.statement != nil {
		l.statement(&st)
	}
	signer := l.statementSigner
	if signer == nil {
		signer = l.signer
	}
	msg, err := audit.SignStatement(st, signer)
	if err != nil {
		l.t.Errorf("fake central: %v", err)
	}
	l.signed = append(l.signed, msg)
	proof, err := audit.ProveConsistency(&l.tree, au.shown, cp.Size)
	if err != nil {
		l.t.Errorf("fake central: %v", err)
	}
	blob := binary.BigEndian.AppendUint32(nil, uint32(len(msg)))
	blob = append(blob, msg...)
	blob = append(blob, byte(len(proof)))
	for _, h := range proof {
		blob = append(blob, h[:]...)
	}
	var frames []protocol.Statement
	for len(blob) > 0 {
		n := min(len(blob), protocol.MaxPayloadSize-3)
		frames = append(frames, protocol.Statement{Final: n == len(blob), Data: blob[:n]})
		blob = blob[n:]
	}
	return frames
}
