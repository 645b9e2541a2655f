package reliability

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"lottery"
	"lottery/csvrow"
	"lottery/gendata"
	"lottery/internal/testutil"
	"lottery/pki"
	"lottery/protocol"
	"lottery/storage"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBinaries()
	os.Exit(code)
}

// realWinners are the winners per agency of the real dataset (the README's e2e row).
var realWinners = []int{2, 3, 3, 2, 0}

// dataset is the agencies' input: files agency-N.csv in dir, the valid
// rows they hold (what bets.csv must hold at the end, once each) and the
// winners each agency must be told.
type dataset struct {
	dir      string
	real     bool
	agencies int
	rows     []lottery.Bet // valid rows of every agency, sorted
	winners  []int         // per agency, index agency-1
}

// loadDataset returns the real dataset when it is there, or generated
// files (perAgency bets each) otherwise.
func loadDataset(t *testing.T, perAgency int) dataset {
	t.Helper()
	d := dataset{agencies: testutil.DatasetAgencies}
	if dir, ok := testutil.Dataset(t); ok {
		d.dir, d.real = dir, true
	} else {
		d.dir = t.TempDir()
		for a := 1; a <= d.agencies; a++ {
			if _, err := gendata.WriteFile(d.dir, a, perAgency, a%4, 2024, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	d.winners = make([]int, d.agencies)
	for a := 1; a <= d.agencies; a++ {
		for _, b := range validRows(t, d.file(a), a) {
			d.rows = append(d.rows, b)
			if b.HasWon() {
				d.winners[a-1]++
			}
		}
	}
	sortBets(d.rows)
	if d.real && !slices.Equal(d.winners, realWinners) {
		t.Fatalf("the real dataset has winners %v, the README says %v", d.winners, realWinners)
	}
	t.Logf("dataset: %s (real %v), %d valid bets, winners %v", d.dir, d.real, len(d.rows), d.winners)
	return d
}

func (d dataset) file(agency int) string {
	return filepath.Join(d.dir, "agency-"+strconv.Itoa(agency)+".csv")
}

// validRows reads an agency file as the agency does and keeps the rows
// that pass the bet rules.
func validRows(t *testing.T, path string, agency int) []lottery.Bet {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csvrow.NewReader(f, 1<<20)
	today := time.Now()
	var bets []lottery.Bet
	for {
		fields, err := r.Read()
		if err == io.EOF {
			return bets
		}
		if err != nil && !errors.Is(err, csvrow.ErrQuote) {
			t.Fatalf("%s: %v", path, err)
		}
		if err != nil {
			continue
		}
		strs := make([]string, len(fields))
		for i, f := range fields {
			strs[i] = string(f)
		}
		if b, err := lottery.ParseBet(agency, strs, today); err == nil {
			bets = append(bets, b)
		}
	}
}

func sortBets(bets []lottery.Bet) { slices.SortFunc(bets, compareBets) }

// compareBets orders bets by agency, document and then every other field.
func compareBets(a, b lottery.Bet) int {
	return cmp.Or(cmp.Compare(a.Agency, b.Agency), strings.Compare(a.Document, b.Document),
		strings.Compare(a.FirstName, b.FirstName), strings.Compare(a.LastName, b.LastName),
		strings.Compare(a.Birthdate, b.Birthdate), cmp.Compare(a.Number, b.Number))
}

func betKey(b lottery.Bet) string {
	return fmt.Sprintf("%d\x00%s\x00%s\x00%s\x00%s\x00%d", b.Agency, b.Document, b.FirstName, b.LastName, b.Birthdate, b.Number)
}

// checkStored fails unless the bets file holds exactly want (sorted) of the
// given agencies, each row once: it reports the first rows missing or extra.
func checkStored(t *testing.T, path string, want []lottery.Bet) {
	t.Helper()
	got, err := storage.LoadBets(path)
	if err != nil {
		t.Fatalf("LoadBets(%s): %v", path, err)
	}
	sortBets(got)
	if slices.Equal(got, want) {
		return
	}
	var missing, extra []string
	i, j := 0, 0
	for (i < len(want) || j < len(got)) && len(missing)+len(extra) < 10 {
		switch {
		case j >= len(got) || i < len(want) && compareBets(want[i], got[j]) < 0:
			missing = append(missing, betKey(want[i]))
			i++
		case i >= len(want) || compareBets(got[j], want[i]) < 0:
			extra = append(extra, betKey(got[j]))
			j++
		default:
			i++
			j++
		}
	}
	t.Fatalf("bets file holds %d rows, want %d; first missing %q; first extra (or duplicated) %q", len(got), len(want), missing, extra)
}

// agencyEnv is the environment of agency a of the dataset.
func agencyEnv(d dataset, a int, addr string, extra map[string]string) map[string]string {
	env := map[string]string{
		"CLI_ID":             strconv.Itoa(a),
		"CLI_SERVER_ADDRESS": addr,
		"CLI_DATA_FILE":      d.file(a),
		"CLI_LOG_LEVEL":      "INFO",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// checkAgency fails unless the agency exited 0 and logged its winners.
func checkAgency(t *testing.T, p *testutil.Proc, a, winners int) {
	t.Helper()
	if code := p.ExitCode(); code != 0 {
		t.Errorf("agency %d exited %d, want 0:\n%s", a, code, tail(p.Output(), 30))
		return
	}
	l, ok := testutil.FindOne(p.Lines(), "consulta_ganadores", "success")
	if !ok {
		t.Errorf("agency %d: no consulta_ganadores success line:\n%s", a, tail(p.Output(), 30))
		return
	}
	if n, _ := l.Int("cant_ganadores"); n != winners || l.Get("client_id") != strconv.Itoa(a) {
		t.Errorf("agency %d: %s; want cant_ganadores %d", a, l.Raw, winners)
	}
}

// tail returns the last n lines of text.
func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// exchange sends frames in plain text on a new connection, half-closes it
// and returns every frame the central answered until it closed the
// connection. It gives up after timeout. Against a central with TLS (the
// default) a plain-text peer may only echo: exchangeTLS speaks as an agency.
func exchange(addr string, timeout time.Duration, out []byte) ([]protocol.Frame, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return exchangeOn(conn, timeout, out)
}

// exchangeTLS is exchange over TLS with the client configuration cfg
// (agencyTLS: an agency's certificate of the test PKI). The handshake is
// part of the exchange's time.
func exchangeTLS(addr string, cfg *tls.Config, timeout time.Duration, out []byte) ([]protocol.Frame, error) {
	conn, err := dialTLS(addr, cfg, timeout)
	if err != nil {
		return nil, err
	}
	return exchangeOn(conn, timeout, out)
}

// exchangeOn writes out on conn, half-closes it and reads every frame
// answered until the central closes; it closes conn.
func exchangeOn(conn net.Conn, timeout time.Duration, out []byte) ([]protocol.Frame, error) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(out); err != nil {
		// The central may close on the first bad frame before reading it all.
		if !errors.Is(err, net.ErrClosed) && !isReset(err) {
			return nil, err
		}
	}
	// Both *net.TCPConn and *tls.Conn (close_notify, then the TCP half-close).
	conn.(interface{ CloseWrite() error }).CloseWrite()
	return readFrames(conn)
}

// agencyTLS is the client TLS of agency id of the test PKI (testutil.PKI)
// for the central at addr, as bin/client builds it.
func agencyTLS(t testing.TB, id int, addr string) *tls.Config {
	t.Helper()
	dir := testutil.PKI(t, id)
	cfg, err := pki.ClientConfig(filepath.Join(dir, pki.AgencyCertFile(id)), filepath.Join(dir, pki.AgencyKeyFile(id)), filepath.Join(dir, pki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	return pki.ForServer(cfg, addr)
}

// dialTLS connects to addr and completes a TLS handshake within timeout.
// In TLS 1.3 the client's handshake ends before the central has checked
// the client's certificate: a refusal arrives as an alert at the first read.
func dialTLS(addr string, cfg *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, cfg)
}

// readFrames reads frames until EOF, copying each.
func readFrames(r io.Reader) ([]protocol.Frame, error) {
	pr := protocol.NewReader(r)
	var frames []protocol.Frame
	for {
		f, err := pr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || isReset(err) {
				return frames, nil
			}
			return frames, err
		}
		f.Payload = append([]byte(nil), f.Payload...)
		frames = append(frames, f)
	}
}

func isReset(err error) bool { return testutil.IsReset(err) }

// errorCodes returns the codes of the Error frames and of the BatchAck
// frames that refused a batch.
func errorCodes(frames []protocol.Frame) []lottery.Code {
	var codes []lottery.Code
	for _, f := range frames {
		switch m, _ := protocol.Decode(f); m := m.(type) {
		case protocol.Error:
			codes = append(codes, m.Code)
		case protocol.BatchAck:
			if m.Code != lottery.NoError {
				codes = append(codes, m.Code)
			}
		}
	}
	return codes
}

// restartablePort returns a free TCP port below the kernel's ephemeral range
// (32768 and up by default), for a central restarted many times on the same
// port: while it is down, no outgoing connection of this or another test
// can take the port as its local end and make the next bind fail.
func restartablePort(t *testing.T) int {
	t.Helper()
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	for range 100 {
		port := 20000 + rnd.IntN(12000)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			ln.Close()
			return port
		}
	}
	return testutil.FreePort(t)
}
