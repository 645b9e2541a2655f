package agency_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"lottery"
	"lottery/agency"
	"lottery/central"
	"lottery/gendata"
	"lottery/internal/testutil"
	"lottery/logline"
	"lottery/protocol"
	"lottery/storage"
)

// TestMain fails the package if an agency leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const seed = 99

// writeBets writes an agency file of the bets and returns its path.
func writeBets(t testing.TB, bets []lottery.Bet) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agency-1.csv")
	var buf bytes.Buffer
	if err := gendata.Write(&buf, bets); err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, path, buf.String())
	return path
}

func TestAgency_Packing(t *testing.T) {
	long := gendata.Bets(1, 300, 3, seed)
	for i := range long {
		long[i].FirstName = strings.Repeat("Ñ", lottery.MaxNameRunes)
		long[i].LastName = strings.Repeat("ü", lottery.MaxNameRunes)
	}
	tests := []struct {
		name      string
		bets      []lottery.Bet
		maxAmount int
	}{
		{name: "one per batch", bets: gendata.Bets(1, 25, 1, seed), maxAmount: 1},
		{name: "seven per batch", bets: gendata.Bets(1, 250, 2, seed), maxAmount: 7},
		{name: "default amount", bets: gendata.Bets(1, 1234, 2, seed), maxAmount: 0},
		{name: "frame limit before amount", bets: gendata.Bets(1, 3000, 2, seed), maxAmount: 100000},
		{name: "100-character names", bets: long, maxAmount: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, nil)
			res, err, _ := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: f.addr,
				DataFile: writeBets(t, tt.bets), MaxAmount: tt.maxAmount})
			if err != nil {
				t.Fatal(err)
			}
			if got := f.stored(); !slices.Equal(got, tt.bets) {
				t.Fatalf("stored %d bets, not the file's %d in order", len(got), len(tt.bets))
			}
			if res.Sent != len(tt.bets) || res.Batches != len(f.batchCounts()) {
				t.Errorf("result %+v; want %d bets in %d batches", res, len(tt.bets), len(f.batchCounts()))
			}
			maxAmount := tt.maxAmount
			if maxAmount == 0 {
				maxAmount = agency.DefaultMaxAmount
			}
			counts, sizes := f.batchCounts(), f.sizes()
			first := 0 // index of each batch's first bet
			for i, n := range counts {
				size := sizes[i]
				if size > protocol.MaxFrameSize {
					t.Fatalf("batch %d is a %d-byte frame", i+1, size)
				}
				if n > maxAmount {
					t.Fatalf("batch %d holds %d bets, over maxAmount %d", i+1, n, maxAmount)
				}
				last := i == len(counts)-1
				if !last && n < maxAmount && size+testutil.BetWireSize(tt.bets[first+n]) <= protocol.MaxFrameSize {
					t.Fatalf("batch %d holds %d bets in %d bytes although the next bet fit", i+1, n, size)
				}
				first += n
			}
		})
	}
}

func TestAgency_InvalidRows(t *testing.T) {
	rows := []string{
		"Ana,Gómez,30111222,1990-05-17,1234",       // 1 valid
		"Juan,Pérez,123,1990-01-01",                // 2 four fields
		"Luis,Díaz,00001234,1985-12-31,7574",       // 3 valid
		"Ana,Gómez,12a45,1990-01-01,5",             // 4 document not digits
		"Ana,,123,1990-01-01,5",                    // 5 empty last name
		"Ana,Gómez,123,2999-01-01,5",               // 6 born in the future
		"Ana,Gómez,123,1990-02-30,5",               // 7 no such date
		"Ana,Gómez,123,1990-01-01,10000",           // 8 number too big
		"Ana,Gómez,12345678901,1990-01-01,5",       // 9 eleven digits
		"Eva,Núñez,99,2000-02-29,0",                // 10 valid: leap day, number 0
		"Eva,Núñez,99,2000-02-29,9999",             // 11 valid: number 9999
		"Ana,Gómez,123,1990-01-01,5,extra",         // 12 six fields
		"=Ana,Gómez,123,1990-01-01,5",              // 13 a formula for a first name
		"Ana,@Gómez,123,1990-01-01,5",              // 14 a formula for a last name
		strings.Repeat("x", lottery.MaxRowBytes+1), // 15 over the row cap
		strings.Repeat(",", 1_000_000),             // 16 a million commas
		"Eva,Núñez,77,2000-02-29,1",                // 17 valid, after them
		"\"Ana,Gómez,123,1990-01-01,5",             // 18 unterminated quote
	}
	f := newFake(t, nil)
	path := filepath.Join(t.TempDir(), "agency-1.csv")
	testutil.WriteFile(t, path, strings.Join(rows, "\r\n")+"\r\n")
	res, err, logs := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: f.addr, DataFile: path})
	if err != nil {
		t.Fatal(err)
	}
	var failed []int
	for _, l := range testutil.Find(logs.Lines(t), "leer_apuesta", "fail") {
		n, ok := l.Int("linea")
		if !ok || !l.Has("error") {
			t.Errorf("leer_apuesta line without linea or error: %s", l.Raw)
		}
		failed = append(failed, n)
	}
	if want := []int{2, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 18}; !slices.Equal(failed, want) {
		t.Errorf("leer_apuesta fail lines for rows %v, want %v", failed, want)
	}
	var docs []string
	for _, b := range f.stored() {
		docs = append(docs, b.Document)
	}
	if want := []string{"30111222", "00001234", "99", "99", "77"}; !slices.Equal(docs, want) {
		t.Errorf("sent documents %v, want %v", docs, want)
	}
	if res.Invalid != 13 || res.Sent != 5 {
		t.Errorf("result %+v, want 13 invalid and 5 sent", res)
	}
	for _, l := range testutil.Find(logs.Lines(t), "leer_apuesta", "fail") {
		if n, _ := l.Int("linea"); (n == 15 || n == 16) && !strings.Contains(l.Get("error"), "record too long") {
			t.Errorf("row %d: error %q, want record too long", n, l.Get("error"))
		}
		if len(l.Raw) > 2*lottery.MaxRowBytes {
			t.Errorf("a %d-byte log line", len(l.Raw))
		}
	}
}

func TestAgency_FileFormats(t *testing.T) {
	ab := []lottery.Bet{
		{Agency: 1, FirstName: "Ana", LastName: "Gómez", Document: "0012", Birthdate: "1990-05-17", Number: 1},
		{Agency: 1, FirstName: "Luis", LastName: "Díaz", Document: "34", Birthdate: "1985-12-31", Number: 7574},
	}
	quoted := []lottery.Bet{
		{Agency: 1, FirstName: "Pérez, Juan", LastName: `O"Brien`, Document: "00000001", Birthdate: "2000-01-01", Number: 9998},
		{Agency: 1, FirstName: `Ana "la" María`, LastName: "de la Fuente", Document: "2", Birthdate: "1999-12-31", Number: 0},
	}
	const a, b = "Ana,Gómez,0012,1990-05-17,1", "Luis,Díaz,34,1985-12-31,7574"
	tests := []struct {
		name    string
		content string
		want    []lottery.Bet
	}{
		{name: "LF", content: a + "\n" + b + "\n", want: ab},
		{name: "CRLF", content: a + "\r\n" + b + "\r\n", want: ab},
		{name: "BOM and CRLF", content: "\ufeff" + a + "\r\n" + b + "\r\n", want: ab},
		{name: "BOM and LF", content: "\ufeff" + a + "\n" + b + "\n", want: ab},
		{name: "no final newline", content: a + "\r\n" + b, want: ab},
		{name: "blank lines", content: "\r\n" + a + "\r\n\r\n\n" + b + "\r\n\r\n", want: ab},
		{name: "quoted fields", content: `"Pérez, Juan","O""Brien",00000001,2000-01-01,9998` + "\r\n" +
			`"Ana ""la"" María",de la Fuente,2,1999-12-31,0` + "\r\n", want: quoted},
		{name: "empty file", content: "", want: nil},
		{name: "only a BOM", content: "\ufeff", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, nil)
			path := filepath.Join(t.TempDir(), "agency-1.csv")
			testutil.WriteFile(t, path, tt.content)
			res, err, _ := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: f.addr, DataFile: path})
			if err != nil {
				t.Fatal(err)
			}
			if got := f.stored(); !slices.Equal(got, tt.want) {
				t.Errorf("sent %+v, want %+v", got, tt.want)
			}
			if res.Invalid != 0 {
				t.Errorf("%d rows taken as invalid", res.Invalid)
			}
		})
	}
}

func TestAgency_SingleBet(t *testing.T) {
	f := newFake(t, func(f *fakeCentral) { f.winners = []string{"00012345"} })
	bet := lottery.Bet{Agency: 3, FirstName: "Santiago Lionel", LastName: "Lorca", Document: "00012345", Birthdate: "1999-03-17", Number: 7574}
	res, err, logs := runAgency(t, context.Background(), agency.Config{ID: 3, ServerAddress: f.addr,
		DataFile: filepath.Join(t.TempDir(), "missing.csv"), Bet: &bet})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.stored(); !slices.Equal(got, []lottery.Bet{bet}) {
		t.Fatalf("sent %+v, want the single bet", got)
	}
	lines := logs.Lines(t)
	l, ok := testutil.FindOne(lines, "apuesta_enviada", "success")
	if !ok || l.Get("dni") != "00012345" || l.Get("numero") != "7574" {
		t.Errorf("want one `apuesta_enviada | result: success | dni: 00012345 | numero: 7574`, got %q", l.Raw)
	}
	if !slices.Equal(res.Winners, []string{"00012345"}) {
		t.Errorf("winners %v", res.Winners)
	}
	if _, ok := testutil.FindOne(lines, "loop_finished", "success"); !ok {
		t.Error("no loop_finished line")
	}
}

func TestAgency_NothingToSend(t *testing.T) {
	f := newFake(t, func(f *fakeCentral) { f.winners = []string{} })
	res, err, logs := runAgency(t, context.Background(), agency.Config{ID: 2, ServerAddress: f.addr,
		DataFile: filepath.Join(t.TempDir(), "missing.csv")})
	if err != nil {
		t.Fatal(err)
	}
	snap := f.snapshot()
	if snap.frames != 0 || res.Sent != 0 {
		t.Errorf("sent %d batches, want none", snap.frames)
	}
	if want := []protocol.Finished{{Agency: 2, LastSeq: 0}}; !slices.Equal(snap.finished, want) {
		t.Errorf("finished %v, want %v", snap.finished, want)
	}
	lines := logs.Lines(t)
	if l, ok := testutil.FindOne(lines, "loop_finished", "success"); !ok || l.Get("client_id") != "2" {
		t.Errorf("loop_finished line = %q", l.Raw)
	}
	if l, ok := testutil.FindOne(lines, "consulta_ganadores", "success"); !ok || l.Get("cant_ganadores") != "0" {
		t.Errorf("consulta_ganadores line = %q", l.Raw)
	}
}

func TestAgency_LoopAmount(t *testing.T) {
	tests := []struct {
		loopAmount, maxAmount, bets int
		wantCounts                  []int
	}{
		{loopAmount: 3, maxAmount: 5, bets: 100, wantCounts: []int{5, 5, 5}},
		{loopAmount: 1, maxAmount: 50, bets: 100, wantCounts: []int{50}},
		{loopAmount: 10, maxAmount: 40, bets: 100, wantCounts: []int{40, 40, 20}},
		{loopAmount: 0, maxAmount: 30, bets: 100, wantCounts: []int{30, 30, 30, 10}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("amount=%d,max=%d", tt.loopAmount, tt.maxAmount), func(t *testing.T) {
			f := newFake(t, nil)
			bets := gendata.Bets(1, tt.bets, 1, seed)
			_, err, _ := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: f.addr,
				DataFile: writeBets(t, bets), LoopAmount: tt.loopAmount, MaxAmount: tt.maxAmount,
				LoopPeriod: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if got := f.batchCounts(); !slices.Equal(got, tt.wantCounts) {
				t.Errorf("batches of %v bets, want %v", got, tt.wantCounts)
			}
			if n, fin := len(tt.wantCounts), f.snapshot().finished; len(fin) != 1 || fin[0].LastSeq != uint64(n) {
				t.Errorf("finished %v, want last batch %d", fin, n)
			}
		})
	}
}

// TestAgency_Reconnect drops the connection in the middle of the upload:
// the agency reconnects and resends what was not acked; the central ends
// up with every bet exactly once.
func TestAgency_Reconnect(t *testing.T) {
	bets := gendata.Bets(1, 600, 2, seed)
	f := newFake(t, func(f *fakeCentral) { f.dropAt = 6 })
	res, err, logs := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: f.addr,
		DataFile: writeBets(t, bets), MaxAmount: 10, BackoffInitial: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.stored(); !slices.Equal(got, bets) {
		t.Fatalf("stored %d bets, want the file's %d once each, in order", len(got), len(bets))
	}
	if snap := f.snapshot(); snap.connections != 2 {
		t.Errorf("%d connections, want 2: the drop did not happen as planned", snap.connections)
	}
	if res.Sent != len(bets) {
		t.Errorf("result says %d bets sent, want %d", res.Sent, len(bets))
	}
	if l, ok := testutil.FindOne(logs.Lines(t), "reenviar", "success"); !ok {
		t.Errorf("no reenviar line: %q", l.Raw)
	}
}

// cutProxy forwards TCP to target and cuts the first connection after
// cutAfter bytes from the agency.
type cutProxy struct {
	ln       net.Listener
	target   string
	cutAfter int64
	mu       sync.Mutex
	conns    []net.Conn
	cuts     int
	wg       sync.WaitGroup
}

func newCutProxy(t testing.TB, target string, cutAfter int64) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, cutAfter: cutAfter}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for first := true; ; first = false {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go func(cut bool) {
			defer p.wg.Done()
			var src io.Reader = in
			if cut {
				src = io.LimitReader(in, p.cutAfter)
			}
			io.Copy(out, src)
			if cut {
				p.mu.Lock()
				p.cuts++
				p.mu.Unlock()
			}
			in.Close()
			out.Close()
		}(first)
		go func() {
			defer p.wg.Done()
			io.Copy(in, out)
			in.Close()
			out.Close()
		}()
	}
}

// realCentral serves a real central on addr over a store at path.
func realCentral(t testing.TB, agencies int, path, addr string) (string, *storage.Store) {
	t.Helper()
	store, _, err := storage.Open(path, storage.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	logs := testutil.NewBuffer()
	c, err := central.New(central.Config{Agencies: agencies}, store, logline.New(logs, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- c.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitShort)
		defer cancel()
		c.Shutdown(ctx)
		<-served
		store.Close()
		if t.Failed() {
			t.Logf("central log:\n%s", logs.String())
		}
	})
	return ln.Addr().String(), store
}

// TestAgency_ReconnectRealCentral cuts the connection to the real central
// in the middle of a frame: the agency resends, the bets file has every bet
// once.
func TestAgency_ReconnectRealCentral(t *testing.T) {
	bets := gendata.Bets(1, 2000, 3, seed)
	path := filepath.Join(t.TempDir(), "bets.csv")
	addr, _ := realCentral(t, 1, path, "127.0.0.1:0")
	proxy := newCutProxy(t, addr, 20_000+123) // mid-frame, a few batches in
	res, err, _ := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: proxy.ln.Addr().String(),
		DataFile: writeBets(t, bets), MaxAmount: 50, BackoffInitial: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	proxy.mu.Lock()
	cuts := proxy.cuts
	proxy.mu.Unlock()
	if cuts != 1 {
		t.Fatalf("the proxy cut %d connections, want 1", cuts)
	}
	wantWinners := []string{}
	for _, b := range bets {
		if b.HasWon() {
			wantWinners = append(wantWinners, b.Document)
		}
	}
	if !slices.Equal(res.Winners, wantWinners) {
		t.Errorf("winners %v, want %v", res.Winners, wantWinners)
	}
	stored, err := storage.LoadBets(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stored, bets) {
		t.Errorf("bets file has %d rows, want the file's %d once each, in order", len(stored), len(bets))
	}
}

// TestAgency_StartBeforeCentral starts the agency before anything listens:
// it retries until the central comes up, then completes.
func TestAgency_StartBeforeCentral(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	bets := gendata.Bets(1, 200, 2, seed)
	logs := testutil.NewBuffer()
	a, err := agency.New(agency.Config{ID: 1, ServerAddress: addr, DataFile: writeBets(t, bets),
		BackoffInitial: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, logline.New(logs, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	type outcome struct {
		res agency.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := a.Run(ctx)
		done <- outcome{res, err}
	}()
	testutil.WaitFor(t, waitLong, "the agency to retry", func() bool {
		return len(testutil.Find(testutil.Lines(logs.String()), "conectar", "in_progress")) >= 2
	})
	realCentral(t, 1, filepath.Join(t.TempDir(), "bets.csv"), addr)
	o := <-done
	if o.err != nil {
		t.Fatalf("Run: %v\n%s", o.err, logs.String())
	}
	if o.res.Sent != len(bets) || len(o.res.Winners) != 2 {
		t.Errorf("result %+v, want %d bets sent and 2 winners", o.res, len(bets))
	}
	l, ok := testutil.FindOne(testutil.Lines(logs.String()), "conectar", "success")
	if n, _ := l.Int("intento"); !ok || n < 2 {
		t.Errorf("conectar success line = %q, want a later attempt", l.Raw)
	}
}

// TestAgency_Cancel ends the context at each stage: Run returns the
// context's error promptly and logs the resources it releases.
func TestAgency_Cancel(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the central's address and waits (in ready) until
		// the agency is in the stage under test.
		fake   func(*fakeCentral)
		ready  func(f *fakeCentral, logs *testutil.Buffer) bool
		noFake bool
	}{
		{name: "waiting for the draw", fake: func(f *fakeCentral) { f.holdWinners = true },
			ready: func(f *fakeCentral, _ *testutil.Buffer) bool {
				select {
				case <-f.queried:
					return true
				default:
					return false
				}
			}},
		{name: "mid-upload", ready: func(f *fakeCentral, _ *testutil.Buffer) bool { return len(f.batchCounts()) >= 2 }},
		{name: "dialing", noFake: true, ready: func(_ *fakeCentral, logs *testutil.Buffer) bool {
			return len(testutil.Find(testutil.Lines(logs.String()), "conectar", "in_progress")) >= 1
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *fakeCentral
			addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
			if !tt.noFake {
				f = newFake(t, tt.fake)
				addr = f.addr
			}
			logs := testutil.NewBuffer()
			a, err := agency.New(agency.Config{ID: 1, ServerAddress: addr, DataFile: writeBets(t, gendata.Bets(1, 100, 1, seed)),
				MaxAmount: 5, LoopPeriod: 20 * time.Millisecond, BackoffInitial: 20 * time.Millisecond}, logline.New(logs, slog.LevelInfo))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := a.Run(ctx)
				done <- err
			}()
			testutil.WaitFor(t, waitLong, "the agency to reach the stage", func() bool { return tt.ready(f, logs) })
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run returned %v, want context.Canceled", err)
				}
			case <-time.After(waitShort):
				t.Fatalf("Run did not return after cancel:\n%s", logs.String())
			}
			lines := logs.Lines(t)
			var resources []string
			for _, l := range testutil.Find(lines, "shutdown", "in_progress") {
				resources = append(resources, l.Get("resource"))
			}
			want := []string{"connection", "data_file"}
			if tt.noFake {
				want = []string{"data_file"}
			}
			if !slices.Equal(resources, want) {
				t.Errorf("shutdown lines for %v, want %v", resources, want)
			}
			if _, ok := testutil.FindOne(lines, "consulta_ganadores", "success"); ok {
				t.Error("a cancelled agency logged winners")
			}
		})
	}
}

// TestAgency_ErrUnknownAgency: a central that refuses the agency's number
// ends the run at once with its error, instead of retrying forever.
func TestAgency_ErrUnknownAgency(t *testing.T) {
	addr, _ := realCentral(t, 2, filepath.Join(t.TempDir(), "bets.csv"), "127.0.0.1:0")
	_, err, logs := runAgency(t, context.Background(), agency.Config{ID: 3, ServerAddress: addr, BackoffInitial: 10 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), lottery.EUnknownAgency.String()) {
		t.Fatalf("Run: err = %v, want the central's %s", err, lottery.EUnknownAgency)
	}
	if n := len(testutil.Find(logs.Lines(t), "conectar", "fail")); n != 1 {
		t.Errorf("%d conectar fail lines, want 1 (no retry)", n)
	}
}

// TestAgency_Backoff: the reconnection pause doubles while nothing
// accepts the agency's connection or the central answers it with an
// error, and starts again from BackoffInitial once a central welcomes it. A
// central that accepts and dies before its Welcome (a restart storm), or
// that welcomes and then fails every batch, costs a pause between
// BackoffInitial/2 and BackoffInitial per attempt: never less, and never
// growing.
func TestAgency_Backoff(t *testing.T) {
	const failures = 6
	initial := 10 * time.Millisecond
	tests := []struct {
		name  string
		fake  func(f *fakeCentral)
		late  bool // nothing listens until the agency failed that many times
		grows bool
	}{
		{"NothingListens", func(*fakeCentral) {}, true, true},
		{"HangsUpBeforeWelcome", func(f *fakeCentral) { f.hangUps = failures }, false, false},
		{"WelcomesThenFails", func(f *fakeCentral) { f.refuse = failures }, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bets := gendata.Bets(1, 50, 1, seed)
			configure := func(f *fakeCentral) { tt.fake(f); f.winners = []string{"x"} }
			addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
			var f *fakeCentral
			if !tt.late {
				f = newFakeAt(t, addr, configure)
			}
			logs := testutil.NewBuffer()
			a, err := agency.New(agency.Config{ID: 1, ServerAddress: addr, DataFile: writeBets(t, bets), MaxAmount: 100,
				BackoffInitial: initial, BackoffMax: time.Minute}, logline.New(logs, slog.LevelInfo))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			var res agency.Result
			done := make(chan error, 1)
			go func() {
				var err error
				res, err = a.Run(ctx)
				done <- err
			}()
			pauses := func() []testutil.Line {
				var out []testutil.Line
				for _, l := range testutil.Lines(logs.String()) {
					if (l.Action == "conexion_perdida" || l.Action == "conectar") && l.Result == "in_progress" {
						out = append(out, l)
					}
				}
				return out
			}
			if tt.late {
				testutil.WaitFor(t, waitLong, "the agency to fail to connect", func() bool { return len(pauses()) >= failures })
				f = newFakeAt(t, addr, configure)
			}
			if err := <-done; err != nil {
				t.Fatalf("Run: %v\n%s", err, logs.String())
			}
			if res.Sent != len(bets) || !slices.Equal(f.stored(), bets) {
				t.Errorf("sent %d, stored %d bets; want all %d once", res.Sent, len(f.stored()), len(bets))
			}
			got := pauses()
			if len(got) < failures || !tt.late && len(got) != failures {
				t.Fatalf("%d pauses (conexion_perdida or conectar in_progress lines), want %d", len(got), failures)
			}
			step := initial
			for i, l := range got[:failures] {
				wait, err := time.ParseDuration(l.Get("retry_in"))
				if err != nil {
					t.Fatal(err)
				}
				// Equal jitter: the pause is between half the step and the step.
				if wait < step/2-time.Millisecond || wait > step+time.Millisecond {
					t.Errorf("pause %d: retry_in %v, want between %v and %v\n%s", i+1, wait, step/2, step, l.Raw)
				}
				if tt.grows {
					step *= 2
				}
			}
		})
	}
}

// forgetfulCentrals are the ways a fake central forgets acked batches:
// during the upload, after the agency finished, or all of them.
var forgetfulCentrals = []struct {
	name string
	fake func(f *fakeCentral)
	ack  uint64 // the highest batch acked when the central forgets
}{
	{"DuringUpload", func(f *fakeCentral) { f.forgetAt, f.forgetTo = 40, 12 }, 40},
	{"AfterFinish", func(f *fakeCentral) { f.forgetAfterFinish, f.forgetTo = true, 5 }, 60},
	{"Everything", func(f *fakeCentral) { f.forgetAt, f.forgetTo = 30, 0 }, 30},
}

// TestAgency_CentralForgot: a central that welcomes the agency with fewer
// batches than it acknowledged (its files were cut back and repaired) is
// told so (central_olvido at ERROR) and gets the missing batches again from
// the file, during the upload or after the agency finished; every bet ends
// up stored once, in order.
func TestAgency_CentralForgot(t *testing.T) {
	for _, tt := range forgetfulCentrals {
		t.Run(tt.name, func(t *testing.T) {
			bets := gendata.Bets(1, 600, 2, seed)
			f := newFake(t, func(f *fakeCentral) { tt.fake(f); f.winners = []string{"x"} })
			res, err, logs := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: f.addr,
				DataFile: writeBets(t, bets), MaxAmount: 10, Window: 1, BackoffInitial: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if got := f.stored(); !slices.Equal(got, bets) {
				t.Fatalf("stored %d bets, want the file's %d once each, in order", len(got), len(bets))
			}
			if res.Sent != len(bets) || res.Batches != 60 {
				t.Errorf("result: %d bets in %d batches, want %d in 60", res.Sent, res.Batches, len(bets))
			}
			l, ok := testutil.FindOne(logs.Lines(t), "central_olvido", "fail")
			if !ok || l.Level != "ERROR" || l.Get("agency") != "1" || l.Get("ultimo_ack") != strconv.FormatUint(tt.ack, 10) ||
				l.Get("central_last_seq") != strconv.FormatUint(f.forgetTo, 10) {
				t.Errorf("central_olvido line %q; want one at ERROR with agency 1, ultimo_ack %d, central_last_seq %d", l.Raw, tt.ack, f.forgetTo)
			}
			if n := len(f.snapshot().finished); tt.fake != nil && tt.name == "AfterFinish" && n != 2 {
				t.Errorf("the agency finished %d times, want 2 (again after the resend)", n)
			}
		})
	}
}
