package central_test

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"lottery"
	"lottery/agency"
	"lottery/central"
	"lottery/internal/testutil"
	"lottery/metrics"
	"lottery/pki"
	"lottery/protocol"
)

// The metrics are checked as Prometheus reads them (the registry the
// admin listener exposes), after runs whose every count is known: real
// agencies over TLS, then hostile frames and connections one at a time.

// instruments returns a central's instruments for agencies and the
// registry /metrics would expose.
func instruments(agencies int) (*metrics.Lottery, *prometheus.Registry) {
	m := metrics.New(agencies)
	return m, metrics.NewRegistry(m)
}

// value reads one series, failing the test when it does not exist.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	v, ok := testutil.Scrape(t, reg).Value(name, labels...)
	if !ok {
		t.Fatalf("no series %s%v; the scrape has %v", name, labels, testutil.Scrape(t, reg).Series(name))
	}
	return v
}

// waitValue waits until a series has the value: the central counts a
// connection's end in its own goroutine, after the peer saw it.
func waitValue(t *testing.T, reg prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s%v = %v", name, labels, want), func() bool {
		v, _ := testutil.Scrape(t, reg).Value(name, labels...)
		return v == want
	})
}

// uploadFiles is the upload a run measures: the course's real dataset when
// it is there, else generated files of the same shape.
func uploadFiles(t *testing.T) (files []string) {
	t.Helper()
	if dir, ok := testutil.Dataset(t); ok {
		for a := 1; a <= testutil.DatasetAgencies; a++ {
			files = append(files, filepath.Join(dir, "agency-"+strconv.Itoa(a)+".csv"))
		}
		return files
	}
	d := genData(t, testutil.DatasetAgencies, 2000, realWinners)
	for a := 1; a <= testutil.DatasetAgencies; a++ {
		files = append(files, d.file(a))
	}
	return files
}

// TestMetrics_Upload: after real agencies upload a dataset over TLS, finish
// and get their winners, every metric says what happened: bets stored per
// agency are the rows of the bets file (the dataset's valid rows), batches
// are the agencies' acked batches, every agency finished, the draw's
// winners per agency are those the agencies received, and nothing is left
// open, in flight or refused.
func TestMetrics_Upload(t *testing.T) {
	files := uploadFiles(t)
	n := len(files)
	dir := testPKI(t, n)
	m, reg := instruments(n)
	srv := startTLSServer(t, central.Config{Agencies: n, Metrics: m}, dir, nil)
	var runs []*run
	for i, f := range files {
		cc, err := pki.ClientConfig(filepath.Join(dir, pki.AgencyCertFile(i+1)), filepath.Join(dir, pki.AgencyKeyFile(i+1)), filepath.Join(dir, pki.CAFile))
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, startAgency(t, t.Context(), agency.Config{ID: i + 1, ServerAddress: srv.addr, DataFile: f, TLS: cc}))
	}
	results := make([]agency.Result, n)
	var batches int
	for i, r := range runs {
		res, err := r.wait(t)
		if err != nil {
			t.Fatalf("agency %d: %v", i+1, err)
		}
		results[i] = res
		batches += res.Batches
	}
	srv.stop() // every session ended: nothing is open any more
	stored, total := storedByAgency(t, srv.path)

	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"lottery_agencies", nil, float64(n)},
		{"lottery_agencies_finished", nil, float64(n)},
		{"lottery_agencies_connected", nil, 0},
		{"lottery_connections_open", nil, 0},
		{"lottery_inflight_bytes", nil, 0},
		{"lottery_inflight_limit_bytes", nil, central.DefaultMaxInFlightBytes},
		{"lottery_batch_ack_seconds", nil, float64(batches)},
	}
	for a := 1; a <= n; a++ {
		label := strconv.Itoa(a)
		res := results[a-1]
		checks = append(checks, []struct {
			name   string
			labels []string
			want   float64
		}{
			{"lottery_bets_stored_total", []string{"agency", label}, float64(len(stored[a]))},
			{"lottery_bets_stored_total", []string{"agency", label}, float64(res.Sent)},
			{"lottery_batches_total", []string{"agency", label, "result", metrics.ResultStored}, float64(res.Batches)},
			{"lottery_batches_total", []string{"agency", label, "result", metrics.ResultDuplicate}, 0},
			{"lottery_winners", []string{"agency", label}, float64(len(res.Winners))},
		}...)
	}
	for _, c := range checks {
		t.Run(c.name+fmt.Sprint(c.labels), func(t *testing.T) {
			if got := value(t, reg, c.name, c.labels...); got != c.want {
				t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		})
	}
	scrape := testutil.Scrape(t, reg)
	if got := scrape.Sum("lottery_bets_stored_total"); got != float64(total) {
		t.Errorf("bets stored in all %v, the bets file has %d rows", got, total)
	}
	for _, name := range []string{"lottery_connections_refused_total", "lottery_handshakes_failed_total"} {
		if got := scrape.Sum(name); got != 0 {
			t.Errorf("%s = %v over %v, want 0", name, got, scrape.Series(name))
		}
	}
	if _, ok := scrape.Value("lottery_batches_total", "agency", "0"); ok {
		t.Error("agency 0 has series after a run of real agencies only")
	}
	if drawn, _ := scrape.Value("lottery_draw_completed_timestamp_seconds"); drawn <= 0 {
		t.Errorf("draw timestamp %v after the draw", drawn)
	}
}

// TestMetrics_Refusals: hostile and broken batches on one agency's TLS
// connection are counted under their codes, besides the one stored and
// the one resent; the agency is connected while its session is open.
func TestMetrics_Refusals(t *testing.T) {
	dir := testPKI(t, 2)
	m, reg := instruments(2)
	srv := startTLSServer(t, central.Config{Agencies: 2, Metrics: m}, dir, nil)
	bet := lottery.Bet{Agency: 1, FirstName: "Ana", LastName: "Paz", Document: "30904465", Birthdate: "1990-01-01", Number: 7574}
	other := bet
	other.Document = "30904466"
	invalid := bet
	invalid.Document = "not digits"

	c := dialAgency(t, srv.addr, dir, 1)
	c.hello(1)
	if got := value(t, reg, "lottery_agencies_connected"); got != 1 {
		t.Errorf("agencies connected = %v with agency 1's session open, want 1", got)
	}
	steps := []struct {
		name   string
		agency uint32
		seq    uint64
		bets   []lottery.Bet
		code   lottery.Code
	}{
		{"stored", 1, 1, []lottery.Bet{bet}, lottery.NoError},
		{"resent", 1, 1, []lottery.Bet{bet}, lottery.NoError},
		{"conflict", 1, 1, []lottery.Bet{other}, lottery.EConflict},
		{"gap", 1, 3, []lottery.Bet{bet}, lottery.ESequence},
		{"invalid bet", 1, 2, []lottery.Bet{invalid}, lottery.EInvalidBet},
		{"another agency's", 2, 3, []lottery.Bet{bet}, lottery.EWrongAgency},
	}
	for _, s := range steps {
		c.write(testutil.BatchFrame(t, s.agency, s.seq, s.bets...))
		if ack, ok := c.recv().(protocol.BatchAck); !ok || ack.Code != s.code {
			t.Fatalf("%s: ack %+v, want code %s", s.name, ack, s.code)
		}
	}
	// A batch that does not decode ends the connection.
	c.write([]byte{protocol.Version, byte(protocol.TypeBatch), 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4, 0, 9, 0, 0})
	c.expectError(lottery.EMalformed)
	c.expectClosed()
	// A batch before the Hello, on a connection of agency 2.
	d := dialAgency(t, srv.addr, dir, 2)
	d.write(testutil.BatchFrame(t, 2, 1, bet))
	d.expectError(lottery.ENotIdentified)
	d.expectClosed()
	waitValue(t, reg, 0, "lottery_agencies_connected")
	waitValue(t, reg, 0, "lottery_connections_open")

	want := []struct {
		agency, result string
		n              float64
	}{
		{"1", metrics.ResultStored, 1},
		{"1", metrics.ResultDuplicate, 1},
		{"1", "conflict", 1},
		{"1", "bad_sequence", 1},
		{"1", "invalid_bet", 1},
		{"1", "wrong_agency", 1},
		{"1", "malformed", 1},
		{"2", "not_identified", 1},
		{"2", metrics.ResultStored, 0},
	}
	for _, w := range want {
		if got := value(t, reg, "lottery_batches_total", "agency", w.agency, "result", w.result); got != w.n {
			t.Errorf("batches of agency %s %s = %v, want %v", w.agency, w.result, got, w.n)
		}
	}
	if got := value(t, reg, "lottery_bets_stored_total", "agency", "1"); got != 1 {
		t.Errorf("bets stored by agency 1 = %v, want 1 (the resent batch is not stored again)", got)
	}
	// Refused batches with an ack are timed like stored ones; the
	// wrong_agency ack and the refusals that close the connection are not.
	if got := value(t, reg, "lottery_batch_ack_seconds"); got != 5 {
		t.Errorf("ack latencies observed %v, want 5", got)
	}
}

// TestMetrics_ConnectionsRefused: each way the central turns a connection
// away before serving it is counted under its reason.
func TestMetrics_ConnectionsRefused(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		run    func(t *testing.T, m *metrics.Lottery)
	}{
		{metrics.ReasonTooManyConnections, metrics.ReasonTooManyConnections, func(t *testing.T, m *metrics.Lottery) {
			srv := startServer(t, central.Config{Agencies: 1, MaxConnections: 1, Metrics: m}, filepath.Join(t.TempDir(), "bets.csv"))
			first := dialRaw(t, srv.addr)
			first.hello(1)
			second := dialRaw(t, srv.addr)
			second.expectError(lottery.ETooManyConns)
		}},
		{metrics.ReasonUnauthenticatedLimit, metrics.ReasonUnauthenticatedLimit, func(t *testing.T, m *metrics.Lottery) {
			dir := testPKI(t, 1)
			srv := startTLSServer(t, central.Config{Agencies: 1, MaxConnections: 8, MaxUnauthenticated: 1, Metrics: m}, dir, nil)
			oldest := dialRaw(t, srv.addr)
			waitFor(t, "the first connection counted", func() bool { return m.Snapshot(1, 1).Connections == 1 })
			dialRaw(t, srv.addr)
			oldest.expectClosed()
		}},
		{metrics.ReasonAgencyConnectionLimit, metrics.ReasonAgencyConnectionLimit, func(t *testing.T, m *metrics.Lottery) {
			dir := testPKI(t, 1)
			srv := startTLSServer(t, central.Config{Agencies: 1, Metrics: m}, dir, nil)
			for range 4 {
				c := dialAgency(t, srv.addr, dir, 1)
				c.send(protocol.Echo{Data: []byte("x")})
				c.recv()
			}
			extra := dialAgency(t, srv.addr, dir, 1)
			extra.expectClosed()
		}},
		{metrics.ReasonNotLeader, metrics.ReasonNotLeader, func(t *testing.T, m *metrics.Lottery) {
			s := startNode(t, central.Config{Agencies: 1, Metrics: m}, filepath.Join(t.TempDir(), "bets.csv"), "127.0.0.1:0", (&fakeCluster{}).over)
			c := dialRaw(t, s.addr)
			c.send(protocol.Hello{Agency: 1})
			c.expectError(lottery.ENotLeader)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := instruments(1)
			tt.run(t, m)
			waitValue(t, reg, 1, "lottery_connections_refused_total", "reason", tt.reason)
			if got := testutil.Scrape(t, reg).Sum("lottery_connections_refused_total"); got != 1 {
				t.Errorf("connections refused in all %v, want 1", got)
			}
		})
	}
}

// TestMetrics_HandshakesFailed: a failed handshake is counted under the
// reason the central logs (pki.Reason).
func TestMetrics_HandshakesFailed(t *testing.T) {
	dir := testPKI(t, 1)
	other := testPKI(t, 1) // another CA
	m, reg := instruments(1)
	srv := startTLSServer(t, central.Config{Agencies: 1, HandshakeTimeout: 300 * time.Millisecond, Metrics: m}, dir, nil)
	handshake := func(t *testing.T, cert, key string) {
		cc, err := pki.ClientConfig(filepath.Join(dir, pki.AgencyCertFile(1)), filepath.Join(dir, pki.AgencyKeyFile(1)), filepath.Join(dir, pki.CAFile))
		if err != nil {
			t.Fatal(err)
		}
		cc.Certificates = nil
		if cert != "" {
			pair, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				t.Fatal(err)
			}
			cc.Certificates = []tls.Certificate{pair}
		}
		conn, err := tls.Dial("tcp", srv.addr, pki.ForServer(cc, srv.addr))
		if err == nil {
			conn.SetReadDeadline(time.Now().Add(waitShort))
			_, err = conn.Read(make([]byte, 1)) // TLS 1.3: the refusal comes with the first read
			conn.Close()
		}
		if err == nil {
			t.Fatal("the central accepted the handshake")
		}
	}
	tests := []struct {
		reason string
		run    func(t *testing.T)
	}{
		{pki.ReasonNoCertificate, func(t *testing.T) { handshake(t, "", "") }},
		{pki.ReasonUnknownCA, func(t *testing.T) {
			handshake(t, filepath.Join(other, pki.AgencyCertFile(1)), filepath.Join(other, pki.AgencyKeyFile(1)))
		}},
		{pki.ReasonTimeout, func(t *testing.T) {
			c := dialRaw(t, srv.addr)
			c.write([]byte{0x16}) // a ClientHello that never comes
			c.expectClosed()
		}},
	}
	for i, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			tt.run(t)
			waitValue(t, reg, 1, "lottery_handshakes_failed_total", "reason", tt.reason)
			waitFor(t, "one failure per case", func() bool {
				return testutil.Scrape(t, reg).Sum("lottery_handshakes_failed_total") == float64(i+1)
			})
		})
	}
}
