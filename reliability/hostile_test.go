package reliability

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"lottery"
	"lottery/gendata"
	"lottery/internal/testutil"
	"lottery/protocol"
)

// batchFrame builds a batch frame of bets for agency and seq.
func batchFrame(agency uint32, seq uint64, bets ...lottery.Bet) []byte {
	var b protocol.BatchBuilder
	b.Reset(agency, seq, 0)
	for _, bet := range bets {
		if !b.AddBet(bet) {
			panic("bet does not fit")
		}
	}
	return append([]byte(nil), b.Frame()...)
}

var goodBet = lottery.Bet{FirstName: "Santiago Lionel", LastName: "Lorca", Document: "30904465", Birthdate: "1999-03-17", Number: 2201}

// header is a raw frame header.
func header(version byte, typ protocol.Type, length int) []byte {
	return binary.BigEndian.AppendUint16([]byte{version, byte(typ)}, uint16(length))
}

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// startCentral starts the built central in a new directory with the given
// settings over quiet defaults, and returns it and its bets file.
func startCentral(t *testing.T, env map[string]string) (*testutil.Proc, string) {
	t.Helper()
	dir := t.TempDir()
	e := map[string]string{
		"AGENCIES":         "3",
		"STORAGE_FILEPATH": filepath.Join(dir, "bets.csv"),
		"LOGGING_LEVEL":    "INFO",
	}
	for k, v := range env {
		e[k] = v
	}
	return testutil.StartServer(t, dir, e), e["STORAGE_FILEPATH"]
}

// stopCentral sends SIGTERM and fails unless the central exits 0.
func stopCentral(t *testing.T, p *testutil.Proc) {
	t.Helper()
	if p.Exited() {
		t.Fatalf("the central had exited (code %d):\n%s", p.ExitCode(), tail(p.Output(), 30))
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(t, testutil.ExitTimeout); code != 0 {
		t.Fatalf("the central exited %d after SIGTERM, want 0:\n%s", code, tail(p.Output(), 30))
	}
}

// TestCentral_HostileFrames sends the built central each kind of bad input
// the issue names: every one gets its error code (an Error answer or a
// refusing BatchAck) and a fail log line, nothing is stored, and the
// central goes on serving.
func TestCentral_HostileFrames(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built central")
	}
	badDate := goodBet
	badDate.Birthdate = "1999-02-30"
	hello := func(a uint32) []byte { return testutil.Frame(t, protocol.Hello{Agency: a}) }
	okBatch := batchFrame(1, 1, goodBet)
	// A batch whose first name claims 200 bytes where there are 15.
	lying := slices.Clone(okBatch)
	binary.BigEndian.PutUint16(lying[protocol.HeaderSize+14+2:], 200)
	// A batch whose count claims 50 bets where there is 1.
	lyingCount := slices.Clone(okBatch)
	binary.BigEndian.PutUint16(lyingCount[protocol.HeaderSize+12:], 50)

	tests := []struct {
		name string
		send []byte
		want []lottery.Code // codes answered, in order
	}{
		{"frame over 8 KiB", cat(header(1, protocol.TypeEcho, 9000), make([]byte, 100)), []lottery.Code{lottery.ETooLarge}},
		{"unknown version", cat(header(2, protocol.TypeHello, 4), []byte{0, 0, 0, 1}), []lottery.Code{lottery.EVersion}},
		{"version zero", cat(header(0, protocol.TypeHello, 4), []byte{0, 0, 0, 1}), []lottery.Code{lottery.EVersion}},
		{"unknown type", cat(header(1, 0xEE, 0)), []lottery.Code{lottery.EUnknownType}},
		{"truncated frame", cat(hello(1), header(1, protocol.TypeBatch, 100), make([]byte, 10)), []lottery.Code{lottery.EMalformed}},
		{"truncated header", []byte{1, byte(protocol.TypeHello)}, []lottery.Code{lottery.EMalformed}},
		{"hello payload too short", cat(header(1, protocol.TypeHello, 2), []byte{0, 1}), []lottery.Code{lottery.EMalformed}},
		{"hello payload too long", cat(header(1, protocol.TypeHello, 6), []byte{0, 0, 0, 1, 0, 0}), []lottery.Code{lottery.EMalformed}},
		{"lying string length", cat(hello(1), lying), []lottery.Code{lottery.EMalformed}},
		{"lying bet count", cat(hello(1), lyingCount), []lottery.Code{lottery.EMalformed}},
		{"batch before hello", okBatch, []lottery.Code{lottery.ENotIdentified}},
		{"batch for another agency", cat(hello(2), okBatch), []lottery.Code{lottery.EWrongAgency}},
		{"batch out of sequence", cat(hello(1), batchFrame(1, 7, goodBet)), []lottery.Code{lottery.ESequence}},
		{"invalid bet", cat(hello(1), batchFrame(1, 1, badDate)), []lottery.Code{lottery.EInvalidBet}},
		{"empty batch", cat(hello(1), batchFrame(1, 1)), []lottery.Code{lottery.EInvalidBet}},
		{"winners query for another agency", cat(hello(1), testutil.Frame(t, protocol.WinnersQuery{Agency: 2})), []lottery.Code{lottery.EWrongAgency}},
		{"finished for another agency", cat(hello(1), testutil.Frame(t, protocol.Finished{Agency: 2})), []lottery.Code{lottery.EWrongAgency}},
		{"agency zero", hello(0), []lottery.Code{lottery.EUnknownAgency}},
		{"agency above AGENCIES", hello(4), []lottery.Code{lottery.EUnknownAgency}},
		{"agency far outside", hello(1 << 31), []lottery.Code{lottery.EUnknownAgency}},
		{"second hello", cat(hello(1), hello(1)), []lottery.Code{lottery.EUnexpectedMsg}},
		{"answer sent as a request", cat(hello(1), testutil.Frame(t, protocol.Welcome{LastSeq: 1})), []lottery.Code{lottery.EUnexpectedMsg}},
		{"finished before its batches", cat(hello(1), testutil.Frame(t, protocol.Finished{Agency: 1, LastSeq: 9})), []lottery.Code{lottery.ESequence}},
		// Last: it really finishes agency 3, which has nothing to send.
		{"second finished", cat(hello(3), testutil.Frame(t, protocol.Finished{Agency: 3}), testutil.Frame(t, protocol.Finished{Agency: 3})), []lottery.Code{lottery.EAlreadyFinished}},
	}
	server, betsPath := startCentral(t, nil)
	addr := server.Addr
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fails := len(testutil.Results(server.Lines(), "fail"))
			frames, err := exchange(addr, 30*time.Second, tt.send)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if got := errorCodes(frames); !slices.Equal(got, tt.want) {
				t.Errorf("codes answered = %v, want %v (frames %v)", got, tt.want, frames)
			}
			if !server.WaitOutput(30*time.Second, func(out string) bool {
				return len(testutil.Results(testutil.Lines(out), "fail")) > fails
			}) {
				t.Errorf("no fail log line for it:\n%s", tail(server.Output(), 5))
			}
		})
	}
	// The central still serves, and a batch refused on its merits uses up
	// its sequence number: the agency's next batches are stored and it can
	// finish (otherwise one bad bet would fail all the rest as out of
	// sequence). Sent again, the refused batch is refused again.
	frames, err := exchange(addr, 30*time.Second, cat(hello(1), batchFrame(1, 1, badDate),
		batchFrame(1, 2, goodBet), batchFrame(1, 1, badDate), testutil.Frame(t, protocol.Finished{Agency: 1, LastSeq: 2})))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range frames {
		m, _ := protocol.Decode(f)
		switch m := m.(type) {
		case protocol.BatchAck:
			got = append(got, fmt.Sprintf("ack %d %v", m.Seq, m.Code))
		default:
			got = append(got, f.Type.String())
		}
	}
	want := []string{"welcome", "ack 1 invalid_bet", "ack 2 ok", "ack 1 invalid_bet", "finished_ack"}
	if !slices.Equal(got, want) {
		t.Errorf("after a refused batch the central answered %q, want %q", got, want)
	}
	stopCentral(t, server)
	if n := testutil.CountLines(t, betsPath); n != 1 {
		t.Errorf("bets file has %d rows, want only the good one", n)
	}
}

// TestCentral_SlowlorisAndIdle: with IDLE_TIMEOUT=1s, a peer that sends no
// whole frame for that long is closed with an idle error: one that sends
// nothing, one that identified itself and then went quiet, and one that
// trickles a frame a byte at a time more slowly than that.
func TestCentral_SlowlorisAndIdle(t *testing.T) {
	testutil.Long(t)
	server, _ := startCentral(t, map[string]string{"IDLE_TIMEOUT": "1s"})
	slowHello := testutil.Frame(t, protocol.Hello{Agency: 1})
	slowEcho := testutil.Frame(t, protocol.Echo{Data: []byte("trickle, trickle, trickle")})
	tests := []struct {
		name    string
		first   []byte // sent at once
		trickle []byte // then a byte every 400 ms
	}{
		{"silent connection", nil, nil},
		{"quiet after hello", slowHello, nil},
		{"slowloris hello", nil, slowHello},
		{"slowloris echo after hello", slowHello, slowEcho},
	}
	var wg sync.WaitGroup
	for _, tt := range tests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", server.Addr)
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(60 * time.Second))
			if _, err := conn.Write(tt.first); err != nil {
				t.Errorf("%s: %v", tt.name, err)
				return
			}
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for i := 0; i < len(tt.trickle); i++ {
					select {
					case <-stop:
						return
					case <-time.After(400 * time.Millisecond):
					}
					if _, err := conn.Write(tt.trickle[i : i+1]); err != nil {
						return
					}
				}
			}()
			frames, err := readFrames(conn)
			if err != nil {
				t.Errorf("%s: the central did not close the connection: %v", tt.name, err)
				return
			}
			codes := errorCodes(frames)
			if len(codes) != 1 || codes[0] != lottery.EIdle {
				t.Errorf("%s: codes answered = %v, want [%v]", tt.name, codes, lottery.EIdle)
			}
		}()
	}
	wg.Wait()
	// The lines are written before the answers, but reach us through a pipe.
	if !server.WaitCount(30*time.Second, len(tests), "recibir_mensaje", "fail") {
		t.Errorf("fewer than %d recibir_mensaje fail lines:\n%s", len(tests), tail(server.Output(), 10))
	}
	stopCentral(t, server)
}

// TestCentral_ConnectionFlood: with MAX_CONNECTIONS=20, 200 connections at
// once get 20 sessions and 180 refusals (an Error, then the connection
// closed); while the 20 are held, a real agency waits and retries, and it
// completes once they go.
func TestCentral_ConnectionFlood(t *testing.T) {
	testutil.Long(t)
	const limit, flood = 20, 200
	dir := t.TempDir()
	if _, err := gendata.WriteFile(dir, 1, 500, 2, 7, true); err != nil {
		t.Fatal(err)
	}
	server, betsPath := startCentral(t, map[string]string{
		"AGENCIES": "1", "MAX_CONNECTIONS": strconv.Itoa(limit), "SERVER_LISTEN_BACKLOG": "512", "IDLE_TIMEOUT": "60s",
	})
	type result struct {
		conn net.Conn
		typ  protocol.Type
		code lottery.Code
		err  error
	}
	dialed, results := make(chan net.Conn, flood), make(chan result, flood)
	var start sync.WaitGroup
	start.Add(1)
	for range flood {
		go func() {
			start.Wait()
			conn, err := net.DialTimeout("tcp", server.Addr, 30*time.Second)
			if err != nil {
				dialed <- nil
				results <- result{err: err}
				return
			}
			dialed <- conn
			// A refused connection gets its Error at once; a served one
			// hears nothing until it says Hello, then gets a Welcome.
			conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
			f, err := protocol.NewReader(conn).Next()
			r := result{conn: conn, typ: f.Type, err: err}
			if m, derr := protocol.Decode(f); err == nil && derr == nil {
				if e, ok := m.(protocol.Error); ok {
					r.code = e.Code
					_, err := io.Copy(io.Discard, conn) // then the connection is closed
					r.err = err
				}
			}
			results <- r
		}()
	}
	start.Done()
	var conns []net.Conn
	for range flood {
		if c := <-dialed; c != nil {
			conns = append(conns, c)
		}
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var held []net.Conn
	refused := 0
	collect := func() {
		r := <-results
		switch {
		case r.err != nil:
			t.Errorf("flood connection: %v", r.err)
		case r.typ == protocol.TypeError && r.code == lottery.ETooManyConns:
			refused++
		case r.typ == protocol.TypeWelcome:
			held = append(held, r.conn)
		default:
			t.Errorf("flood connection got %v (code %v)", r.typ, r.code)
		}
	}
	for range flood - limit {
		collect()
	}
	// Now every connection says Hello: only the served ones hear back.
	for _, c := range conns {
		c.Write(testutil.Frame(t, protocol.Hello{Agency: 1}))
	}
	for range limit {
		collect()
	}
	if len(held) != limit || refused != flood-limit {
		t.Fatalf("%d connections served and %d refused, want %d and %d", len(held), refused, limit, flood-limit)
	}
	// A real agency now finds the central full and keeps retrying...
	agency := testutil.StartClient(t, "agency-1", dir, map[string]string{
		"CLI_ID": "1", "CLI_SERVER_ADDRESS": server.Addr, "CLI_DATA_FILE": filepath.Join(dir, "agency-1.csv"),
		"CLI_RECONNECT_INITIAL": "50ms", "CLI_RECONNECT_MAX": "200ms",
	})
	if !agency.WaitOutput(30*time.Second, func(out string) bool {
		for _, l := range testutil.Find(testutil.Lines(out), "conectar", "in_progress") {
			if strings.Contains(l.Get("error"), lottery.ETooManyConns.String()) {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the agency was never refused:\n%s", tail(agency.Output(), 10))
	}
	// ...and completes once the flood goes away.
	for _, c := range conns {
		c.Close()
	}
	if code := agency.Wait(t, time.Minute); code != 0 {
		t.Fatalf("agency exited %d:\n%s", code, tail(agency.Output(), 20))
	}
	checkAgency(t, agency, 1, 2)
	if !server.WaitCount(30*time.Second, flood-limit, "conexion", "fail") {
		t.Errorf("%d conexion fail lines, want at least %d", len(testutil.Find(server.Lines(), "conexion", "fail")), flood-limit)
	}
	stopCentral(t, server)
	checkStored(t, betsPath, sortedBets(validRows(t, filepath.Join(dir, "agency-1.csv"), 1)))
}

func sortedBets(b []lottery.Bet) []lottery.Bet { sortBets(b); return b }
