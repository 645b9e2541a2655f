package reliability

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"lottery/internal/testutil"
)

// TestCentral_JournalCutWhileConnected cuts the journal of a central
// whose agencies are in the middle of their upload: the central is
// killed, its journal cut at a record boundary a third of the way in, the
// restarted central refuses the files untouched, `server -repair` keeps the
// verified prefix, and the central started again welcomes the agencies
// with fewer batches than it had acknowledged. Each agency says so
// (central_olvido at ERROR, with the batches it had seen acked and the
// central's last_seq), uploads again what the central forgot, and in the
// end every valid row is stored exactly once, with the right winners.
func TestCentral_JournalCutWhileConnected(t *testing.T) {
	testutil.Long(t)
	d := loadDataset(t, 4000)
	dir := t.TempDir()
	path := filepath.Join(dir, "bets.csv")
	port := restartablePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	serverEnv := map[string]string{
		"SERVER_PORT":      strconv.Itoa(port),
		"AGENCIES":         strconv.Itoa(d.agencies),
		"STORAGE_FILEPATH": path,
		"LOGGING_LEVEL":    "INFO",
	}
	server := testutil.StartServer(t, dir, serverEnv)
	agencies := make([]*testutil.Proc, d.agencies)
	for a := 1; a <= d.agencies; a++ {
		// Paced, so the cut falls in the middle of every upload.
		agencies[a-1] = testutil.StartClient(t, "agency-"+strconv.Itoa(a), dir, agencyEnv(d, a, addr, map[string]string{
			"CLI_BATCH_MAXAMOUNT":   "20",
			"CLI_LOOP_PERIOD":       "2ms",
			"CLI_RECONNECT_INITIAL": "20ms",
			"CLI_RECONNECT_MAX":     "200ms",
		}))
	}
	const storedBefore = 400 // batches
	testutil.WaitFor(t, 2*time.Minute, "the central to store "+strconv.Itoa(storedBefore)+" batches", func() bool {
		return len(testutil.Find(server.Lines(), "apuesta_recibida", "success")) >= storedBefore
	})
	server.Kill()
	server.Wait(t, testutil.ExitTimeout)

	journal, err := os.ReadFile(path + ".journal")
	if err != nil {
		t.Fatal(err)
	}
	const recordsStart, recordSize = 3 * 4096, 64
	records := (len(journal) - recordsStart) / recordSize
	cut := recordsStart + records/3*recordSize
	if err := os.Truncate(path+".journal", int64(cut)); err != nil {
		t.Fatal(err)
	}
	t.Logf("journal cut from %d records to %d (byte %d)", records, records/3, cut)

	// Refused, untouched.
	before := dmgSnapshot(t, dir)
	env := map[string]string{}
	for k, v := range serverEnv {
		env[k] = v
	}
	for k, v := range testutil.ServerTLSEnv(t) {
		env[k] = v
	}
	refusing := testutil.Start(t, "refusing", filepath.Join(testutil.Binaries(t), testutil.ServerBin), dir, env)
	if code := refusing.Wait(t, testutil.ExitTimeout); code != 1 {
		t.Fatalf("the central on the cut journal exited %d, want 1:\n%s", code, tail(refusing.Output(), 10))
	}
	if l, ok := testutil.FindOne(refusing.Lines(), "recuperar", "fail"); !ok || l.Get("file") != path+".journal" {
		t.Fatalf("no recuperar fail line naming the journal:\n%s", tail(refusing.Output(), 10))
	}
	after := dmgSnapshot(t, dir)
	for _, name := range []string{"bets.csv", "bets.csv.journal"} {
		if string(before[name]) != string(after[name]) {
			t.Fatalf("the refusing central changed %s", name)
		}
	}

	if code, _, out := runServerFlag(t, path, "-repair"); code != 0 {
		t.Fatalf("-repair exited %d:\n%s", code, out)
	}
	server = testutil.StartServer(t, dir, serverEnv)
	forgot := 0
	for a, p := range agencies {
		p.Wait(t, 2*time.Minute)
		checkAgency(t, p, a+1, d.winners[a])
		for _, l := range testutil.Find(p.Lines(), "central_olvido", "fail") {
			forgot++
			acked, _ := l.Int("ultimo_ack")
			last, ok := l.Int("central_last_seq")
			if l.Level != "ERROR" || l.Get("agency") != strconv.Itoa(a+1) || !ok || last >= acked {
				t.Errorf("agency %d: %s; want an ERROR naming the agency, ultimo_ack above central_last_seq", a+1, l.Raw)
			}
		}
	}
	if forgot == 0 {
		t.Errorf("no agency logged central_olvido after the journal was cut")
	}
	if err := server.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := server.Wait(t, testutil.ExitTimeout); code != 0 {
		t.Errorf("the central exited %d after SIGTERM", code)
	}
	checkStored(t, path, d.rows)
	t.Logf("%d agencies were told the central forgot; %d valid bets stored once each", forgot, len(d.rows))
}
