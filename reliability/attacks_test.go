package reliability

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"lottery"
	"lottery/gendata"
	"lottery/internal/testutil"
	"lottery/pki"
	"lottery/protocol"
)

// The attack tests run the built programs as a user would: every attack
// happens beside a real upload of the five agencies (the real dataset when
// it is there), and each ends with the same proof that it changed nothing
// it should not: the bets file holds exactly the real agencies' valid bets
// once each, every real agency exits 0 with its right winners, and the
// attacker was refused with the line the central logs for it.

// realRun is a central and the real agencies uploading to it.
type realRun struct {
	d        dataset
	server   *testutil.Proc
	betsPath string
	agencies map[int]*testutil.Proc
}

// startRealRun starts a central for the dataset's agencies, with env over
// quiet defaults, and the real agencies listed (none listed: all of them).
func startRealRun(t *testing.T, d dataset, env map[string]string, agencies ...int) *realRun {
	t.Helper()
	e := map[string]string{"AGENCIES": strconv.Itoa(d.agencies)}
	for k, v := range env {
		e[k] = v
	}
	server, betsPath := startCentral(t, e)
	r := &realRun{d: d, server: server, betsPath: betsPath, agencies: map[int]*testutil.Proc{}}
	if len(agencies) == 0 {
		for a := 1; a <= d.agencies; a++ {
			agencies = append(agencies, a)
		}
	}
	for _, a := range agencies {
		r.startAgency(t, a)
	}
	return r
}

func (r *realRun) startAgency(t *testing.T, a int) {
	t.Helper()
	r.agencies[a] = testutil.StartClient(t, "agency-"+strconv.Itoa(a), t.TempDir(), agencyEnv(r.d, a, r.server.Addr, nil))
}

// finish waits for the real agencies, checks that each exited 0 with its
// winners, stops the central and checks that the bets file holds exactly
// want (nil: the dataset's valid rows), once each.
func (r *realRun) finish(t *testing.T, want []lottery.Bet) {
	t.Helper()
	for a, p := range r.agencies {
		if _, err := p.WaitTimeout(2 * time.Minute); err != nil {
			t.Errorf("agency %d: %v", a, err)
		}
		checkAgency(t, p, a, r.d.winners[a-1])
	}
	stopCentral(t, r.server)
	if want == nil {
		want = r.d.rows
	}
	checkStored(t, r.betsPath, want)
}

// waitLine waits for the central's line with the action and result whose
// detail key has the value, and fails the test without it.
func waitLine(t *testing.T, p *testutil.Proc, action, result, key, value string) testutil.Line {
	t.Helper()
	var found testutil.Line
	if !p.WaitOutput(30*time.Second, func(out string) bool {
		for _, l := range testutil.Find(testutil.Lines(out), action, result) {
			if l.Get(key) == value {
				found = l
				return true
			}
		}
		return false
	}) {
		t.Errorf("%s logged no `action: %s | result: %s | … | %s: %s` line:\n%s", p.Name, action, result, key, value, tail(p.Output(), 10))
	}
	return found
}

// countLines counts the lines with the action and result whose detail key
// has the value.
func countLines(lines []testutil.Line, action, result, key, value string) int {
	n := 0
	for _, l := range testutil.Find(lines, action, result) {
		if l.Get(key) == value {
			n++
		}
	}
	return n
}

// writePair writes a certificate and its key into dir and returns their
// paths.
func writePair(t *testing.T, dir, name string, certPEM, keyPEM []byte) (cert, key string) {
	t.Helper()
	cert, key = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(cert, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// lotteryCA is the CA of the test PKI, which signed every real certificate.
func lotteryCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.LoadCA(testutil.PKI(t, testutil.DatasetAgencies))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issueAgency issues a certificate for agency n with the given validity
// and writes it and its key into dir.
func issueAgency(t *testing.T, ca *pki.CA, dir string, n int, notBefore, notAfter time.Time) (cert, key string) {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueAgency(n, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	return writePair(t, dir, "agency-"+strconv.Itoa(n)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36), certPEM, keyPEM)
}

// handshakeRefused dials addr with cfg, says Hello and reports how the
// central refused: the TLS alert the first read returns. In TLS 1.3 the
// client's half of the handshake ends before the central has judged the
// client's certificate, so its verdict arrives at that read. It fails the
// test if any protocol answer arrives instead.
func handshakeRefused(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	conn, err := dialTLS(addr, cfg, 30*time.Second)
	if err != nil {
		return err // refused before the client's half ended
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	conn.Write(testutil.Frame(t, protocol.Hello{Agency: 1}))
	f, err := protocol.NewReader(conn).Next()
	if err == nil {
		t.Errorf("the central answered %v: the connection was accepted", f.Type)
		return nil
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" {
		t.Errorf("read %v, want a TLS alert from the central", err)
	}
	return err
}

// TestAttack_Certificates: peers without an acceptable certificate of an
// agency are refused at the handshake, before they can say anything, with
// the reason logged; bin/client in their place gives up at once (a
// `conectar | result: fail` line and exit 1) instead of retrying, and the
// five real agencies upload beside them as if nothing happened.
func TestAttack_Certificates(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built programs")
	}
	d := loadDataset(t, 4000)
	pkiDir := testutil.PKI(t, d.agencies)
	ca := lotteryCA(t)
	now := time.Now()
	// The intruder's own bets: were it let in as agency 1, they would be
	// stored and the bets file would not be the real agencies' alone.
	intruderData, err := gendata.WriteFile(t.TempDir(), 1, 50, 3, 666, false)
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := pki.NewCA("Loteria Trucha CA", now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// The intruder is bin/client as agency 1 with its variables changed,
	// or else a Go TLS client (goClient changes agency 1's configuration).
	type setup struct {
		intruder map[string]string
		goClient func(*tls.Config)
		central  map[string]string
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) setup
		// The central's line for the refusal: action, result, then a detail.
		action, key, value string
		// wantError is in the intruder's conectar fail line.
		wantError string
	}{
		{
			name: "no certificate",
			setup: func(t *testing.T, dir string) setup {
				return setup{goClient: func(cfg *tls.Config) { cfg.Certificates = nil }}
			},
			action: "autenticar", key: "reason", value: pki.ReasonNoCertificate,
		},
		{
			// The central's certificate request names the CA it accepts,
			// and crypto/tls (so bin/client) sends no certificate that
			// another CA signed: the central sees none.
			name: "certificate of another CA",
			setup: func(t *testing.T, dir string) setup {
				cert, key := issueAgency(t, otherCA, dir, 1, now.Add(-time.Hour), now.Add(24*time.Hour))
				return setup{intruder: map[string]string{"CLI_TLS_CERT": cert, "CLI_TLS_KEY": key}}
			},
			action: "autenticar", key: "reason", value: pki.ReasonNoCertificate, wantError: "refused this agency's certificate",
		},
		{
			// A client that presents it anyway is told the CA is unknown.
			name: "certificate of another CA, presented anyway",
			setup: func(t *testing.T, dir string) setup {
				cert, key := issueAgency(t, otherCA, dir, 1, now.Add(-time.Hour), now.Add(24*time.Hour))
				pair, err := tls.LoadX509KeyPair(cert, key)
				if err != nil {
					t.Fatal(err)
				}
				return setup{goClient: func(cfg *tls.Config) {
					cfg.Certificates = nil
					cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
				}}
			},
			action: "autenticar", key: "reason", value: pki.ReasonUnknownCA,
		},
		{
			name: "expired certificate",
			setup: func(t *testing.T, dir string) setup {
				cert, key := issueAgency(t, ca, dir, 1, now.Add(-72*time.Hour), now.Add(-24*time.Hour))
				return setup{intruder: map[string]string{"CLI_TLS_CERT": cert, "CLI_TLS_KEY": key}}
			},
			action: "autenticar", key: "reason", value: pki.ReasonExpired, wantError: "refused this agency's certificate",
		},
		{
			name: "revoked certificate",
			setup: func(t *testing.T, dir string) setup {
				cert, key := issueAgency(t, ca, dir, 1, now.Add(-time.Hour), now.Add(24*time.Hour))
				c, err := pki.ReadCertificate(cert)
				if err != nil {
					t.Fatal(err)
				}
				crl := filepath.Join(dir, pki.RevocationFile)
				if err := pki.Revoke(crl, c); err != nil {
					t.Fatal(err)
				}
				return setup{intruder: map[string]string{"CLI_TLS_CERT": cert, "CLI_TLS_KEY": key}, central: map[string]string{"TLS_CRL": crl}}
			},
			action: "autenticar", key: "reason", value: pki.ReasonRevoked, wantError: "refused this agency's certificate",
		},
		{
			// Signed by the lottery's CA, and valid for a client, but
			// naming a central, not an agency.
			name: "the central's own certificate",
			setup: func(t *testing.T, dir string) setup {
				return setup{intruder: map[string]string{
					"CLI_TLS_CERT": filepath.Join(pkiDir, pki.CentralCertFile), "CLI_TLS_KEY": filepath.Join(pkiDir, pki.CentralKeyFile),
				}}
			},
			action: "autenticar", key: "reason", value: pki.ReasonNotAnAgency, wantError: "refused this agency's certificate",
		},
		{
			// CLI_TLS=off: the Hello goes in plain text, and is refused.
			name:   "agency without TLS",
			setup:  func(t *testing.T, dir string) setup { return setup{intruder: map[string]string{"CLI_TLS": "off"}} },
			action: "recibir_mensaje", key: "code", value: lottery.ETLSRequired.String(), wantError: lottery.ETLSRequired.String(),
		},
		{
			// The other way round: an agency that does not trust the
			// central (its CA file is another CA's) hangs up on it.
			name: "agency that does not trust the central",
			setup: func(t *testing.T, dir string) setup {
				other, err := pki.NewCA("Otra CA", now.Add(-time.Hour), now.Add(24*time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				caFile := filepath.Join(dir, "other-ca.crt")
				if err := os.WriteFile(caFile, other.CertPEM(), 0o644); err != nil {
					t.Fatal(err)
				}
				return setup{intruder: map[string]string{"CLI_TLS_CA": caFile}}
			},
			action: "autenticar", key: "reason", value: pki.ReasonProtocol, wantError: "cannot be trusted",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.setup(t, t.TempDir())
			r := startRealRun(t, d, s.central)
			if s.goClient != nil {
				cfg := agencyTLS(t, 1, r.server.Addr)
				s.goClient(cfg)
				err := handshakeRefused(t, r.server.Addr, cfg)
				t.Logf("the intruder read: %v", err)
			} else {
				env := map[string]string{
					"CLI_ID": "1", "CLI_SERVER_ADDRESS": r.server.Addr, "CLI_DATA_FILE": intruderData,
					"CLI_TLS_CERT": filepath.Join(pkiDir, pki.AgencyCertFile(1)), "CLI_TLS_KEY": filepath.Join(pkiDir, pki.AgencyKeyFile(1)),
					"CLI_TLS_CA":            filepath.Join(pkiDir, pki.CAFile),
					"CLI_RECONNECT_INITIAL": "20ms", "CLI_RECONNECT_MAX": "100ms",
				}
				for k, v := range s.intruder {
					env[k] = v
				}
				intruder := testutil.RunClient(t, "intruder", t.TempDir(), env, time.Minute)
				if code := intruder.ExitCode(); code != 1 {
					t.Errorf("the intruder exited %d, want 1:\n%s", code, tail(intruder.Output(), 10))
				}
				l, ok := testutil.FindOne(intruder.Lines(), "conectar", "fail")
				if !ok || !strings.Contains(l.Get("error"), tt.wantError) {
					t.Errorf("the intruder's conectar fail line is %q, want one whose error says %q:\n%s", l.Raw, tt.wantError, tail(intruder.Output(), 10))
				}
				if n := len(testutil.Find(intruder.Lines(), "conectar", "in_progress")); n > 0 {
					t.Errorf("the intruder retried %d times: a refusal must be final", n)
				}
			}
			got := waitLine(t, r.server, tt.action, "fail", tt.key, tt.value)
			t.Logf("the central: %s", got.Raw)
			r.finish(t, nil)
		})
	}
}

// TestAttack_RevokedWhileConnected: a certificate the central accepted is
// revoked while its connection is open: the operator adds it to TLS_CRL
// and sends SIGHUP. Without a restart, the central rereads the list
// (`recargar_crl | result: success | … | revocados: 1 |
// conexiones_cerradas: 1`), closes that connection (and no other: the five
// real agencies go on uploading), and refuses the certificate at its next
// handshake (`reason: revoked`). The certificate names agency 6, which a
// five-agency central does not wait for: whoever stole it may connect and
// echo, nothing more, and the real agencies are not disturbed by it.
func TestAttack_RevokedWhileConnected(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built programs")
	}
	d := loadDataset(t, 4000)
	dir := t.TempDir()
	crl := filepath.Join(dir, pki.RevocationFile)
	testutil.WriteFile(t, crl, "# nothing revoked yet\n")
	cert, key := issueAgency(t, lotteryCA(t), dir, d.agencies+1, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	r := startRealRun(t, d, map[string]string{"TLS_CRL": crl})

	cfg, err := pki.ClientConfig(cert, key, filepath.Join(testutil.PKI(t, d.agencies), pki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg = pki.ForServer(cfg, r.server.Addr)
	conn, err := dialTLS(r.server.Addr, cfg, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	ping := testutil.Frame(t, protocol.Echo{Data: []byte("accepted?")})
	conn.Write(ping)
	got := make([]byte, len(ping))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, ping) {
		t.Fatalf("before the revocation the central answered %q (%v), want the echo", got, err)
	}

	c, err := pki.ReadCertificate(cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.Revoke(crl, c); err != nil {
		t.Fatal(err)
	}
	if err := r.server.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reload := waitLine(t, r.server, "recargar_crl", "success", "revocados", "1")
	if reload.Get("conexiones_cerradas") != "1" {
		t.Errorf("reload line %q, want conexiones_cerradas: 1 (the revoked one, and no real agency)", reload.Raw)
	}
	// The open connection is closed: nothing more to read.
	if rest, err := io.ReadAll(conn); len(rest) > 0 || err != nil && !isReset(err) {
		t.Errorf("after the revocation the connection read %q (%v), want it closed", rest, err)
	}
	dropped := waitLine(t, r.server, "autenticar", "fail", "reason", pki.ReasonRevoked)
	if dropped.Get("agency") != strconv.Itoa(d.agencies+1) {
		t.Errorf("line %q, want the revoked connection's agency %d", dropped.Raw, d.agencies+1)
	}
	// And the certificate is refused from now on.
	t.Logf("the next handshake read: %v", handshakeRefused(t, r.server.Addr, cfg))
	if !r.server.WaitOutput(30*time.Second, func(out string) bool {
		return countLines(testutil.Lines(out), "autenticar", "fail", "reason", pki.ReasonRevoked) >= 2
	}) {
		t.Errorf("the handshake after the revocation was not refused `reason: revoked`:\n%s", tail(r.server.Output(), 10))
	}
	r.finish(t, nil)
	if n := len(testutil.Find(r.server.Lines(), "recuperar", "")); n != 1 {
		t.Errorf("the central started %d times, want once", n)
	}
}

// TestAttack_WrongAgency: agency 2's certificate (a dishonest agency, or
// its stolen key) cannot act as agency 1: a Hello, a batch, a Finished and
// a winners query each naming agency 1 are refused `wrong_agency`, nothing
// is stored, and agency 1's upload, meanwhile, is unaffected.
//
// The real agency 2 starts after the attack: one session per agency, so
// running it meanwhile would have it take back agency 2's session from the
// attacker between two of its frames, and which answers the attacker reads
// would depend on timing (that takeover is TestAttack_SameCertificate's).
func TestAttack_WrongAgency(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built programs")
	}
	d := loadDataset(t, 4000)
	r := startRealRun(t, d, nil, 1, 3, 4, 5)
	addr := r.server.Addr
	as2 := agencyTLS(t, 2, addr)
	hello2 := testutil.Frame(t, protocol.Hello{Agency: 2})
	var bets []lottery.Bet
	for _, b := range d.rows[:3] { // agency 1's first bets (rows are sorted by agency)
		b.Number = lottery.WinningNumber
		bets = append(bets, b)
	}
	tests := []struct {
		name string
		send []byte
		want []string // what the central answers, in order
		// The central's fail line: its action (code: wrong_agency).
		action string
	}{
		{"hello as agency 1", testutil.Frame(t, protocol.Hello{Agency: 1}), []string{"error wrong_agency"}, "recibir_mensaje"},
		{"batch of agency 1", cat(hello2, testutil.BatchFrame(t, 1, 1, bets...)), []string{"welcome", "ack 1 wrong_agency"}, "apuesta_recibida"},
		{"finished as agency 1", cat(hello2, testutil.Frame(t, protocol.Finished{Agency: 1})), []string{"welcome", "error wrong_agency"}, "recibir_mensaje"},
		{"winners of agency 1", cat(hello2, testutil.Frame(t, protocol.WinnersQuery{Agency: 1})), []string{"welcome", "error wrong_agency"}, "recibir_mensaje"},
	}
	for _, tt := range tests {
		lines := r.server.Lines()
		before := countLines(lines, tt.action, "fail", "code", lottery.EWrongAgency.String())
		frames, err := exchangeTLS(addr, as2, 30*time.Second, tt.send)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := describe(frames); !slices.Equal(got, tt.want) {
			t.Errorf("%s: the central answered %q, want %q", tt.name, got, tt.want)
		}
		if !r.server.WaitOutput(30*time.Second, func(out string) bool {
			return countLines(testutil.Lines(out), tt.action, "fail", "code", lottery.EWrongAgency.String()) > before
		}) {
			t.Errorf("%s: no `%s | result: fail | … | code: wrong_agency` line:\n%s", tt.name, tt.action, tail(r.server.Output(), 10))
		}
	}
	r.startAgency(t, 2)
	r.finish(t, nil)
}

// describe names frames for comparison: "welcome", "ack 1 ok",
// "error wrong_agency"…
func describe(frames []protocol.Frame) []string {
	var out []string
	for _, f := range frames {
		switch m, _ := protocol.Decode(f); m := m.(type) {
		case protocol.BatchAck:
			out = append(out, fmt.Sprintf("ack %d %v", m.Seq, m.Code))
		case protocol.Error:
			out = append(out, "error "+m.Code.String())
		default:
			out = append(out, f.Type.String())
		}
	}
	return out
}

// TestAttack_PlainText: a peer that does not speak TLS is a stranger: any
// agency frame (a Hello, a batch, a winners query) gets `tls_required` and
// the connection closed, while an echo (the health check) is still
// answered byte for byte.
func TestAttack_PlainText(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built programs")
	}
	d := loadDataset(t, 4000)
	r := startRealRun(t, d, nil)
	addr := r.server.Addr
	tests := []struct {
		name string
		send []byte
	}{
		{"hello", testutil.Frame(t, protocol.Hello{Agency: 1})},
		{"batch", testutil.BatchFrame(t, 1, 1, goodBet)},
		{"winners query", testutil.Frame(t, protocol.WinnersQuery{Agency: 1})},
	}
	for _, tt := range tests {
		before := countLines(r.server.Lines(), "recibir_mensaje", "fail", "code", lottery.ETLSRequired.String())
		frames, err := exchange(addr, 30*time.Second, tt.send)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := describe(frames); !slices.Equal(got, []string{"error tls_required"}) {
			t.Errorf("%s in plain text: the central answered %q, want an error tls_required and the connection closed", tt.name, got)
		}
		if !r.server.WaitOutput(30*time.Second, func(out string) bool {
			return countLines(testutil.Lines(out), "recibir_mensaje", "fail", "code", lottery.ETLSRequired.String()) > before
		}) {
			t.Errorf("%s: no `recibir_mensaje | result: fail | … | code: tls_required` line", tt.name)
		}
	}
	// The echo: every byte value, answered exactly.
	data := make([]byte, 256)
	for i := range data {
		data[i] = byte(i)
	}
	echo := testutil.Frame(t, protocol.Echo{Data: data})
	conn, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(echo); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(conn); err != nil || !bytes.Equal(got, echo) {
		t.Errorf("a plain-text echo got back %q (%v), want the same %d bytes", got, err, len(echo))
	}
	waitLine(t, r.server, "receive_message", "success", "ip", "127.0.0.1")
	r.finish(t, nil)
}

// TestAttack_SameCertificate: two processes hold agency 1's certificate
// (a copied key, or the same agency started twice) and upload different
// files at once, while agencies 2…5 upload normally.
//
// What must happen: the central keeps one session per agency (each newer
// connection takes over and the older one reconnects), and each batch
// number of agency 1 is stored once, with the bets of whichever process's
// batch reached the central first. The other process's batch of that
// number is refused `conflict` (the same number with other bets, never a
// silent duplicate): both processes log it (`apuesta_enviada | result:
// fail | … | code: conflict`) and the central too (`apuesta_recibida |
// result: fail | … | code: conflict`). So nothing acknowledged to either
// is lost or overwritten: bets.csv holds, for agency 1, exactly the batches
// acknowledged to one or the other, once each. Both files have the same
// number of batches, so both end with the same Finished, which is accepted
// (the second as a repeat); a process that had any batch refused exits 1
// (every batch was answered, but not all its bets are stored), one with
// none exits 0; at least one of them loses a batch, since both send batch
// 1. The draw then counts agency 1's stored bets, and whoever asks gets
// those winners.
func TestAttack_SameCertificate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built programs")
	}
	d := loadDataset(t, 4000)
	// Small batches, paced so that the two uploads overlap and the
	// takeovers happen mid-upload; the second twin goes faster, so that
	// it overtakes the first and each stores some of the batch numbers.
	const bets, batchSize = 3000, 20
	var files [2]string
	for i := range files {
		dir := filepath.Join(t.TempDir(), strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if files[i], err = gendata.WriteFile(dir, 1, bets, 2+i, uint64(1000+i), false); err != nil {
			t.Fatal(err)
		}
	}
	r := startRealRun(t, d, nil, 2, 3, 4, 5)
	var twins [2]*testutil.Proc
	for i := range twins {
		twins[i] = testutil.StartClient(t, "agency-1-"+string(rune('a'+i)), t.TempDir(), map[string]string{
			"CLI_ID": "1", "CLI_SERVER_ADDRESS": r.server.Addr, "CLI_DATA_FILE": files[i], "CLI_LOG_LEVEL": "DEBUG",
			"CLI_BATCH_MAXAMOUNT": strconv.Itoa(batchSize), "CLI_LOOP_PERIOD": []string{"3ms", "1ms"}[i],
			"CLI_RECONNECT_INITIAL": "20ms", "CLI_RECONNECT_MAX": "200ms",
		})
	}
	for _, p := range twins {
		p.Wait(t, 2*time.Minute)
	}

	// What each twin was told about each of its batches.
	type outcome struct {
		rows  []lottery.Bet
		acked bool
		code  string
	}
	var told [2]map[uint64]outcome
	var stored1 []lottery.Bet // agency 1's bets acked to either twin
	ackedBy := map[uint64][]int{}
	refused := 0
	for i, p := range twins {
		rows := validRows(t, files[i], 1)
		told[i] = map[uint64]outcome{}
		lines := p.Lines()
		for _, l := range testutil.Find(lines, "batch_enviado", "success") {
			seq, _ := strconv.ParseUint(l.Get("batch"), 10, 64)
			n, _ := l.Int("cantidad")
			told[i][seq] = outcome{rows: make([]lottery.Bet, n), acked: true}
		}
		for _, l := range testutil.Find(lines, "apuesta_enviada", "fail") {
			seq, _ := strconv.ParseUint(l.Get("batch"), 10, 64)
			n, _ := l.Int("cantidad")
			if _, dup := told[i][seq]; dup || seq == 0 {
				t.Errorf("%s: batch %d answered twice, or a refusal without a batch: %s", p.Name, seq, l.Raw)
			}
			told[i][seq] = outcome{rows: make([]lottery.Bet, n), code: l.Get("code")}
		}
		// Batch k holds the rows after those of batches 1…k-1.
		next, twinRefused := 0, 0
		for seq := uint64(1); seq <= uint64(len(told[i])); seq++ {
			o, ok := told[i][seq]
			if !ok || next+len(o.rows) > len(rows) {
				t.Fatalf("%s: batches answered are not 1…%d covering its %d rows (batch %d)", p.Name, len(told[i]), len(rows), seq)
			}
			copy(o.rows, rows[next:])
			next += len(o.rows)
			if o.acked {
				stored1 = append(stored1, o.rows...)
				ackedBy[seq] = append(ackedBy[seq], i)
			} else {
				twinRefused++
				if o.code != lottery.EConflict.String() {
					t.Errorf("%s: batch %d refused %q, want conflict", p.Name, seq, o.code)
				}
			}
		}
		if next != len(rows) {
			t.Errorf("%s: its answered batches hold %d of its %d rows", p.Name, next, len(rows))
		}
		wantExit := 0
		if twinRefused > 0 {
			wantExit = 1
		}
		if code := p.ExitCode(); code != wantExit {
			t.Errorf("%s: %d batches refused, exited %d, want %d:\n%s", p.Name, twinRefused, code, wantExit, tail(p.Output(), 10))
		}
		t.Logf("%s: %d batches acked, %d refused (conflict), exit %d; %d reconnections", p.Name,
			len(told[i])-twinRefused, twinRefused, p.ExitCode(), len(testutil.Find(lines, "conexion_perdida", "")))
		refused += twinRefused
	}
	if len(told[0]) != len(told[1]) {
		t.Errorf("the twins have %d and %d batches, want the same number", len(told[0]), len(told[1]))
	}
	for seq := uint64(1); seq <= uint64(len(told[0])); seq++ {
		if by := ackedBy[seq]; len(by) != 1 {
			t.Errorf("batch %d of agency 1 acked to %d twins (%v), want exactly one", seq, len(by), by)
		}
	}
	if refused == 0 {
		t.Error("no batch was refused: both twins cannot have stored their batch 1")
	}
	lines := r.server.Lines()
	if n := countLines(lines, "apuesta_recibida", "fail", "code", lottery.EConflict.String()); n < refused {
		t.Errorf("the central logged %d conflicts, the twins were told of %d", n, refused)
	}
	t.Logf("the central: %d takeovers (agencia_reemplazada), %d conflict lines",
		len(testutil.Find(lines, "agencia_reemplazada", "")), countLines(lines, "apuesta_recibida", "fail", "code", lottery.EConflict.String()))

	// The draw counted what is stored, and whoever asked was told that.
	winners := 0
	for _, b := range stored1 {
		if b.HasWon() {
			winners++
		}
	}
	for _, p := range twins {
		if l, ok := testutil.FindOne(p.Lines(), "consulta_ganadores", "success"); ok {
			if n, _ := l.Int("cant_ganadores"); n != winners {
				t.Errorf("%s: %s; agency 1 has %d winners stored", p.Name, l.Raw, winners)
			}
		}
	}
	for _, l := range testutil.Find(lines, "ganadores_enviados", "success") {
		if l.Get("agency") == "1" && l.Get("cant_ganadores") != strconv.Itoa(winners) {
			t.Errorf("the central: %s; agency 1 has %d winners stored", l.Raw, winners)
		}
	}
	want := append(slices.Clone(stored1), slices.DeleteFunc(slices.Clone(d.rows), func(b lottery.Bet) bool { return b.Agency == 1 })...)
	sortBets(want)
	r.finish(t, want)
}

// TestSecurity_TLSSettings: secure by default. Without TLS material both
// programs refuse to start (exit 2, one `action: config | result: fail`
// line); switched off explicitly (TLS=off, CLI_TLS=off) they run, and say
// at every start, with a WARNING `action: tls` line, that the lottery is
// open.
func TestSecurity_TLSSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built programs")
	}
	bin := testutil.Binaries(t)
	t.Run("no TLS material", func(t *testing.T) {
		tests := []struct {
			name string
			prog string
			env  map[string]string
		}{
			// The default paths (./.pki/…) do not exist in an empty directory.
			{"central", testutil.ServerBin, map[string]string{"SERVER_PORT": strconv.Itoa(testutil.FreePort(t))}},
			{"central with a missing TLS_CRL", testutil.ServerBin, withEnv(testutil.ServerTLSEnv(t), "SERVER_PORT", strconv.Itoa(testutil.FreePort(t)), "TLS_CRL", "/nonexistent/crl.txt")},
			{"agency", testutil.ClientBin, map[string]string{"CLI_ID": "1", "CLI_SERVER_ADDRESS": "127.0.0.1:1"}},
			{"agency with a missing key", testutil.ClientBin, withEnv(testutil.ClientTLSEnv(t, 1), "CLI_ID", "1", "CLI_SERVER_ADDRESS", "127.0.0.1:1", "CLI_TLS_KEY", "/nonexistent/agency-1.key")},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				dir := t.TempDir()
				p := testutil.Start(t, tt.name, filepath.Join(bin, tt.prog), dir, withEnv(tt.env, "STORAGE_FILEPATH", filepath.Join(dir, "bets.csv")))
				if code := p.Wait(t, testutil.ExitTimeout); code != 2 {
					t.Errorf("exit code %d, want 2:\n%s", code, p.Output())
				}
				lines := p.Lines()
				if len(lines) != 1 || lines[0].Action != "config" || lines[0].Result != "fail" {
					t.Errorf("want exactly one line, `action: config | result: fail`; got:\n%s", p.Output())
				}
				if _, err := os.Stat(filepath.Join(dir, "bets.csv")); err == nil {
					t.Error("the central created its bets file: it started")
				}
			})
		}
	})
	t.Run("TLS off warns at every start", func(t *testing.T) {
		dir := t.TempDir()
		env := map[string]string{"TLS": "off", "AGENCIES": "1", "STORAGE_FILEPATH": filepath.Join(dir, "bets.csv")}
		data, err := gendata.WriteFile(t.TempDir(), 1, 100, 1, 5, false)
		if err != nil {
			t.Fatal(err)
		}
		for start := 1; start <= 2; start++ {
			server := testutil.StartServer(t, dir, env)
			checkWarning(t, server, "the central")
			// The second agency run uploads the same file again: every
			// batch a duplicate, the same winner.
			agency := testutil.RunClient(t, "agency", t.TempDir(), map[string]string{
				"CLI_ID": "1", "CLI_TLS": "off", "CLI_SERVER_ADDRESS": server.Addr, "CLI_DATA_FILE": data,
			}, time.Minute)
			checkAgency(t, agency, 1, 1)
			checkWarning(t, agency, "the agency")
			stopCentral(t, server)
		}
	})
}

func withEnv(env map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// checkWarning fails unless p logged, once, a WARNING `action: tls` line
// saying TLS is off, right after its config line.
func checkWarning(t *testing.T, p *testutil.Proc, who string) {
	t.Helper()
	if !p.WaitCount(30*time.Second, 1, "tls", "") {
		t.Errorf("%s logged no `action: tls` line:\n%s", who, tail(p.Output(), 10))
		return
	}
	lines := p.Lines()
	l, ok := testutil.FindOne(lines, "tls", "")
	if !ok || l.Level != "WARNING" || l.Get("tls") != "off" {
		t.Errorf("%s: want one WARNING `action: tls | … | tls: off` line; got %q", who, l.Raw)
	}
	if len(lines) < 2 || lines[0].Action != "config" || lines[1].Action != "tls" {
		t.Errorf("%s: the tls warning is not right after the config line", who)
	}
}
