// Package e2e runs the built programs as processes, exactly as a user
// would: the central and the agencies each in a working directory of its
// own with its config file, talking over TCP on 127.0.0.1.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"lottery/gendata"
	"lottery/internal/testutil"
	"lottery/storage"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBinaries()
	os.Exit(code)
}

// runTimeout bounds a whole run; nothing asserts how long it took.
const runTimeout = 5 * time.Minute

// serverDir returns a working directory for the central holding the
// repository's config.ini.
func serverDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyFile(t, filepath.Join(testutil.ModuleRoot(t), "server", "config.ini"), filepath.Join(dir, "config.ini"))
	return dir
}

// clientDir returns a working directory for agency id holding the
// repository's config.yaml and, if data is not empty, .data/agency-<id>.csv
// linked to data.
func clientDir(t *testing.T, id int, data string) string {
	t.Helper()
	dir := t.TempDir()
	copyFile(t, filepath.Join(testutil.ModuleRoot(t), "client", "config.yaml"), filepath.Join(dir, "config.yaml"))
	if data != "" {
		if err := os.MkdirAll(filepath.Join(dir, ".data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(data, filepath.Join(dir, ".data", fmt.Sprintf("agency-%d.csv", id))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, to, string(b))
}

// clientEnv is the environment of agency id talking to addr, plus extra.
func clientEnv(id int, addr string, extra map[string]string) map[string]string {
	env := map[string]string{"CLI_ID": strconv.Itoa(id), "CLI_SERVER_ADDRESS": addr}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// checkOutput parses a process's output strictly and checks it never
// crashed; with noFail it also checks no line says `result: fail`.
func checkOutput(t *testing.T, p *testutil.Proc, noFail bool) []testutil.Line {
	t.Helper()
	out := p.Output()
	lines, err := testutil.ParseAll(out)
	if err != nil {
		t.Errorf("%s: %v", p.Name, err)
	}
	for _, bad := range []string{"panic:", "goroutine ", "DATA RACE", "fatal error:", "\r"} { // \r: a progress bar in piped output
		if strings.Contains(out, bad) {
			t.Errorf("%s printed %q", p.Name, bad)
		}
	}
	if noFail {
		if fails := testutil.Results(lines, "fail"); len(fails) > 0 {
			t.Errorf("%s logged failures: %v", p.Name, fails)
		}
	}
	return lines
}

// checkShutdown checks the process exited 0 and logged its shutdown: one
// in_progress line per resource, the success line last.
func checkShutdown(t *testing.T, p *testutil.Proc, lines []testutil.Line) {
	t.Helper()
	if code := p.ExitCode(); code != 0 {
		t.Errorf("%s exited %d, want 0", p.Name, code)
	}
	if len(testutil.Find(lines, "shutdown", "in_progress")) == 0 {
		t.Errorf("%s logged no `shutdown | result: in_progress` line", p.Name)
	}
	if n := len(lines); n == 0 || lines[n-1].Action != "shutdown" || lines[n-1].Result != "success" {
		t.Errorf("%s: last line is not `action: shutdown | result: success`", p.Name)
	}
}

// agencyData is the agency files of a run and what they must produce.
type agencyData struct {
	files   []string // files[i] is agency i+1's file
	winners []int    // expected winners per agency
	bets    int      // bets in all files
	real    bool
}

// realWinners is the number of winners per agency of the real dataset.
var realWinners = []int{2, 3, 3, 2, 0}

// data returns the real dataset when it is there, generated files with
// the same winners otherwise.
func data(t *testing.T) agencyData {
	t.Helper()
	if dir, ok := testutil.Dataset(t); ok {
		d := agencyData{winners: realWinners, bets: 78_697, real: true}
		for i := 1; i <= testutil.DatasetAgencies; i++ {
			d.files = append(d.files, filepath.Join(dir, fmt.Sprintf("agency-%d.csv", i)))
		}
		return d
	}
	return generated(t, 5, 4000, realWinners)
}

// generated writes n agency files of bets each.
func generated(t *testing.T, n, bets int, winners []int) agencyData {
	t.Helper()
	dir := t.TempDir()
	d := agencyData{bets: n * bets}
	for i := 1; i <= n; i++ {
		w := winners[(i-1)%len(winners)]
		path, err := gendata.WriteFile(dir, i, bets, w, 4242, false)
		if err != nil {
			t.Fatal(err)
		}
		d.files = append(d.files, path)
		d.winners = append(d.winners, w)
	}
	return d
}

// TestE2E_FiveAgencies is the whole system on the real dataset (or
// generated data): every agency gets its winners, the bets file has every
// bet, every process exits 0 with contract-conforming logs.
func TestE2E_FiveAgencies(t *testing.T) {
	d := data(t)
	testutil.Binaries(t) // build before the clock starts
	sdir := serverDir(t)
	serverStart := time.Now()
	srv := testutil.StartServer(t, sdir, map[string]string{"AGENCIES": strconv.Itoa(len(d.files))})
	clientsStart := time.Now()
	var clients []*testutil.Proc
	for i, f := range d.files {
		id := i + 1
		clients = append(clients, testutil.StartClient(t, fmt.Sprintf("client%d", id), clientDir(t, id, f), clientEnv(id, srv.Addr, nil)))
	}
	for _, c := range clients {
		c.Wait(t, runTimeout)
	}
	elapsed := time.Since(clientsStart)
	t.Logf("end to end (%s, %d bets, %d agencies): %v from the agencies' start to the last agency's exit, %v from the central's start",
		map[bool]string{true: "real dataset", false: "generated data"}[d.real], d.bets, len(d.files), elapsed.Round(time.Millisecond), time.Since(serverStart).Round(time.Millisecond))

	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t, runTimeout)

	for i, c := range clients {
		lines := checkOutput(t, c, true)
		checkShutdown(t, c, lines)
		l, ok := testutil.FindOne(lines, "consulta_ganadores", "success")
		if n, _ := l.Int("cant_ganadores"); !ok || n != d.winners[i] {
			t.Errorf("%s: consulta_ganadores line %q, want cant_ganadores: %d", c.Name, l.Raw, d.winners[i])
		}
		if l, ok := testutil.FindOne(lines, "loop_finished", "success"); !ok || l.Get("client_id") != strconv.Itoa(i+1) {
			t.Errorf("%s: loop_finished line %q", c.Name, l.Raw)
		}
	}
	lines := checkOutput(t, srv, true)
	checkShutdown(t, srv, lines)
	if _, ok := testutil.FindOne(lines, "sorteo", "success"); !ok {
		t.Errorf("central: want exactly one `sorteo | result: success` line")
	}

	path := filepath.Join(sdir, "bets.csv")
	if n := testutil.CountLines(t, path); n != d.bets {
		t.Errorf("bets.csv has %d lines, want %d", n, d.bets)
	}
	bets, err := storage.LoadBets(path)
	if err != nil {
		t.Fatalf("load_bets: %v", err)
	}
	if len(bets) != d.bets {
		t.Errorf("load_bets read %d bets, want %d", len(bets), d.bets)
	}
	won := make([]int, len(d.files))
	for _, b := range bets {
		if b.HasWon() {
			won[b.Agency-1]++
		}
	}
	for i := range won {
		if won[i] != d.winners[i] {
			t.Errorf("bets.csv: agency %d has %d winning bets, want %d", i+1, won[i], d.winners[i])
		}
	}
}

func TestE2E_BadConfig(t *testing.T) {
	tests := []struct {
		name   string
		server bool
		env    map[string]string
	}{
		{name: "server port not a number", server: true, env: map[string]string{"SERVER_PORT": "doce"}},
		{name: "server port out of range", server: true, env: map[string]string{"SERVER_PORT": "70000"}},
		{name: "server logging level", server: true, env: map[string]string{"LOGGING_LEVEL": "LOUD"}},
		{name: "server agencies", server: true, env: map[string]string{"AGENCIES": "0"}},
		{name: "client loop period", env: map[string]string{"CLI_ID": "1", "CLI_LOOP_PERIOD": "soon"}},
		{name: "client loop amount", env: map[string]string{"CLI_ID": "1", "CLI_LOOP_AMOUNT": "-3"}},
		{name: "client missing id", env: map[string]string{}},
		{name: "client id not a number", env: map[string]string{"CLI_ID": "uno"}},
		{name: "client log level", env: map[string]string{"CLI_ID": "1", "CLI_LOG_LEVEL": "chatty"}},
		{name: "client half a single bet", env: map[string]string{"CLI_ID": "1", "NOMBRE": "Ana"}},
	}
	bin := testutil.Binaries(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p *testutil.Proc
			if tt.server {
				p = testutil.Start(t, "server", filepath.Join(bin, testutil.ServerBin), serverDir(t), tt.env)
			} else {
				p = testutil.StartClient(t, "client", clientDir(t, 1, ""), tt.env)
			}
			if code := p.Wait(t, testutil.ExitTimeout); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			lines := checkOutput(t, p, false)
			if n := len(testutil.Find(lines, "config", "fail")); n != 1 || len(lines) != 1 {
				t.Errorf("want exactly one line, `action: config | result: fail`; got:\n%s", p.Output())
			}
		})
	}
}

// TestE2E_NoConfigFile runs both programs in empty directories: the
// environment alone configures them.
func TestE2E_NoConfigFile(t *testing.T) {
	srv := testutil.StartServer(t, t.TempDir(), map[string]string{"AGENCIES": "1", "LOGGING_LEVEL": "DEBUG"})
	c := testutil.RunClient(t, "client", t.TempDir(), clientEnv(1, srv.Addr, nil), runTimeout)
	lines := checkOutput(t, c, true)
	checkShutdown(t, c, lines)
	if l, ok := testutil.FindOne(lines, "consulta_ganadores", "success"); !ok || l.Get("cant_ganadores") != "0" {
		t.Errorf("client: consulta_ganadores line %q, want cant_ganadores: 0", l.Raw)
	}
	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t, testutil.ExitTimeout)
	slines := checkOutput(t, srv, true)
	checkShutdown(t, srv, slines)
	if l, ok := testutil.FindOne(slines, "config", "success"); !ok || l.Get("logging_level") != "DEBUG" || l.Get("agencies") != "1" {
		t.Errorf("server config line %q, want the environment's values", l.Raw)
	}
}

func TestE2E_SignalServer(t *testing.T) {
	t.Run("no agencies", func(t *testing.T) {
		srv := testutil.StartServer(t, serverDir(t), nil)
		if err := srv.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		srv.Wait(t, testutil.ExitTimeout)
		lines := checkOutput(t, srv, true)
		checkShutdown(t, srv, lines)
	})
	t.Run("mid-upload", func(t *testing.T) {
		const maxAmount = 10
		d := generated(t, 3, 1000, []int{1})
		sdir := serverDir(t)
		srv := testutil.StartServer(t, sdir, map[string]string{"AGENCIES": "3"})
		var clients []*testutil.Proc
		for i, f := range d.files {
			id := i + 1
			clients = append(clients, testutil.StartClient(t, fmt.Sprintf("client%d", id), clientDir(t, id, f),
				clientEnv(id, srv.Addr, map[string]string{"CLI_LOOP_PERIOD": "20ms", "CLI_BATCH_MAXAMOUNT": strconv.Itoa(maxAmount)})))
		}
		if !srv.WaitCount(runTimeout, 10, "apuesta_recibida", "success") {
			t.Fatal("no upload under way")
		}
		if err := srv.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		srv.Wait(t, testutil.ExitTimeout)
		lines := checkOutput(t, srv, true)
		checkShutdown(t, srv, lines)

		acked := 0
		for _, l := range testutil.Find(lines, "apuesta_recibida", "success") {
			n, _ := l.Int("cantidad")
			acked += n
		}
		path := filepath.Join(sdir, "bets.csv")
		bets, err := storage.LoadBets(path)
		if err != nil {
			t.Fatalf("load_bets: %v", err)
		}
		if n := testutil.CountLines(t, path); n != len(bets) || n != acked || n == 0 || n >= d.bets {
			t.Errorf("bets.csv: %d lines, load_bets %d bets, acked %d of %d: want the acked batches, whole, mid-upload", n, len(bets), acked, d.bets)
		}
		per := map[int]int{}
		for _, b := range bets {
			per[b.Agency]++
		}
		for a, n := range per {
			if n%maxAmount != 0 {
				t.Errorf("agency %d: %d rows stored, not whole batches of %d", a, n, maxAmount)
			}
		}

		// The agencies wait for the central to come back; SIGTERM ends them.
		for _, c := range clients {
			if c.Exited() {
				t.Errorf("%s exited (%d) while the central was down; it should wait", c.Name, c.ExitCode())
				continue
			}
			if err := c.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range clients {
			c.Wait(t, testutil.ExitTimeout)
			checkShutdown(t, c, checkOutput(t, c, false))
		}
	})
}

func TestE2E_SignalClient(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		// stage is the client line that shows it reached the stage.
		action, result string
		waiting        bool
	}{
		{name: "mid-upload", env: map[string]string{"CLI_LOOP_PERIOD": "50ms", "CLI_BATCH_MAXAMOUNT": "5"},
			action: "progreso", result: "in_progress"},
		{name: "waiting for the draw", action: "loop_finished", result: "success", waiting: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := generated(t, 1, 500, []int{2})
			srv := testutil.StartServer(t, serverDir(t), map[string]string{"AGENCIES": "2"})
			c := testutil.StartClient(t, "client1", clientDir(t, 1, d.files[0]), clientEnv(1, srv.Addr, tt.env))
			if _, ok := c.WaitLine(runTimeout, tt.action, tt.result); !ok {
				t.Fatalf("client never logged %s %s", tt.action, tt.result)
			}
			if tt.waiting {
				// The central has acked its Finished: the next thing the
				// client does is wait for the draw.
				if _, ok := srv.WaitLine(runTimeout, "agencia_finalizada", "success"); !ok {
					t.Fatal("the central never saw the agency finish")
				}
			}
			if err := c.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			c.Wait(t, testutil.ExitTimeout)
			lines := checkOutput(t, c, true)
			checkShutdown(t, c, lines)
			if _, ok := testutil.FindOne(lines, "consulta_ganadores", "success"); ok {
				t.Error("an interrupted client logged winners")
			}

			if err := srv.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			srv.Wait(t, testutil.ExitTimeout)
			// The central may have answered the client's pending query
			// with shutting_down: a fail line is fine here.
			checkShutdown(t, srv, checkOutput(t, srv, false))
		})
	}
}
