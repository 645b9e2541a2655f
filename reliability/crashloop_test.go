package reliability

import (
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"lottery/internal/testutil"
)

// TestCentral_RestartLoop stops the built central every ~100 ms, with
// SIGKILL (a crash) or SIGTERM (a graceful stop, which must exit 0), and
// restarts it on the same files while five agencies upload in small batches
// (some pipelined, some one at a time). The agencies were started before
// the first central listens and reconnect on their own; at the end every
// agency exits 0 with its right winners and the bets file holds exactly the
// valid input rows, once each. A central stopped after the draw answers the
// winners again at once, and agencies that upload everything again store
// nothing twice.
func TestCentral_RestartLoop(t *testing.T) {
	testutil.Long(t)
	d := loadDataset(t, 4000)
	tests := []struct {
		name     string
		budget   time.Duration // how long to keep stopping the central
		graceful bool          // every stop leaves whole files: recovery never cuts
		stop     func(t *testing.T, p *testutil.Proc)
	}{
		{"SIGKILL", 25 * time.Second, false, func(t *testing.T, p *testutil.Proc) { p.Kill() }},
		{"SIGTERM", 15 * time.Second, true, func(t *testing.T, p *testutil.Proc) {
			t.Helper()
			if err := p.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := p.Wait(t, testutil.ExitTimeout); code != 0 {
				t.Fatalf("the central exited %d after SIGTERM, want 0:\n%s", code, tail(p.Output(), 30))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recovered := restartLoop(t, d, tt.budget, tt.stop)
			if tt.graceful && len(recovered) > 0 {
				t.Errorf("after graceful stops, recovery cut bytes %d times: %q", len(recovered), recovered)
			}
		})
	}
}

// restartLoop runs the agencies while stopping and restarting the central,
// checks the outcome, and returns the recovery lines that cut something.
func restartLoop(t *testing.T, d dataset, killBudget time.Duration, stop func(*testing.T, *testutil.Proc)) (recovered []string) {
	dir := t.TempDir()
	port := restartablePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	serverEnv := map[string]string{
		"SERVER_PORT":           strconv.Itoa(port),
		"SERVER_LISTEN_BACKLOG": "64",
		"AGENCIES":              strconv.Itoa(d.agencies),
		"STORAGE_FILEPATH":      filepath.Join(dir, "bets.csv"),
		"LOGGING_LEVEL":         "INFO",
	}
	agencies := make([]*testutil.Proc, d.agencies)
	envs := make([]map[string]string, d.agencies)
	for a := 1; a <= d.agencies; a++ {
		// Odd agencies send tiny batches one at a time, so many kills land
		// mid-upload; even ones pipeline small batches, so a kill leaves
		// a whole window to resend.
		batch, window := "5", "1"
		if a%2 == 0 {
			batch, window = "20", "16"
		}
		envs[a-1] = agencyEnv(d, a, addr, map[string]string{
			"CLI_BATCH_MAXAMOUNT":   batch,
			"CLI_BATCH_WINDOW":      window,
			"CLI_RECONNECT_INITIAL": "20ms",
			"CLI_RECONNECT_MAX":     "200ms",
		})
		agencies[a-1] = testutil.StartClient(t, "agency-"+strconv.Itoa(a), dir, envs[a-1])
	}
	allDone := make(chan struct{})
	go func() {
		for _, p := range agencies {
			<-p.Done()
		}
		close(allDone)
	}()

	// Kill for at most killBudget, so the test stays bounded on a loaded
	// machine; then the last central lets the agencies finish.
	const finishBudget = 2 * time.Minute
	rnd := rand.New(rand.NewPCG(4, 4))
	stopKilling := time.After(killBudget)
	kills := 0
	var server *testutil.Proc
loop:
	for {
		server = testutil.StartServer(t, dir, serverEnv)
		if l, ok := testutil.FindOne(server.Lines(), "recuperar", "success"); ok &&
			(l.Get("bytes_descartados") != "0" || l.Get("journal_bytes_descartados") != "0") {
			recovered = append(recovered, l.Raw)
		}
		select {
		case <-allDone:
			break loop
		case <-stopKilling:
			select {
			case <-allDone:
			case <-time.After(finishBudget):
				t.Fatalf("the agencies did not finish %v after the last of %d stops", finishBudget, kills)
			}
			break loop
		case <-server.Done():
			t.Fatalf("the central exited on its own (code %d):\n%s", server.ExitCode(), tail(server.Output(), 30))
		case <-time.After(time.Duration(50+rnd.IntN(100)) * time.Millisecond):
		}
		stop(t, server)
		kills++
	}
	if server.Exited() {
		t.Fatalf("the last central exited on its own (code %d):\n%s", server.ExitCode(), tail(server.Output(), 30))
	}
	for a, p := range agencies {
		checkAgency(t, p, a+1, d.winners[a])
	}

	// Kill it once more after the draw: the restarted central runs the
	// draw again from the stored bets as soon as it has verified them (it
	// listens before), and agencies run again from scratch with the same
	// configuration get every batch acked as a duplicate (same numbers,
	// same bets) and their winners at once.
	stop(t, server)
	kills++
	server = testutil.StartServer(t, dir, serverEnv)
	testutil.WaitFor(t, testutil.ExitTimeout, "a central restarted after the draw to redo it", func() bool {
		_, ok := testutil.FindOne(server.Lines(), "recuperar_sorteo", "success")
		return ok
	})
	for a := 1; a <= d.agencies; a++ {
		p := testutil.RunClient(t, "agency-"+strconv.Itoa(a)+"-again", dir, envs[a-1], time.Minute)
		checkAgency(t, p, a, d.winners[a-1])
	}
	if err := server.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := server.Wait(t, testutil.ExitTimeout); code != 0 {
		t.Errorf("last central exited %d after SIGTERM, want 0:\n%s", code, tail(server.Output(), 30))
	}
	checkStored(t, serverEnv["STORAGE_FILEPATH"], d.rows)

	resent, lateLosses := 0, 0
	for _, p := range agencies {
		lines := p.Lines()
		resent += len(testutil.Find(lines, "reenviar", "success"))
		// Connections lost after the upload: while finishing or waiting
		// for the winners.
		for i, l := range lines {
			if l.Action == "loop_finished" {
				lateLosses += len(testutil.Find(lines[i:], "conexion_perdida", ""))
			}
		}
	}
	t.Logf("survived %d stops; %d recoveries cut a torn or unacked tail; agencies resent unacked batches %d times "+
		"and lost the central %d times while finishing or waiting for the draw; %d bets stored once each",
		kills, len(recovered), resent, lateLosses, len(d.rows))
	if kills == 0 {
		t.Error("the central was never stopped: the test proved nothing")
	}
	return recovered
}
