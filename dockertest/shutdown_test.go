package dockertest

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"lottery"
	"lottery/internal/testutil"
)

// Slow uploads, so that a stop lands in the middle of one: batches of
// slowBatch bets, one every slowPeriod.
const (
	slowBatch  = 10
	slowPeriod = "50ms"
	slowBets   = 1000 // 100 batches: about five seconds per agency
	slowAcked  = 30   // bets the central must have acked before the stop
)

// slowAgencies writes the data files of agencies 1..n and slows their
// uploads through the environment.
func slowAgencies(d *deployment, n int) map[int][]lottery.Bet {
	files := map[int][]lottery.Bet{}
	for a := 1; a <= n; a++ {
		files[a] = d.writeAgencyFile(a, slowBets, a%3)
		d.setEnv("client"+strconv.Itoa(a), "CLI_LOOP_PERIOD="+slowPeriod, "CLI_BATCH_MAXAMOUNT="+strconv.Itoa(slowBatch),
			"CLI_RECONNECT_INITIAL=100ms", "CLI_RECONNECT_MAX=500ms")
	}
	return files
}

// waitAcked waits until the central has acked at least slowAcked bets of
// each of agencies 1..n.
func waitAcked(t *testing.T, d *deployment, n int) {
	t.Helper()
	d.waitLog("server", "apuesta_recibida of every agency", func(lines []testutil.Line) bool {
		ack, _ := acked(t, lines)
		for a := 1; a <= n; a++ {
			if ack[a] < slowAcked {
				return false
			}
		}
		return true
	})
}

// stop runs `docker stop -t 20` on a service and checks that it exited 0.
func stop(t *testing.T, d *deployment, service string) {
	t.Helper()
	d.docker("stop", "-t", "20", d.container(service))
	if status, code := d.state(service); status != "exited" || code != 0 {
		t.Errorf("%s after docker stop: %s with code %d, want exited with 0", service, status, code)
	}
}

// interrupted fails the test when an upload was not cut by the stop: the
// test would then prove nothing.
func interrupted(t *testing.T, counts map[int]int, files map[int][]lottery.Bet) {
	t.Helper()
	for a, bets := range files {
		if counts[a] >= len(bets) {
			t.Fatalf("agency %d uploaded its whole file before the stop: slow it down", a)
		}
	}
}

// TestSIGTERM_ClientMidUpload stops an agency in the middle of its upload.
func TestSIGTERM_ClientMidUpload(t *testing.T) {
	d := newDeployment(t, 1)
	files := slowAgencies(d, 1)
	d.up()
	waitAcked(t, d, 1)
	stop(t, d, "client1")
	client := d.logs("client1")
	wantShutdown(t, "client1", client)
	if n := len(testutil.Find(client, "consulta_ganadores", "")); n != 0 {
		t.Errorf("client1 asked for winners after SIGTERM")
	}
	stop(t, d, "server")
	server := d.logs("server")
	wantShutdown(t, "server", server)
	noFail(t, "server", server)
	ack, _ := acked(t, server)
	counts := checkWholeBatches(t, d.copyBets(), files, ack, slowBatch)
	interrupted(t, counts, files)
	t.Logf("stored %d of %d bets", counts[1], len(files[1]))
}

// TestSIGTERM_ServerMidUpload stops the central while two agencies upload,
// checks the bets file it leaves, then starts it again (what `docker
// restart server` does): the file is still there, the agencies resume where
// the central stopped, and the draw counts every bet once.
func TestSIGTERM_ServerMidUpload(t *testing.T) {
	const n = 2
	d := newDeployment(t, n)
	files := slowAgencies(d, n)
	d.up()
	waitAcked(t, d, n)
	stop(t, d, "server")
	server := d.logs("server")
	wantShutdown(t, "server", server)
	noFail(t, "server", server)
	ack, _ := acked(t, server)
	counts := checkWholeBatches(t, d.copyBets(), files, ack, slowBatch)
	interrupted(t, counts, files)
	t.Logf("stored before the restart: %v", counts)

	d.docker("start", d.container("server"))
	for a := 1; a <= n; a++ {
		name := "client" + strconv.Itoa(a)
		if code := d.waitExit(name); code != 0 {
			t.Errorf("%s exited with code %d after the central came back", name, code)
		}
		if got, want := winners(t, d.logs(name), name), a%3; got != want {
			t.Errorf("%s: cant_ganadores %d, want %d", name, got, want)
		}
	}
	server = d.logs("server")
	recs := testutil.Find(server, "recuperar", "success")
	if len(recs) != 2 || recs[1].Get("apuestas") != strconv.Itoa(sum(counts)) {
		t.Errorf("want the restarted central to recover %d bets, got %q", sum(counts), raws(recs))
	}
	ack, _ = acked(t, server)
	final := checkWholeBatches(t, d.copyBets(), files, ack, slowBatch)
	for a, bets := range files {
		if final[a] != len(bets) {
			t.Errorf("agency %d: %d bets stored in the end, want %d", a, final[a], len(bets))
		}
	}
}

// TestSIGTERM_ServerIdle stops a central that has no agency.
func TestSIGTERM_ServerIdle(t *testing.T) {
	d := newDeployment(t, 0)
	d.up()
	d.waitLog("server", "escuchar", func(lines []testutil.Line) bool {
		return len(testutil.Find(lines, "escuchar", "success")) == 1
	})
	stop(t, d, "server")
	server := d.logs("server")
	wantShutdown(t, "server", server)
	noFail(t, "server", server)
}

// exitedRE is compose's line for a container that stopped.
var exitedRE = regexp.MustCompile(`^(\S+) exited with code (\d+)$`)

// TestSIGTERM_ComposeDown takes everything down (`docker compose down -t
// 10`) in the middle of the uploads, following the logs as the course's
// harness does: every container exits 0 after logging its shutdown.
func TestSIGTERM_ComposeDown(t *testing.T) {
	const n = 3
	d := newDeployment(t, n)
	slowAgencies(d, n)
	d.up()
	waitAcked(t, d, n)

	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cc := composeCommand()
	follow := exec.CommandContext(ctx, cc[0], append(cc[1:], "-p", d.project, "-f", d.path("docker-compose.yaml"), "logs", "-f", "--no-color")...)
	follow.Dir = d.dir
	out := testutil.NewBuffer()
	follow.Stdout, follow.Stderr = out, out
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	// Give the follower time to attach before anything stops; what it
	// printed so far shows that it has.
	deadline := time.Now().Add(cmdTimeout)
	for !strings.Contains(out.String(), "action: config") && time.Now().Before(deadline) {
		time.Sleep(pollEvery)
	}
	if _, err := d.composeRun("down", "-t", "10"); err != nil {
		t.Fatal(err)
	}
	if err := follow.Wait(); err != nil {
		t.Errorf("logs -f: %v", err)
	}

	logs := d.splitLogs(out.String())
	exits := map[string]int{}
	for _, l := range bytes.Split([]byte(logs[""]), []byte("\n")) {
		if m := exitedRE.FindSubmatch(bytes.TrimSpace(l)); m != nil {
			code, _ := strconv.Atoi(string(m[2]))
			exits[string(bytes.TrimPrefix(m[1], []byte(d.prefix)))] = code
		}
	}
	for _, s := range d.file.Services {
		code, ok := exits[s.Name]
		if !ok || code != 0 {
			t.Errorf("%s: exited with code %d (reported: %v), want 0", s.Name, code, ok)
		}
		lines, err := testutil.ParseAll(logs[s.Name])
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
		wantShutdown(t, s.Name, lines)
		// compose stops the agencies before the central: an agency that had
		// finished and was waiting for the draw leaves, and the central says
		// so (consulta_ganadores fail, "connection closed before the draw").
		noFail(t, s.Name, slices.DeleteFunc(lines, func(l testutil.Line) bool {
			return l.Action == "consulta_ganadores" && strings.Contains(l.Get("error"), "connection closed before the draw")
		}))
	}
}
