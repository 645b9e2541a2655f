package reliability

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
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
	"lottery/pki"
	"lottery/protocol"
)

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

// How a hostile case reaches the central.
type route int

const (
	// asAgency speaks over TLS with the certificate of an agency of the
	// test PKI: the protocol checks are behind the handshake.
	asAgency route = iota
	// asStranger speaks plain text to the same central: it may only echo,
	// but its frames are read (and refused) like anyone's.
	asStranger
	// toOpenCentral speaks plain text to a TLS=off central, the course's
	// bare mode, where the Hello alone says who the peer is. Only there can
	// a peer name agency 0 or 2^31: no certificate can (pki.AgencyID).
	toOpenCentral
)

func (r route) String() string {
	return [...]string{"tls", "plain", "tls-off"}[r]
}

// TestCentral_HostileFrames sends the built central each kind of bad input
// the issue names: every one gets its error code (an Error answer or a
// refusing BatchAck) and a fail log line, nothing is stored, and the
// central goes on serving. The protocol checks are reached as an
// authenticated agency; the checks of the framing itself also as a
// plain-text stranger, who gets the same answers (the central decodes its
// frames before refusing them); the agency-number checks that need a peer
// free to name any agency, against a TLS=off central.
func TestCentral_HostileFrames(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built central")
	}
	badDate := goodBet
	badDate.Birthdate = "1999-02-30"
	hello := func(a uint32) []byte { return testutil.Frame(t, protocol.Hello{Agency: a}) }
	okBatch := testutil.BatchFrame(t, 1, 1, goodBet)
	// A batch whose first name claims 200 bytes where there are 15.
	lying := slices.Clone(okBatch)
	binary.BigEndian.PutUint16(lying[protocol.HeaderSize+14+2:], 200)
	// A batch whose count claims 50 bets where there is 1.
	lyingCount := slices.Clone(okBatch)
	binary.BigEndian.PutUint16(lyingCount[protocol.HeaderSize+12:], 50)
	echo := testutil.Frame(t, protocol.Echo{Data: []byte("ping")})

	both := []route{asAgency, asStranger}
	tests := []struct {
		name   string
		routes []route // nil: asAgency
		as     int     // the certificate's agency (asAgency); 0: agency 1
		send   []byte
		want   []lottery.Code // codes answered, in order
	}{
		{name: "frame over 8 KiB", routes: both, send: cat(header(1, protocol.TypeEcho, 9000), make([]byte, 100)), want: []lottery.Code{lottery.ETooLarge}},
		{name: "unknown version", routes: both, send: cat(header(2, protocol.TypeHello, 4), []byte{0, 0, 0, 1}), want: []lottery.Code{lottery.EVersion}},
		{name: "version zero", routes: both, send: cat(header(0, protocol.TypeHello, 4), []byte{0, 0, 0, 1}), want: []lottery.Code{lottery.EVersion}},
		{name: "unknown type", routes: both, send: cat(header(1, 0xEE, 0)), want: []lottery.Code{lottery.EUnknownType}},
		{name: "truncated header", routes: both, send: []byte{1, byte(protocol.TypeHello)}, want: []lottery.Code{lottery.EMalformed}},
		{name: "truncated echo", routes: both, send: cat(echo, header(1, protocol.TypeEcho, 100), make([]byte, 10)), want: []lottery.Code{lottery.EMalformed}},
		{name: "truncated frame", send: cat(hello(1), header(1, protocol.TypeBatch, 100), make([]byte, 10)), want: []lottery.Code{lottery.EMalformed}},
		{name: "hello payload too short", send: cat(header(1, protocol.TypeHello, 2), []byte{0, 1}), want: []lottery.Code{lottery.EMalformed}},
		{name: "hello payload too long", send: cat(header(1, protocol.TypeHello, 6), []byte{0, 0, 0, 1, 0, 0}), want: []lottery.Code{lottery.EMalformed}},
		{name: "lying string length", send: cat(hello(1), lying), want: []lottery.Code{lottery.EMalformed}},
		{name: "lying bet count", send: cat(hello(1), lyingCount), want: []lottery.Code{lottery.EMalformed}},
		{name: "batch before hello", send: okBatch, want: []lottery.Code{lottery.ENotIdentified}},
		{name: "hello as another agency", send: hello(2), want: []lottery.Code{lottery.EWrongAgency}},
		{name: "batch for another agency", as: 2, routes: []route{asAgency, toOpenCentral}, send: cat(hello(2), okBatch), want: []lottery.Code{lottery.EWrongAgency}},
		{name: "batch out of sequence", send: cat(hello(1), testutil.BatchFrame(t, 1, 7, goodBet)), want: []lottery.Code{lottery.ESequence}},
		{name: "invalid bet", send: cat(hello(1), testutil.BatchFrame(t, 1, 1, badDate)), want: []lottery.Code{lottery.EInvalidBet}},
		{name: "empty batch", send: cat(hello(1), testutil.BatchFrame(t, 1, 1)), want: []lottery.Code{lottery.EInvalidBet}},
		{name: "winners query for another agency", send: cat(hello(1), testutil.Frame(t, protocol.WinnersQuery{Agency: 2})), want: []lottery.Code{lottery.EWrongAgency}},
		{name: "finished for another agency", send: cat(hello(1), testutil.Frame(t, protocol.Finished{Agency: 2})), want: []lottery.Code{lottery.EWrongAgency}},
		// A certificate names agencies 1…2^31-1 only: with one, agency 0
		// or 2^31 is someone else; only an open central checks the range.
		{name: "agency zero", send: hello(0), want: []lottery.Code{lottery.EWrongAgency}},
		{name: "agency zero", routes: []route{toOpenCentral}, send: hello(0), want: []lottery.Code{lottery.EUnknownAgency}},
		{name: "agency above AGENCIES", as: 4, routes: []route{asAgency, toOpenCentral}, send: hello(4), want: []lottery.Code{lottery.EUnknownAgency}},
		{name: "agency far outside", send: hello(1 << 31), want: []lottery.Code{lottery.EWrongAgency}},
		{name: "agency far outside", routes: []route{toOpenCentral}, send: hello(1 << 31), want: []lottery.Code{lottery.EUnknownAgency}},
		{name: "second hello", send: cat(hello(1), hello(1)), want: []lottery.Code{lottery.EUnexpectedMsg}},
		{name: "answer sent as a request", send: cat(hello(1), testutil.Frame(t, protocol.Welcome{LastSeq: 1})), want: []lottery.Code{lottery.EUnexpectedMsg}},
		{name: "finished before its batches", send: cat(hello(1), testutil.Frame(t, protocol.Finished{Agency: 1, LastSeq: 9})), want: []lottery.Code{lottery.ESequence}},
		// A stranger may echo, and nothing else.
		{name: "hello in plain text", routes: []route{asStranger}, send: hello(1), want: []lottery.Code{lottery.ETLSRequired}},
		{name: "batch in plain text", routes: []route{asStranger}, send: cat(okBatch), want: []lottery.Code{lottery.ETLSRequired}},
		{name: "echo then hello in plain text", routes: []route{asStranger}, send: cat(echo, hello(1)), want: []lottery.Code{lottery.ETLSRequired}},
		// Last: it really finishes agency 3, which has nothing to send.
		{name: "second finished", as: 3, send: cat(hello(3), testutil.Frame(t, protocol.Finished{Agency: 3}), testutil.Frame(t, protocol.Finished{Agency: 3})), want: []lottery.Code{lottery.EAlreadyFinished}},
	}
	server, betsPath := startCentral(t, nil)
	open, openBets := startCentral(t, map[string]string{"TLS": "off"})
	for _, tt := range tests {
		routes := tt.routes
		if routes == nil {
			routes = []route{asAgency}
		}
		as := max(tt.as, 1)
		for _, r := range routes {
			t.Run(r.String()+"/"+tt.name, func(t *testing.T) {
				central := server
				if r == toOpenCentral {
					central = open
				}
				fails := len(testutil.Results(central.Lines(), "fail"))
				var frames []protocol.Frame
				var err error
				if r == asAgency {
					frames, err = exchangeTLS(central.Addr, agencyTLS(t, as, central.Addr), 30*time.Second, tt.send)
				} else {
					frames, err = exchange(central.Addr, 30*time.Second, tt.send)
				}
				if err != nil {
					t.Fatalf("exchange: %v", err)
				}
				if got := errorCodes(frames); !slices.Equal(got, tt.want) {
					t.Errorf("codes answered = %v, want %v (frames %v)", got, tt.want, frames)
				}
				if !central.WaitOutput(30*time.Second, func(out string) bool {
					return len(testutil.Results(testutil.Lines(out), "fail")) > fails
				}) {
					t.Errorf("no fail log line for it:\n%s", tail(central.Output(), 5))
				}
			})
		}
	}
	t.Run("tls/garbage handshake", func(t *testing.T) {
		// A first byte that says TLS, then no TLS: the handshake fails, the
		// central logs why and closes without a protocol answer.
		conn, err := net.DialTimeout("tcp", server.Addr, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		conn.Write(cat([]byte{0x16, 3, 1, 0, 40}, bytes.Repeat([]byte{0xEE}, 40)))
		got, err := io.ReadAll(conn)
		if err != nil && !isReset(err) {
			t.Fatalf("the central did not close the connection: %v", err)
		}
		if len(got) > 0 && got[0] != tlsRecordAlert {
			t.Errorf("answered %q, want nothing or a TLS alert", got)
		}
		waitReason(t, server, "autenticar", pki.ReasonProtocol)
	})
	// The central still serves, and a batch refused on its merits uses up
	// its sequence number: the agency's next batches are stored and it can
	// finish (otherwise one bad bet would fail all the rest as out of
	// sequence). Sent again, the refused batch is refused again.
	frames, err := exchangeTLS(server.Addr, agencyTLS(t, 1, server.Addr), 30*time.Second, cat(hello(1), testutil.BatchFrame(t, 1, 1, badDate),
		testutil.BatchFrame(t, 1, 2, goodBet), testutil.BatchFrame(t, 1, 1, badDate), testutil.Frame(t, protocol.Finished{Agency: 1, LastSeq: 2})))
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
	stopCentral(t, open)
	if n := testutil.CountLines(t, betsPath); n != 1 {
		t.Errorf("bets file has %d rows, want only the good one", n)
	}
	if n := testutil.CountLines(t, openBets); n != 0 {
		t.Errorf("the open central's bets file has %d rows, want none", n)
	}
}

// tlsRecordAlert is the first byte of a TLS alert record.
const tlsRecordAlert = 0x15

// waitReason waits for the central's `action: <action> | result: fail` line
// with `reason: <reason>`.
func waitReason(t *testing.T, central *testutil.Proc, action, reason string) testutil.Line {
	t.Helper()
	var found testutil.Line
	if !central.WaitOutput(30*time.Second, func(out string) bool {
		for _, l := range testutil.Find(testutil.Lines(out), action, "fail") {
			if l.Get("reason") == reason {
				found = l
				return true
			}
		}
		return false
	}) {
		t.Errorf("the central logged no `%s | result: fail | … | reason: %s` line:\n%s", action, reason, tail(central.Output(), 10))
	}
	return found
}

// TestCentral_SlowlorisAndIdle: with HANDSHAKE_TIMEOUT=1s and
// IDLE_TIMEOUT=1s, a peer that does not finish its handshake in time is
// dropped (nothing to answer: it is not speaking the protocol yet), and one
// that sends no whole frame for that long is closed with an idle error: a
// raw connection that sends nothing, one that trickles a ClientHello, a
// plain-text peer that trickles an echo, and agencies (each with its own
// certificate, so none takes over another's session) that identify
// themselves and then go quiet or trickle a frame a byte at a time more
// slowly than that.
func TestCentral_SlowlorisAndIdle(t *testing.T) {
	testutil.Long(t)
	server, _ := startCentral(t, map[string]string{"IDLE_TIMEOUT": "1s", "HANDSHAKE_TIMEOUT": "1s"})
	hello := func(a uint32) []byte { return testutil.Frame(t, protocol.Hello{Agency: a}) }
	slowEcho := testutil.Frame(t, protocol.Echo{Data: []byte("trickle, trickle, trickle")})
	tests := []struct {
		name    string
		as      int    // speak TLS with agency as's certificate; 0: raw TCP
		first   []byte // sent at once
		trickle []byte // then a byte every 400 ms
		// reason is the central's `autenticar` fail reason for a connection
		// dropped in its handshake; "" means it gets an idle_timeout answer
		// and a `recibir_mensaje` fail line.
		reason string
	}{
		{name: "silent connection", reason: pki.ReasonTimeout},
		{name: "slowloris handshake", trickle: clientHello(t, server.Addr), reason: pki.ReasonTimeout},
		{name: "slowloris plain-text echo", trickle: slowEcho},
		{name: "quiet after hello", as: 1, first: hello(1)},
		{name: "slowloris hello", as: 2, trickle: hello(2)},
		{name: "slowloris echo after hello", as: 3, first: hello(3), trickle: slowEcho},
	}
	var wg sync.WaitGroup
	for _, tt := range tests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn net.Conn
			var err error
			if tt.as > 0 {
				conn, err = dialTLS(server.Addr, agencyTLS(t, tt.as, server.Addr), 30*time.Second)
			} else {
				conn, err = net.DialTimeout("tcp", server.Addr, 30*time.Second)
			}
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
			trickled := make(chan struct{})
			defer func() { close(stop); <-trickled }()
			go func() {
				defer close(trickled)
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
			if tt.reason != "" {
				// Dropped in the handshake: closed with nothing to read but,
				// at most, a TLS alert.
				got, err := io.ReadAll(conn)
				if err != nil && !isReset(err) {
					t.Errorf("%s: the central did not close the connection: %v", tt.name, err)
				} else if len(got) > 0 && got[0] != tlsRecordAlert {
					t.Errorf("%s: answered %q, want nothing or a TLS alert", tt.name, got)
				}
				return
			}
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
	var idle, handshakes int
	for _, tt := range tests {
		if tt.reason == "" {
			idle++
		} else {
			handshakes++
		}
	}
	if !server.WaitOutput(30*time.Second, func(out string) bool {
		lines := testutil.Lines(out)
		timeouts := 0
		for _, l := range testutil.Find(lines, "autenticar", "fail") {
			if l.Get("reason") == pki.ReasonTimeout {
				timeouts++
			}
		}
		idles := 0
		for _, l := range testutil.Find(lines, "recibir_mensaje", "fail") {
			if l.Get("code") == lottery.EIdle.String() {
				idles++
			}
		}
		return timeouts >= handshakes && idles >= idle
	}) {
		t.Errorf("want %d `autenticar | result: fail | … | reason: timeout` and %d `recibir_mensaje | result: fail | … | code: idle_timeout` lines:\n%s",
			handshakes, idle, tail(server.Output(), 10))
	}
	stopCentral(t, server)
}

// clientHello returns the first TLS record an agency sends to addr: its
// ClientHello, to be trickled.
func clientHello(t *testing.T, addr string) []byte {
	t.Helper()
	c, s := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tls.Client(c, agencyTLS(t, 1, addr)).Handshake() // fails once s is closed
		c.Close()
	}()
	defer func() { s.Close(); <-done }()
	s.SetDeadline(time.Now().Add(30 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(s, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[3:]))
	if _, err := io.ReadFull(s, body); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 0x16 {
		t.Fatalf("the first record is of type %#x, not a handshake", hdr[0])
	}
	return cat(hdr, body)
}

// TestCentral_ConnectionFlood: with MAX_CONNECTIONS=20, 200 connections at
// once get 20 sessions and 180 refusals (an Error, then the connection
// closed); while the 20 are held, a real agency waits and retries, and it
// completes once they go. The flood is of plain-text strangers, which can
// fill the central only because MAX_UNAUTHENTICATED is raised to
// MAX_CONNECTIONS here: the total cap is what is under test (with the
// default, an eighth, they would evict each other instead:
// TestCentral_UnauthenticatedCap). A served stranger proves it is served
// with an echo, the one request it may make.
func TestCentral_ConnectionFlood(t *testing.T) {
	testutil.Long(t)
	const limit, flood = 20, 200
	dir := t.TempDir()
	if _, err := gendata.WriteFile(dir, 1, 500, 2, 7, true); err != nil {
		t.Fatal(err)
	}
	server, betsPath := startCentral(t, map[string]string{
		"AGENCIES": "1", "MAX_CONNECTIONS": strconv.Itoa(limit), "MAX_UNAUTHENTICATED": strconv.Itoa(limit),
		"SERVER_LISTEN_BACKLOG": "512", "IDLE_TIMEOUT": "60s", "HANDSHAKE_TIMEOUT": "60s",
	})
	type result struct {
		conn net.Conn
		typ  protocol.Type
		code lottery.Code
		err  error
	}
	ping := testutil.Frame(t, protocol.Echo{Data: []byte("still there?")})
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
			// hears nothing until it asks, then gets its echo.
			conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
			f, err := protocol.NewReader(conn).Next()
			r := result{conn: conn, typ: f.Type, err: err}
			if m, derr := protocol.Decode(f); err == nil && derr == nil {
				switch m := m.(type) {
				case protocol.Error:
					r.code = m.Code
					_, err := io.Copy(io.Discard, conn) // then the connection is closed
					r.err = err
				case protocol.Echo:
					if !bytes.Equal(testutil.Frame(t, m), ping) {
						r.err = fmt.Errorf("echo %q, want %q", testutil.Frame(t, m), ping)
					}
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
		case r.typ == protocol.TypeEcho:
			held = append(held, r.conn)
		default:
			t.Errorf("flood connection got %v (code %v)", r.typ, r.code)
		}
	}
	for range flood - limit {
		collect()
	}
	// Now every connection asks for an echo: only the served ones hear back.
	for _, c := range conns {
		c.Write(ping)
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
		t.Fatalf("the agency was never refused for %s, or gave up:\n%s", lottery.ETooManyConns, tail(agency.Output(), 10))
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

// TestCentral_UnauthenticatedCap: with MAX_UNAUTHENTICATED=16, strangers
// that hold connections without authenticating never hold more than 16:
// each new connection past the cap closes the oldest of them (a
// `conexion | result: fail | … | reason: unauthenticated_limit` line), and
// an agency that authenticates meanwhile is not among those closed.
func TestCentral_UnauthenticatedCap(t *testing.T) {
	testutil.Long(t)
	const limit, strangers = 16, 40
	server, _ := startCentral(t, map[string]string{
		"AGENCIES": "1", "MAX_UNAUTHENTICATED": strconv.Itoa(limit), "HANDSHAKE_TIMEOUT": "60s", "IDLE_TIMEOUT": "60s",
	})
	agency, err := dialTLS(server.Addr, agencyTLS(t, 1, server.Addr), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer agency.Close()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// One at a time, each past the cap waiting until the oldest still open
	// is closed, so "oldest" is well defined. (Evictions are logged at most
	// once a second, with their count: the lines cannot be counted.)
	for i := range strangers {
		c, err := net.DialTimeout("tcp", server.Addr, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if i < limit {
			continue
		}
		oldest := conns[i-limit]
		oldest.SetReadDeadline(time.Now().Add(30 * time.Second))
		if n, err := oldest.Read(make([]byte, 1)); n > 0 || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("stranger %d did not evict stranger %d (%d bytes, %v):\n%s", i+1, i-limit+1, n, err, tail(server.Output(), 5))
		}
	}
	if _, ok := testutil.FindOne(server.Lines(), "conexion", "fail"); !ok {
		t.Error("no eviction line")
	}
	// The first strangers-limit were closed by the central without a word;
	// the last limit are still open (an echo comes back).
	ping := testutil.Frame(t, protocol.Echo{Data: []byte("ping")})
	for i, c := range conns {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		c.Write(ping)
		got, err := io.ReadAll(io.LimitReader(c, int64(len(ping))))
		switch {
		case i < strangers-limit && (len(got) > 0 || err != nil && !isReset(err)):
			t.Errorf("stranger %d, evicted, read %q (%v), want the connection closed", i+1, got, err)
		case i >= strangers-limit && !bytes.Equal(got, ping):
			t.Errorf("stranger %d, among the newest %d, read %q (%v), want its echo", i+1, limit, got, err)
		}
	}
	for _, l := range testutil.Find(server.Lines(), "conexion", "fail") {
		if l.Get("reason") != "unauthenticated_limit" {
			t.Errorf("conexion fail line %q, want reason: unauthenticated_limit", l.Raw)
		}
	}
	// The agency authenticated before them all and was never evicted.
	frames, err := exchangeOn(agency, 30*time.Second, testutil.Frame(t, protocol.Hello{Agency: 1}))
	if err != nil || len(frames) != 1 || frames[0].Type != protocol.TypeWelcome {
		t.Errorf("the authenticated agency got %v (%v), want a welcome", frames, err)
	}
	stopCentral(t, server)
}

func sortedBets(b []lottery.Bet) []lottery.Bet { sortBets(b); return b }
