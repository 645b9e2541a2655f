package central_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"lottery"
	"lottery/agency"
	"lottery/central"
	"lottery/internal/testutil"
	"lottery/protocol"
	"lottery/storage"
)

// realWinners is the real dataset's pattern of winners per agency.
func realWinners(a int) int { return []int{2, 3, 3, 2, 0}[(a-1)%5] }

func TestCentral_Draw(t *testing.T) {
	tests := []struct {
		name     string
		agencies int
		bets     int
	}{
		{name: "five agencies", agencies: 5, bets: 1500},
		{name: "three agencies", agencies: 3, bets: 900},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := genData(t, tt.agencies, tt.bets, realWinners)
			path := filepath.Join(t.TempDir(), "bets.csv")
			srv := startServer(t, central.Config{Agencies: tt.agencies}, path)
			ids := make([]int, tt.agencies)
			for i := range ids {
				ids[i] = i + 1
			}
			runs := runAgencies(t, srv.addr, d, ids, nil)
			checkWinners(t, d, runs)
			srv.stop()

			lines := srv.log.Lines(t)
			total := 0
			for a := 1; a <= tt.agencies; a++ {
				total += len(d.winners(a))
			}
			if l, ok := testutil.FindOne(lines, "sorteo", ""); !ok || l.Result != "success" || l.Get("ganadores") != strconv.Itoa(total) {
				t.Errorf("want one `sorteo | result: success | ganadores: %d` line, got %v", total, testutil.Find(lines, "sorteo", ""))
			}
			if fails := testutil.Results(lines, "fail"); len(fails) > 0 {
				t.Errorf("central logged failures: %v", fails)
			}
			acked := 0
			for _, l := range testutil.Find(lines, "apuesta_recibida", "success") {
				n, _ := l.Int("cantidad")
				acked += n
			}
			if acked != tt.agencies*tt.bets {
				t.Errorf("apuesta_recibida lines add up to %d bets, want %d", acked, tt.agencies*tt.bets)
			}

			// Every row once, in each agency's order.
			stored, rows := storedByAgency(t, path)
			if rows != tt.agencies*tt.bets {
				t.Errorf("bets file has %d rows, want %d", rows, tt.agencies*tt.bets)
			}
			for a := 1; a <= tt.agencies; a++ {
				if !slices.Equal(stored[a], d.bets[a]) {
					t.Errorf("agency %d: stored rows differ from its file (%d rows stored, %d in the file)", a, len(stored[a]), len(d.bets[a]))
				}
			}
		})
	}
}

// TestCentral_EarlyWinnersQuery asks for the winners before the other
// agencies finished: the answer waits for the draw, holds only the asking
// agency's documents, and the silent wait is not taken for an idle peer.
func TestCentral_EarlyWinnersQuery(t *testing.T) {
	const idle = 300 * time.Millisecond // short: the test waits 2.5 of them
	d := genData(t, 3, 600, realWinners)
	small := d.bets[1][:40]
	srv := startServer(t, central.Config{Agencies: 3, IdleTimeout: idle}, filepath.Join(t.TempDir(), "bets.csv"))

	c := dialRaw(t, srv.addr)
	c.hello(1)
	c.sendBatch(1, 1, small)
	if m := c.recv(); !reflect.DeepEqual(m, protocol.BatchAck{Seq: 1, Count: uint16(len(small)), Window: central.DefaultWindow}) {
		t.Fatalf("batch: got %#v, want an OK ack", m)
	}
	c.finish(1, 1)
	c.send(protocol.WinnersQuery{Agency: 1})
	// The reader logs an echo as soon as it reads it, so once this line is
	// there the query before it has been read too.
	c.send(protocol.Echo{Data: []byte("after-query")})
	waitFor(t, "the echo sent after the query", func() bool {
		return len(testutil.Find(srv.log.Lines(t), "receive_message", "success")) == 1
	})

	r2 := runAgencies(t, srv.addr, d, []int{2}, nil)
	waitFor(t, "agency 2 finished", func() bool {
		for _, l := range testutil.Find(srv.log.Lines(t), "agencia_finalizada", "success") {
			if l.Get("agency") == "2" {
				return true
			}
		}
		return false
	})
	// Two idle timeouts of silence: no answer (partial or not) and no idle
	// error while the draw is pending.
	if f, err := c.next(2*idle + idle/2); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("before the draw: got frame %v, error %v; want nothing", f.Type, err)
	}
	if n := len(testutil.Find(srv.log.Lines(t), "sorteo", "")); n != 0 {
		t.Fatalf("draw ran with agency 3 missing")
	}

	r3 := runAgencies(t, srv.addr, d, []int{3}, nil)
	docs := c.readWinners()
	if len(testutil.Find(srv.log.Lines(t), "sorteo", "success")) != 1 {
		t.Errorf("winners answered before the sorteo line")
	}
	want := []string{}
	for _, b := range small {
		if b.HasWon() {
			want = append(want, b.Document)
		}
	}
	if !slices.Equal(docs, want) {
		t.Errorf("agency 1 winners = %v, want %v (only its own)", docs, want)
	}
	if m := c.recv(); !isEcho(m, "after-query") {
		t.Errorf("after the winners: got %#v, want the echo", m)
	}
	checkWinners(t, d, append(r2, r3...))
}

func isEcho(m protocol.Message, data string) bool {
	e, ok := m.(protocol.Echo)
	return ok && string(e.Data) == data
}

// TestCentral_BadFrames sends broken frames on their own connections while
// five agencies upload: each gets its error and is closed, the others are
// not disturbed.
func TestCentral_BadFrames(t *testing.T) {
	d := genData(t, 5, 1200, realWinners)
	// Agency 6 is the bad frames' own: a connection says Hello as an
	// agency, and a newer one of the same agency takes over, so they must
	// not say Hello as an agency that is uploading.
	srv := startServer(t, central.Config{Agencies: 6}, filepath.Join(t.TempDir(), "bets.csv"))
	runs := runAgencies(t, srv.addr, d, []int{1, 2, 3, 4, 5}, func(c *agency.Config) { c.MaxAmount = 10 })

	garbage := bytes.Repeat([]byte{0xAB}, 100)
	tests := []struct {
		name  string
		hello bool // identify as agency 6 first
		frame []byte
		code  lottery.Code
	}{
		{name: "oversize length 9000", frame: append([]byte{protocol.Version, byte(protocol.TypeBatch), 0x23, 0x28}, garbage...), code: lottery.ETooLarge},
		{name: "oversize after hello", hello: true, frame: append([]byte{protocol.Version, byte(protocol.TypeEcho), 0xFF, 0xFF}, garbage...), code: lottery.ETooLarge},
		{name: "malformed hello", frame: []byte{protocol.Version, byte(protocol.TypeHello), 0, 3, 0, 0, 1}, code: lottery.EMalformed},
		{name: "malformed batch", hello: true, frame: []byte{protocol.Version, byte(protocol.TypeBatch), 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 9, 0, 0}, code: lottery.EMalformed},
		{name: "bad version", frame: []byte{7, byte(protocol.TypeHello), 0, 4, 0, 0, 0, 1}, code: lottery.EVersion},
		{name: "unknown type", frame: []byte{protocol.Version, 0x7F, 0, 0}, code: lottery.EUnknownType},
		{name: "batch before hello", frame: testutil.BatchFrame(t, 1, 1, d.bets[1][:1]...), code: lottery.ENotIdentified},
		{name: "reply type as request", hello: true, frame: testutil.Frame(t, protocol.FinishedAck{}), code: lottery.EUnexpectedMsg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, srv.addr)
			if tt.hello {
				c.hello(6)
			}
			c.write(tt.frame)
			c.expectError(tt.code)
			c.expectClosed()
			waitFor(t, "the failure logged", func() bool {
				for _, l := range testutil.Find(srv.log.Lines(t), "recibir_mensaje", "fail") {
					if l.Get("code") == tt.code.String() {
						return true
					}
				}
				return false
			})
		})
	}
	last := dialRaw(t, srv.addr)
	last.hello(6)
	last.finish(6, 0)
	checkWinners(t, d, runs)
	srv.stop()
	_, rows := storedByAgency(t, srv.path)
	if rows != 5*1200 {
		t.Errorf("bets file has %d rows, want %d", rows, 5*1200)
	}
}

func TestCentral_WrongAgencyBatch(t *testing.T) {
	d := genData(t, 2, 20, realWinners)
	srv := startServer(t, central.Config{Agencies: 5}, filepath.Join(t.TempDir(), "bets.csv"))
	c := dialRaw(t, srv.addr)
	c.hello(1)
	c.sendBatch(2, 1, d.bets[2])
	want := protocol.BatchAck{Seq: 1, Code: lottery.EWrongAgency, Count: uint16(len(d.bets[2])), Window: central.DefaultWindow}
	if m := c.recv(); !reflect.DeepEqual(m, want) {
		t.Fatalf("got %#v, want %#v", m, want)
	}
	// The connection is still served.
	c.send(protocol.Echo{Data: []byte("still here")})
	if m := c.recv(); !isEcho(m, "still here") {
		t.Fatalf("got %#v, want the echo", m)
	}
	if st := srv.store.Stats(); st.Bets != 0 || st.Size != 0 {
		t.Errorf("store after a rejected batch: %+v, want nothing stored", st)
	}
	srv.stop()
	if _, rows := storedByAgency(t, srv.path); rows != 0 {
		t.Errorf("bets file has %d rows, want 0", rows)
	}
	l, ok := testutil.FindOne(srv.log.Lines(t), "apuesta_recibida", "fail")
	if !ok || l.Get("cantidad") != strconv.Itoa(len(d.bets[2])) || l.Get("code") != "wrong_agency" {
		t.Errorf("want one `apuesta_recibida | result: fail | cantidad: %d` line with code wrong_agency, got %q", len(d.bets[2]), l.Raw)
	}
}

func TestCentral_Hello(t *testing.T) {
	srv := startServer(t, central.Config{Agencies: 5}, filepath.Join(t.TempDir(), "bets.csv"))
	tests := []struct {
		name   string
		agency uint32
		code   lottery.Code // NoError: welcomed
	}{
		{name: "agency 0", agency: 0, code: lottery.EUnknownAgency},
		{name: "agency above AGENCIES", agency: 6, code: lottery.EUnknownAgency},
		{name: "huge agency", agency: 1<<32 - 1, code: lottery.EUnknownAgency},
		{name: "first agency", agency: 1, code: lottery.NoError},
		{name: "last agency", agency: 5, code: lottery.NoError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, srv.addr)
			c.send(protocol.Hello{Agency: tt.agency})
			if tt.code == lottery.NoError {
				if m := c.recv(); m != (protocol.Welcome{LastSeq: 0}) {
					t.Fatalf("got %#v, want Welcome{0}", m)
				}
				return
			}
			c.expectError(tt.code)
			c.expectClosed()
		})
	}
	t.Run("second hello", func(t *testing.T) {
		c := dialRaw(t, srv.addr)
		c.hello(2)
		c.send(protocol.Hello{Agency: 2})
		c.expectError(lottery.EUnexpectedMsg)
		c.expectClosed()
	})
}

func TestCentral_Finished(t *testing.T) {
	srv := startServer(t, central.Config{Agencies: 5}, filepath.Join(t.TempDir(), "bets.csv"))
	t.Run("second finished on one connection", func(t *testing.T) {
		c := dialRaw(t, srv.addr)
		c.hello(1)
		c.finish(1, 0)
		c.send(protocol.Finished{Agency: 1, LastSeq: 0})
		c.expectError(lottery.EAlreadyFinished)
		c.expectClosed()
	})
	t.Run("finished again on a new connection", func(t *testing.T) {
		// A reconnecting agency repeats its Finished: acked, counted once.
		c := dialRaw(t, srv.addr)
		c.hello(1)
		c.finish(1, 0)
		if p := srv.c.Barrier().Pending(); p != 4 {
			t.Errorf("pending agencies = %d, want 4", p)
		}
	})
	t.Run("finished for another agency", func(t *testing.T) {
		c := dialRaw(t, srv.addr)
		c.hello(2)
		c.send(protocol.Finished{Agency: 3})
		c.expectError(lottery.EWrongAgency)
		c.expectClosed()
	})
	t.Run("finished before hello", func(t *testing.T) {
		c := dialRaw(t, srv.addr)
		c.send(protocol.Finished{Agency: 3})
		c.expectError(lottery.ENotIdentified)
		c.expectClosed()
	})
}

func TestCentral_Echo(t *testing.T) {
	srv := startServer(t, central.Config{Agencies: 5}, filepath.Join(t.TempDir(), "bets.csv"))
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{name: "text", data: []byte("hola central")},
		{name: "empty", data: nil},
		{name: "every byte", data: all},
		{name: "largest", data: bytes.Repeat([]byte("ñ|"), protocol.MaxPayloadSize/3)},
	}
	c := dialRaw(t, srv.addr) // no Hello needed: echo is a health check
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := testutil.Frame(t, protocol.Echo{Data: tt.data})
			c.write(sent)
			got := make([]byte, len(sent))
			c.conn.SetReadDeadline(time.Now().Add(waitLong))
			if _, err := io.ReadFull(c.conn, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, sent) {
				t.Fatalf("echo answer differs from the request (%d bytes)", len(sent))
			}
		})
	}
	if found := testutil.Find(srv.log.Lines(t), "receive_message", "success"); len(found) != len(tests) || found[0].Get("msg") != "hola central" || found[0].Get("ip") != "127.0.0.1" {
		t.Errorf("receive_message lines = %v, want %d, the first with ip: 127.0.0.1 and msg: hola central", found, len(tests))
	}
}

// TestCentral_ShutdownMidUpload stops the central while five slowed
// agencies upload: nothing is half stored, and the store reopens clean.
func TestCentral_ShutdownMidUpload(t *testing.T) {
	const bets, maxAmount = 400, 10
	d := genData(t, 5, bets, realWinners)
	srv := startServer(t, central.Config{Agencies: 5}, filepath.Join(t.TempDir(), "bets.csv"))
	runs := runAgencies(t, srv.addr, d, []int{1, 2, 3, 4, 5}, func(c *agency.Config) {
		c.MaxAmount = maxAmount
		c.LoopPeriod = 20 * time.Millisecond
	})
	waitFor(t, "ten batches stored", func() bool {
		return len(testutil.Find(srv.log.Lines(t), "apuesta_recibida", "success")) >= 10
	})
	shutdownErr, serveErr := srv.shutdown(waitLong)
	if shutdownErr != nil {
		t.Errorf("Shutdown: %v", shutdownErr)
	}
	if !errors.Is(serveErr, central.ErrServerClosed) {
		t.Errorf("Serve returned %v, want ErrServerClosed", serveErr)
	}
	srv.closed = true
	if err := srv.store.Close(); err != nil {
		t.Fatal(err)
	}
	lines := srv.log.Lines(t)
	if len(testutil.Find(lines, "sorteo", "")) != 0 {
		t.Fatal("the draw ran although no agency finished")
	}

	// Agencies keep trying to reconnect until their context ends.
	for _, r := range runs {
		select {
		case <-r.done:
			t.Errorf("agency %d: Run returned %v while the central was down; it should wait", r.id, r.err)
		default:
		}
	}
	for _, r := range runs {
		if _, err := r.stop(t); !errors.Is(err, context.Canceled) {
			t.Errorf("agency %d: Run returned %v after cancel, want context.Canceled", r.id, err)
		}
	}
	// Central, store and agencies are all down: nothing may be left running.
	goleak.VerifyNone(t)
	acked := 0
	for _, l := range testutil.Find(lines, "apuesta_recibida", "success") {
		n, _ := l.Int("cantidad")
		acked += n
	}
	stored, rows := storedByAgency(t, srv.path)
	if rows == 0 || rows >= 5*bets {
		t.Errorf("bets file has %d rows: the shutdown was not mid-upload", rows)
	}
	if rows != acked {
		t.Errorf("bets file has %d rows, the acked batches hold %d", rows, acked)
	}
	for a := 1; a <= 5; a++ {
		n := len(stored[a])
		if n%maxAmount != 0 || !slices.Equal(stored[a], d.bets[a][:n]) {
			t.Errorf("agency %d: %d rows stored, not whole batches of its file in order", a, n)
		}
	}
	store, rec, err := storage.Open(srv.path, storage.Options{NoSync: true})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer store.Close()
	if rec.CutBetsBytes != 0 || rec.CutJournal != 0 || rec.Bets != int64(rows) {
		t.Errorf("recovery after a graceful shutdown = %+v, want nothing cut and %d bets", rec, rows)
	}
}

// TestCentral_ShutdownWhileWaiting stops the central while agencies wait for
// a draw that cannot happen yet: the waiting query is answered
// shutting_down, and an agency's Run returns once its context ends.
func TestCentral_ShutdownWhileWaiting(t *testing.T) {
	d := genData(t, 2, 50, realWinners)
	srv := startServer(t, central.Config{Agencies: 3}, filepath.Join(t.TempDir(), "bets.csv"))

	c := dialRaw(t, srv.addr)
	c.hello(1)
	c.finish(1, 0)
	c.send(protocol.WinnersQuery{Agency: 1})
	c.send(protocol.Echo{Data: []byte("marker")})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := startAgency(t, ctx, agency.Config{ID: 2, ServerAddress: srv.addr, DataFile: d.file(2)})
	waitFor(t, "the query read and agency 2 finished", func() bool {
		lines := srv.log.Lines(t)
		return len(testutil.Find(lines, "receive_message", "success")) == 1 &&
			len(testutil.Find(lines, "agencia_finalizada", "success")) == 2
	})

	shutdownErr, serveErr := srv.shutdown(waitLong)
	if shutdownErr != nil {
		t.Errorf("Shutdown: %v (sessions did not end on their own)", shutdownErr)
	}
	if !errors.Is(serveErr, central.ErrServerClosed) {
		t.Errorf("Serve returned %v, want ErrServerClosed", serveErr)
	}
	c.expectError(lottery.EShuttingDown)
	if m := c.recv(); !isEcho(m, "marker") {
		t.Errorf("got %#v, want the echo answered before closing", m)
	}
	c.expectClosed()

	cancel()
	if _, err := r.wait(t); !errors.Is(err, context.Canceled) {
		t.Errorf("agency 2: Run returned %v, want context.Canceled", err)
	}
	lines, err := testutil.ParseAll(r.log.String())
	if err != nil {
		t.Error(err)
	}
	if n := len(testutil.Find(lines, "shutdown", "in_progress")); n < 2 {
		t.Errorf("agency 2 logged %d shutdown lines, want one per resource (file, connection)", n)
	}
	srv.closed = true
	if err := srv.store.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t)
	if n := len(testutil.Find(srv.log.Lines(t), "shutdown", "in_progress")); n < 3 {
		t.Errorf("central logged %d shutdown lines, want listener, sessions and connections", n)
	}
}

// TestCentral_Restart restarts the central on the same bets file.
func TestCentral_Restart(t *testing.T) {
	t.Run("after the draw", func(t *testing.T) {
		d := genData(t, 2, 300, realWinners)
		path := filepath.Join(t.TempDir(), "bets.csv")
		srv := startServer(t, central.Config{Agencies: 2}, path)
		runs := runAgencies(t, srv.addr, d, []int{1, 2}, nil)
		checkWinners(t, d, runs)
		srv.stop()

		srv2 := startServer(t, central.Config{Agencies: 2}, path)
		// The central listens at once; it recovers the draw once its
		// ledger is indexed and verified, in the background.
		waitFor(t, "the draw recovered at start", func() bool {
			_, ok := testutil.FindOne(srv2.log.Lines(t), "recuperar_sorteo", "success")
			return ok
		})
		for a := uint32(1); a <= 2; a++ {
			c := dialRaw(t, srv2.addr)
			if w := c.hello(a); w.LastSeq != uint64(runs[a-1].res.Batches) {
				t.Errorf("agency %d: Welcome.LastSeq = %d, want %d", a, w.LastSeq, runs[a-1].res.Batches)
			}
			if docs := c.winners(a); !slices.Equal(docs, d.winners(int(a))) {
				t.Errorf("agency %d winners after restart = %v, want %v", a, docs, d.winners(int(a)))
			}
		}
	})
	t.Run("before the draw", func(t *testing.T) {
		d := genData(t, 3, 300, realWinners)
		path := filepath.Join(t.TempDir(), "bets.csv")
		srv := startServer(t, central.Config{Agencies: 3}, path)
		r1 := runAgencies(t, srv.addr, d, []int{1}, nil)
		waitFor(t, "agency 1 finished", func() bool {
			return len(testutil.Find(srv.log.Lines(t), "agencia_finalizada", "success")) == 1
		})
		srv.stop()

		// Same port: agency 1, still waiting for its winners, finds the new
		// central by itself.
		srv2 := startServerAt(t, central.Config{Agencies: 3}, path, srv.addr)
		waitFor(t, "agency 1 counted as finished again", func() bool { return srv2.c.Barrier().Pending() == 2 })
		r23 := runAgencies(t, srv2.addr, d, []int{2, 3}, nil)
		checkWinners(t, d, r23)
		res, err := r1[0].wait(t)
		if err != nil || !slices.Equal(res.Winners, d.winners(1)) {
			t.Errorf("agency 1 across the restart: winners %v, error %v; want %v", res.Winners, err, d.winners(1))
		}
		srv2.stop()
		if n := len(testutil.Find(srv2.log.Lines(t), "sorteo", "success")); n != 1 {
			t.Errorf("restarted central ran the draw %d times, want 1", n)
		}
		if _, rows := storedByAgency(t, path); rows != 3*300 {
			t.Errorf("bets file has %d rows, want %d", rows, 3*300)
		}
	})
}
