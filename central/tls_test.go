package central_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lottery"
	"lottery/central"
	"lottery/internal/testutil"
	"lottery/pki"
	"lottery/protocol"
)

// testPKI issues a CA, the central's certificate and agencies 1…n.
func testPKI(t testing.TB, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), ".pki")
	if _, err := pki.Issue(pki.Options{Dir: dir, Agencies: n}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startTLSServer starts a central that requires TLS from dir's PKI.
func startTLSServer(t testing.TB, cfg central.Config, dir string, revoked *pki.Revocations) *server {
	t.Helper()
	tc, err := pki.ServerConfig(filepath.Join(dir, pki.CentralCertFile), filepath.Join(dir, pki.CentralKeyFile), filepath.Join(dir, pki.CAFile), revoked)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLS = tc
	return startServer(t, cfg, filepath.Join(t.TempDir(), "bets.csv"))
}

// dialAgency connects over TLS with agency id's certificate from dir.
func dialAgency(t testing.TB, addr, dir string, id int) *raw {
	t.Helper()
	cc, err := pki.ClientConfig(filepath.Join(dir, pki.AgencyCertFile(id)), filepath.Join(dir, pki.AgencyKeyFile(id)), filepath.Join(dir, pki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: waitShort}, "tcp", addr, pki.ForServer(cc, addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &raw{t: t, conn: conn, r: protocol.NewReader(conn)}
}

// TestTLS_Identity: the agency is the one its certificate names; a message
// naming another is refused with wrong_agency and nothing is stored.
func TestTLS_Identity(t *testing.T) {
	dir := testPKI(t, 2)
	srv := startTLSServer(t, central.Config{Agencies: 2}, dir, nil)
	bet := lottery.Bet{FirstName: "Ana", LastName: "Paz", Document: "1", Birthdate: "1990-01-01", Number: 7574}

	t.Run("OK", func(t *testing.T) {
		c := dialAgency(t, srv.addr, dir, 2)
		c.hello(2)
		c.sendBatch(2, 1, []lottery.Bet{bet})
		if ack, ok := c.recv().(protocol.BatchAck); !ok || ack.Code != lottery.NoError {
			t.Fatalf("ack %+v, want ok", ack)
		}
	})
	t.Run("ErrHelloOtherAgency", func(t *testing.T) {
		c := dialAgency(t, srv.addr, dir, 2)
		c.send(protocol.Hello{Agency: 1})
		c.expectError(lottery.EWrongAgency)
	})
	for _, tt := range []struct {
		name string
		msg  protocol.Message
	}{
		{"ErrFinishedOtherAgency", protocol.Finished{Agency: 1}},
		{"ErrWinnersOtherAgency", protocol.WinnersQuery{Agency: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialAgency(t, srv.addr, dir, 2)
			c.hello(2)
			c.send(tt.msg)
			c.expectError(lottery.EWrongAgency)
		})
	}
	t.Run("ErrBatchOtherAgency", func(t *testing.T) {
		c := dialAgency(t, srv.addr, dir, 2)
		c.hello(2)
		c.sendBatch(1, 1, []lottery.Bet{bet})
		if ack, ok := c.recv().(protocol.BatchAck); !ok || ack.Code != lottery.EWrongAgency {
			t.Fatalf("ack %+v, want wrong_agency", ack)
		}
	})
	if got := srv.store.Stats().Bets; got != 1 {
		t.Fatalf("%d bets stored, want only agency 2's one", got)
	}
	if srv.store.LastSeq(1) != 0 {
		t.Fatalf("agency 1 has batch %d stored", srv.store.LastSeq(1))
	}
}

// TestTLS_PlainText: a plain-text peer of a TLS central may echo, byte for
// byte, and nothing else.
func TestTLS_PlainText(t *testing.T) {
	dir := testPKI(t, 1)
	srv := startTLSServer(t, central.Config{Agencies: 1}, dir, nil)
	c := dialRaw(t, srv.addr)
	frame := testutil.Frame(t, protocol.Echo{Data: []byte("ping")})
	c.write(frame)
	f, err := c.next(waitShort)
	if err != nil || f.Type != protocol.TypeEcho || !bytes.Equal(f.Payload, []byte("ping")) {
		t.Fatalf("echo answered %+v, %v", f, err)
	}
	for _, m := range []protocol.Message{protocol.Hello{Agency: 1}, protocol.WinnersQuery{Agency: 1}, protocol.Finished{Agency: 1}} {
		c := dialRaw(t, srv.addr)
		c.send(m)
		c.expectError(lottery.ETLSRequired)
	}
	if got := len(testutil.Find(srv.log.Lines(t), "recibir_mensaje", "fail")); got != 3 {
		t.Fatalf("%d recibir_mensaje fail lines, want 3", got)
	}
}

// TestTLS_Refused: handshakes the central refuses, each logged with why.
func TestTLS_Refused(t *testing.T) {
	dir := testPKI(t, 2)
	other := testPKI(t, 1) // another CA
	revoked := new(pki.Revocations)
	cert2, err := pki.ReadCertificate(filepath.Join(dir, pki.AgencyCertFile(2)))
	if err != nil {
		t.Fatal(err)
	}
	list, err := pki.ParseRevocationList([]byte(pki.FormatSerial(cert2.SerialNumber) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	revoked.Set(list)
	srv := startTLSServer(t, central.Config{Agencies: 2, HandshakeTimeout: 300 * time.Millisecond}, dir, revoked)
	ca := filepath.Join(dir, pki.CAFile)
	tests := []struct {
		name, reason string
		cert, key    string
	}{
		{"ErrNoCertificate", pki.ReasonNoCertificate, "", ""},
		{"ErrOtherCA", pki.ReasonUnknownCA, filepath.Join(other, pki.AgencyCertFile(1)), filepath.Join(other, pki.AgencyKeyFile(1))},
		{"ErrRevoked", pki.ReasonRevoked, filepath.Join(dir, pki.AgencyCertFile(2)), filepath.Join(dir, pki.AgencyKeyFile(2))},
		{"ErrCentralAsAgency", pki.ReasonNotAnAgency, filepath.Join(dir, pki.CentralCertFile), filepath.Join(dir, pki.CentralKeyFile)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc, err := pki.ClientConfig(filepath.Join(dir, pki.AgencyCertFile(1)), filepath.Join(dir, pki.AgencyKeyFile(1)), ca)
			if err != nil {
				t.Fatal(err)
			}
			cc.Certificates = nil
			if tt.cert != "" {
				pair, err := tls.LoadX509KeyPair(tt.cert, tt.key)
				if err != nil {
					t.Fatal(err)
				}
				cc.Certificates = []tls.Certificate{pair}
			}
			conn, err := tls.Dial("tcp", srv.addr, pki.ForServer(cc, srv.addr))
			if err == nil {
				// TLS 1.3: the refusal arrives with the first read.
				conn.SetReadDeadline(time.Now().Add(waitShort))
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if err == nil {
				t.Fatal("the central accepted the handshake")
			}
			waitFor(t, "the refusal's log line", func() bool {
				for _, l := range testutil.Find(srv.log.Lines(t), "autenticar", "fail") {
					if l.Get("reason") == tt.reason {
						return true
					}
				}
				return false
			})
		})
	}
	t.Run("ErrTimeout", func(t *testing.T) {
		c := dialRaw(t, srv.addr)
		c.write([]byte{0x16}) // a ClientHello that never comes
		c.expectClosed()
		waitFor(t, "the timeout's log line", func() bool {
			for _, l := range testutil.Find(srv.log.Lines(t), "autenticar", "fail") {
				if l.Get("reason") == pki.ReasonTimeout {
					return true
				}
			}
			return false
		})
	})
}

// TestTLS_TakeOver: a second connection of the same agency replaces the
// first, which is closed.
func TestTLS_TakeOver(t *testing.T) {
	dir := testPKI(t, 1)
	srv := startTLSServer(t, central.Config{Agencies: 1}, dir, nil)
	first := dialAgency(t, srv.addr, dir, 1)
	first.hello(1)
	second := dialAgency(t, srv.addr, dir, 1)
	if w := second.hello(1); w.LastSeq != 0 {
		t.Fatalf("welcome %+v", w)
	}
	first.expectClosed()
	if _, ok := testutil.FindOne(srv.log.Lines(t), "agencia_reemplazada", "success"); !ok {
		t.Fatal("no agencia_reemplazada line")
	}
	second.finish(1, 0)
	if got := second.winners(1); len(got) != 0 {
		t.Fatalf("winners %v", got)
	}
}

// TestTLS_UnauthenticatedLimit: strangers holding connections open are
// closed oldest first; an agency arriving after them still gets in.

// TestTLS_EvictSilentFirst: when the unauthenticated connections are full,
// a silent one is closed before one that has started its handshake.
func TestTLS_EvictSilentFirst(t *testing.T) {
	dir := testPKI(t, 1)
	srv := startTLSServer(t, central.Config{Agencies: 1, MaxConnections: 64, MaxUnauthenticated: 3}, dir, nil)
	talker := dialRaw(t, srv.addr)
	talker.write([]byte{0x16}) // the first byte of a ClientHello, then nothing
	waitFor(t, "the talker's first byte to be read", func() bool { return srv.c.Talking() == 1 })
	var silent []*raw
	for range 4 {
		silent = append(silent, dialRaw(t, srv.addr))
	}
	silent[0].expectClosed()
	silent[1].expectClosed()
	// The talker is older than every silent one, yet still open: an echo
	// would not do (it is mid-handshake), so check it was not closed by
	// reading with a short deadline.
	talker.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := talker.conn.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection that had started its handshake was closed: %v", err)
	}
}
func TestTLS_UnauthenticatedLimit(t *testing.T) {
	dir := testPKI(t, 1)
	srv := startTLSServer(t, central.Config{Agencies: 1, MaxConnections: 64, MaxUnauthenticated: 4}, dir, nil)
	var idle []*raw
	for range 10 {
		idle = append(idle, dialRaw(t, srv.addr))
	}
	for _, c := range idle[:6] {
		c.expectClosed()
	}
	// Evictions are logged at most once a second, with their count.
	if _, ok := testutil.FindOne(srv.log.Lines(t), "conexion", "fail"); !ok {
		t.Fatal("no eviction line")
	}
	a := dialAgency(t, srv.addr, dir, 1)
	a.hello(1)
	a.finish(1, 0)
	if got := a.winners(1); len(got) != 0 {
		t.Fatalf("winners %v", got)
	}
	for _, l := range testutil.Find(srv.log.Lines(t), "conexion", "fail") {
		if l.Get("reason") != "unauthenticated_limit" {
			t.Fatalf("unexpected line %s", l.Raw)
		}
	}
}

// TestTLS_DropRevoked: revoking a connected agency's certificate closes its
// connection.
func TestTLS_DropRevoked(t *testing.T) {
	dir := testPKI(t, 2)
	srv := startTLSServer(t, central.Config{Agencies: 2}, dir, nil)
	a1, a2 := dialAgency(t, srv.addr, dir, 1), dialAgency(t, srv.addr, dir, 2)
	a1.hello(1)
	a2.hello(2)
	cert, err := pki.ReadCertificate(filepath.Join(dir, pki.AgencyCertFile(1)))
	if err != nil {
		t.Fatal(err)
	}
	n := srv.c.DropRevoked(func(s *big.Int) bool { return s.Cmp(cert.SerialNumber) == 0 })
	if n != 1 {
		t.Fatalf("DropRevoked closed %d connections, want 1", n)
	}
	a1.expectClosed()
	a2.finish(2, 0) // agency 2 goes on
	if l, ok := testutil.FindOne(srv.log.Lines(t), "autenticar", "fail"); !ok || !strings.Contains(l.Raw, "revoked") {
		t.Fatalf("no revocation line: %v", l.Raw)
	}
}

// TestTLS_RefusedHelloTakesNobodysPlace: a peer with agency 2's certificate
// whose Hello names agency 1 is refused without closing agency 2's session.
func TestTLS_RefusedHelloTakesNobodysPlace(t *testing.T) {
	dir := testPKI(t, 2)
	srv := startTLSServer(t, central.Config{Agencies: 2}, dir, nil)
	agency2 := dialAgency(t, srv.addr, dir, 2)
	agency2.hello(2)
	intruder := dialAgency(t, srv.addr, dir, 2)
	intruder.send(protocol.Hello{Agency: 1})
	intruder.expectError(lottery.EWrongAgency)
	agency2.finish(2, 0) // still served
	if _, ok := testutil.FindOne(srv.log.Lines(t), "agencia_reemplazada", ""); ok {
		t.Fatal("the refused peer replaced the real session")
	}
}

// TestTLS_AgencyConnectionLimit: one agency cannot hold more than a few
// authenticated connections.
func TestTLS_AgencyConnectionLimit(t *testing.T) {
	dir := testPKI(t, 1)
	srv := startTLSServer(t, central.Config{Agencies: 1}, dir, nil)
	for range 4 {
		c := dialAgency(t, srv.addr, dir, 1)
		c.send(protocol.Echo{Data: []byte("x")}) // authenticated, no Hello
		c.recv()
	}
	extra := dialAgency(t, srv.addr, dir, 1)
	extra.conn.SetReadDeadline(time.Now().Add(waitShort))
	if _, err := extra.conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("a fifth connection of the agency was served")
	}
	waitFor(t, "the limit's log line", func() bool {
		l, ok := testutil.FindOne(srv.log.Lines(t), "autenticar", "fail")
		return ok && l.Get("reason") == "agency_connection_limit"
	})
}
