package central_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"lottery"
	"lottery/agency"
	"lottery/central"
	"lottery/gendata"
	"lottery/internal/testutil"
	"lottery/logline"
	"lottery/protocol"
	"lottery/storage"
)

// Generous bounds for a loaded 2-core machine. They only stop a hung test;
// nothing asserts how long anything took.
const (
	waitLong  = 60 * time.Second
	waitShort = 10 * time.Second
	seed      = 20240917
)

// waitFor polls cond until it holds or waitLong passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, waitLong, what, cond)
}

// server is a central serving on 127.0.0.1:0 over a real store.
type server struct {
	t      testing.TB
	c      *central.Central
	store  *storage.Store
	path   string
	addr   string
	log    *testutil.Buffer
	served chan error
	closed bool
}

func startServer(t testing.TB, cfg central.Config, path string) *server {
	t.Helper()
	return startServerAt(t, cfg, path, "127.0.0.1:0")
}

// startServerAt is startServer listening on addr (a restarted central
// takes its predecessor's port, so agencies find it again).
func startServerAt(t testing.TB, cfg central.Config, path, addr string) *server {
	t.Helper()
	return startNode(t, cfg, path, addr, nil)
}

// startNode is startServerAt with a central whose store is wrapped by
// ledger (nil: the store as it is), e.g. as a node of a group.
func startNode(t testing.TB, cfg central.Config, path, addr string, ledger func(*storage.Store) lottery.Ledger) *server {
	t.Helper()
	return startNodeOpts(t, cfg, path, addr, storage.Options{NoSync: true}, ledger)
}

// startNodeOpts is startNode over a store opened with opts (a test that
// holds the disk's fsyncs needs them done).
func startNodeOpts(t testing.TB, cfg central.Config, path, addr string, opts storage.Options, ledger func(*storage.Store) lottery.Ledger) *server {
	t.Helper()
	store, _, err := storage.Open(path, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	var l lottery.Ledger = store
	if ledger != nil {
		l = ledger(store)
	}
	logs := testutil.NewBuffer()
	c, err := central.New(cfg, l, logline.New(logs, slog.LevelDebug))
	if err != nil {
		store.Close()
		t.Fatalf("central.New: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	s := &server{t: t, c: c, store: store, path: path, addr: ln.Addr().String(), log: logs, served: make(chan error, 1)}
	go func() { s.served <- c.Serve(ln) }()
	t.Cleanup(func() {
		if !s.closed {
			s.stop()
		}
		if t.Failed() {
			t.Logf("central log:\n%s", logs.String())
		}
	})
	return s
}

// shutdown stops the central with a generous deadline and returns what
// Shutdown and Serve returned. The store stays open.
func (s *server) shutdown(timeout time.Duration) (shutdownErr, serveErr error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	shutdownErr = s.c.Shutdown(ctx)
	select {
	case serveErr = <-s.served:
	case <-time.After(waitShort):
		serveErr = errors.New("Serve did not return after Shutdown")
	}
	return shutdownErr, serveErr
}

// stop shuts down and closes the store.
func (s *server) stop() {
	s.t.Helper()
	s.closed = true
	_, serveErr := s.shutdown(waitShort)
	if !errors.Is(serveErr, central.ErrServerClosed) {
		s.t.Errorf("Serve returned %v, want ErrServerClosed", serveErr)
	}
	if err := s.store.Close(); err != nil {
		s.t.Errorf("close store: %v", err)
	}
}

// raw is a protocol client that sends exactly the bytes a test wants.
type raw struct {
	t    testing.TB
	conn net.Conn
	r    *protocol.Reader
}

func dialRaw(t testing.TB, addr string) *raw {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitShort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &raw{t: t, conn: conn, r: protocol.NewReader(conn)}
}

func (c *raw) write(b []byte) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(waitShort))
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *raw) send(m protocol.Message) {
	c.t.Helper()
	b, err := protocol.AppendFrame(nil, m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(b)
}

// sendBatch sends one batch frame of the bets.
func (c *raw) sendBatch(agency uint32, seq uint64, bets []lottery.Bet) {
	c.t.Helper()
	var b protocol.BatchBuilder
	b.Reset(agency, seq, len(bets))
	for _, bet := range bets {
		if !b.AddBet(bet) {
			c.t.Fatalf("bet %+v does not fit the batch", bet)
		}
	}
	c.write(b.Frame())
}

// next reads the next frame within timeout.
func (c *raw) next(timeout time.Duration) (protocol.Frame, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	return c.r.Next()
}

// recv reads and decodes the next message, failing the test on any error.
func (c *raw) recv() protocol.Message {
	c.t.Helper()
	f, err := c.next(waitLong)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	m, err := protocol.Decode(f)
	if err != nil {
		c.t.Fatalf("decode %s: %v", f.Type, err)
	}
	return m
}

// hello identifies the connection and returns the Welcome.
func (c *raw) hello(agency uint32) protocol.Welcome {
	c.t.Helper()
	c.send(protocol.Hello{Agency: agency})
	m := c.recv()
	w, ok := m.(protocol.Welcome)
	if !ok {
		c.t.Fatalf("hello(%d): got %#v, want Welcome", agency, m)
	}
	return w
}

// expectError reads an Error with the code.
func (c *raw) expectError(code lottery.Code) {
	c.t.Helper()
	m := c.recv()
	e, ok := m.(protocol.Error)
	if !ok || e.Code != code {
		c.t.Fatalf("got %#v, want Error %s", m, code)
	}
}

// expectClosed reads until the central closes the connection, failing if it
// sends another frame.
func (c *raw) expectClosed() {
	c.t.Helper()
	f, err := c.next(waitLong)
	if err == nil {
		c.t.Fatalf("got a %s frame, want the connection closed", f.Type)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("connection still open after %v", waitLong)
	}
	if !errors.Is(err, io.EOF) && !isReset(err) {
		c.t.Fatalf("read after close: %v", err)
	}
}

func isReset(err error) bool {
	return testutil.IsReset(err) || errors.Is(err, net.ErrClosed)
}

// winners sends a WinnersQuery and collects the whole answer.
func (c *raw) winners(agency uint32) []string {
	c.t.Helper()
	c.send(protocol.WinnersQuery{Agency: agency})
	return c.readWinners()
}

func (c *raw) readWinners() []string {
	c.t.Helper()
	docs := []string{}
	for {
		m := c.recv()
		w, ok := m.(protocol.Winners)
		if !ok {
			c.t.Fatalf("got %#v, want Winners", m)
		}
		docs = append(docs, w.Documents...)
		if w.Final {
			return docs
		}
	}
}

// finish sends Finished and expects its ack.
func (c *raw) finish(agency uint32, lastSeq uint64) {
	c.t.Helper()
	c.send(protocol.Finished{Agency: agency, LastSeq: lastSeq})
	if m := c.recv(); !reflect.DeepEqual(m, protocol.FinishedAck{}) {
		c.t.Fatalf("finished: got %#v, want FinishedAck", m)
	}
}

// dataset is generated agency files with the bets they hold.
type dataset struct {
	dir  string
	bets map[int][]lottery.Bet
}

// genData writes agency-1..n.csv with bets each; agency i has winners(i)
// winning bets.
func genData(t testing.TB, n, bets int, winners func(agency int) int) dataset {
	t.Helper()
	d := dataset{dir: t.TempDir(), bets: map[int][]lottery.Bet{}}
	for a := 1; a <= n; a++ {
		if _, err := gendata.WriteFile(d.dir, a, bets, winners(a), seed, false); err != nil {
			t.Fatal(err)
		}
		d.bets[a] = gendata.Bets(a, bets, winners(a), seed)
	}
	return d
}

func (d dataset) file(agency int) string {
	return filepath.Join(d.dir, fmt.Sprintf("agency-%d.csv", agency))
}

// winners returns the documents of the agency's winning bets, in file order.
func (d dataset) winners(agency int) []string {
	docs := []string{}
	for _, b := range d.bets[agency] {
		if b.HasWon() {
			docs = append(docs, b.Document)
		}
	}
	return docs
}

// run is one agency running in the background.
type run struct {
	id     int
	log    *testutil.Buffer
	cancel context.CancelFunc
	done   chan struct{}
	res    agency.Result
	err    error
}

// startAgency runs a real agency against addr until it ends or ctx ends.
func startAgency(t testing.TB, ctx context.Context, cfg agency.Config) *run {
	t.Helper()
	r := &run{id: cfg.ID, log: testutil.NewBuffer(), done: make(chan struct{})}
	cfg.BackoffInitial = max(cfg.BackoffInitial, 10*time.Millisecond)
	cfg.BackoffMax = max(cfg.BackoffMax, 200*time.Millisecond)
	a, err := agency.New(cfg, logline.New(r.log, slog.LevelDebug))
	if err != nil {
		t.Fatalf("agency.New: %v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.res, r.err = a.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(waitShort):
			t.Errorf("agency %d: Run did not return after its context ended", r.id)
		}
		if t.Failed() {
			t.Logf("agency %d log:\n%s", r.id, r.log.String())
		}
	})
	return r
}

// stop cancels the agency's context and waits for Run to return.
func (r *run) stop(t testing.TB) (agency.Result, error) {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// wait waits for the agency's Run to return.
func (r *run) wait(t testing.TB) (agency.Result, error) {
	t.Helper()
	select {
	case <-r.done:
		return r.res, r.err
	case <-time.After(waitLong):
		t.Fatalf("agency %d did not finish in %v", r.id, waitLong)
		return agency.Result{}, nil
	}
}

// runAgencies runs agencies 1..n on the dataset to completion, in
// parallel, and returns their runs.
func runAgencies(t testing.TB, addr string, d dataset, ids []int, tweak func(*agency.Config)) []*run {
	t.Helper()
	var runs []*run
	for _, id := range ids {
		cfg := agency.Config{ID: id, ServerAddress: addr, DataFile: d.file(id), MaxAmount: 37}
		if tweak != nil {
			tweak(&cfg)
		}
		runs = append(runs, startAgency(t, context.Background(), cfg))
	}
	return runs
}

// checkWinners checks that every run succeeded with exactly its winners.
func checkWinners(t testing.TB, d dataset, runs []*run) {
	t.Helper()
	for _, r := range runs {
		res, err := r.wait(t)
		if err != nil {
			t.Errorf("agency %d: Run: %v", r.id, err)
			continue
		}
		if want := d.winners(r.id); !slices.Equal(res.Winners, want) {
			t.Errorf("agency %d winners = %v, want %v", r.id, res.Winners, want)
		}
		if res.Sent != len(d.bets[r.id]) {
			t.Errorf("agency %d sent %d bets, want %d", r.id, res.Sent, len(d.bets[r.id]))
		}
		lines, err := testutil.ParseAll(r.log.String())
		if err != nil {
			t.Errorf("agency %d: %v", r.id, err)
		}
		l, ok := testutil.FindOne(lines, "consulta_ganadores", "success")
		if n, _ := l.Int("cant_ganadores"); !ok || n != len(d.winners(r.id)) {
			t.Errorf("agency %d consulta_ganadores line = %q, want cant_ganadores: %d", r.id, l.Raw, len(d.winners(r.id)))
		}
	}
}

// storedByAgency loads the bets file and groups its rows by agency, in
// file order.
func storedByAgency(t testing.TB, path string) (map[int][]lottery.Bet, int) {
	t.Helper()
	bets, err := storage.LoadBets(path)
	if err != nil {
		t.Fatalf("load_bets: %v", err)
	}
	out := map[int][]lottery.Bet{}
	for _, b := range bets {
		out[b.Agency] = append(out[b.Agency], b)
	}
	return out, len(bets)
}
