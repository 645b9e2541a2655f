package agency_test

import (
	"context"
	"errors"
	"log/slog"
	"lottery/internal/testutil"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lottery"
	"lottery/agency"
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
// and can delay its acks.
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
			if !f.batch(conn, fr, send) {
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
			f.mu.Unlock()
			ok = !hangUp && send(protocol.Welcome{LastSeq: last})
		case protocol.Finished:
			f.mu.Lock()
			f.finished = append(f.finished, m)
			forget := f.forgetAfterFinish && !f.forgotten
			f.mu.Unlock()
			ok = send(protocol.FinishedAck{}) && !(forget && f.forget())
		case protocol.WinnersQuery:
			f.mu.Lock()
			if f.queries == 0 {
				close(f.queried)
			}
			f.queries++
			f.mu.Unlock()
			ok = f.holdWinners || send(protocol.Winners{Final: true, Documents: f.winners})
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
func (f *fakeCentral) batch(conn net.Conn, fr protocol.Frame, send func(protocol.Message) bool) bool {
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
	switch last := f.lastSeq(); {
	case v.Seq <= last:
		f.duplicates++
	case v.Seq == last+1:
		f.batches = append(f.batches, fakeBatch{seq: v.Seq, bets: bets})
	default:
		code = lottery.ESequence
		f.t.Errorf("fake central: batch %d after %d", v.Seq, last)
	}
	drop := f.dropAt == v.Seq && !f.dropped
	if drop {
		f.dropped = true
	}
	forget := f.forgetAt == v.Seq && !f.forgotten && !f.forgetAfterFinish
	f.mu.Unlock()
	if forget {
		return send(protocol.BatchAck{Seq: v.Seq, Code: code, Count: uint16(v.Count)}) && !f.forget()
	}
	if drop {
		if f.onDrop != nil {
			f.onDrop()
		}
		return false
	}
	return send(protocol.BatchAck{Seq: v.Seq, Code: code, Count: uint16(v.Count)})
}

// forget drops every batch after forgetTo, once; the caller then closes
// the connection. It returns true.
func (f *fakeCentral) forget() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgotten = true
	f.batches = slices.DeleteFunc(f.batches, func(b fakeBatch) bool { return b.seq > f.forgetTo })
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
