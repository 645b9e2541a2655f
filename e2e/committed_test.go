package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"lottery/csvrow"
	"lottery/internal/testutil"
	"lottery/pki"
)

// TestE2E_CommittedNumber runs a draw with DRAW_NUMBER=committed: the
// central commits to a new secret before any bet (compromiso, a 0600
// file beside the bets), draws the number from the secret and the final
// tree, and reveals the secret in the signed statement; every agency checks
// it (verificar_sorteo, the same numero) and gets exactly its rows that
// played that number; bin/audit re-derives it from the files. A restart
// finds the same commitment and recovers the same draw; a secret file
// that is not the committed one stops the central before it listens.
func TestE2E_CommittedNumber(t *testing.T) {
	const agencies, bets = 3, 4000
	d := generated(t, agencies, bets, []int{1, 2, 0})
	dir := serverDir(t)
	env := map[string]string{"AGENCIES": strconv.Itoa(agencies), "DRAW_NUMBER": "committed"}
	srv := testutil.StartServer(t, dir, env)
	var clients []*testutil.Proc
	for i, f := range d.files {
		id := i + 1
		clients = append(clients, testutil.StartClient(t, "client"+strconv.Itoa(id), clientDir(t, id, f), clientEnv(id, srv.Addr, nil)))
	}
	for _, c := range clients {
		c.Wait(t, runTimeout)
	}
	if !srv.WaitCount(runTimeout, 1, "sorteo", "success") {
		t.Fatalf("no draw:\n%s", srv.Output())
	}
	srv.Signal(syscall.SIGTERM)
	srv.Wait(t, runTimeout)
	lines := checkOutput(t, srv, true)
	commit, ok := testutil.FindOne(lines, "compromiso", "success")
	if !ok || commit.Get("nuevo") != "true" || commit.Get("compromiso") == "" {
		t.Fatalf("compromiso line %q, want a new commitment", commit.Raw)
	}
	draw, _ := testutil.FindOne(lines, "sorteo", "success")
	number, err := strconv.Atoi(draw.Get("numero"))
	if err != nil || number < 0 || number > 9999 {
		t.Fatalf("sorteo line %q: no numero", draw.Raw)
	}
	if i, j := lineAt(lines, "compromiso"), lineAt(lines, "escuchar"); i < 0 || j < i {
		t.Errorf("the commitment (line %d) must be stored before the central listens (line %d)", i, j)
	}
	secret := filepath.Join(dir, "bets.csv.secreto")
	if fi, err := os.Stat(secret); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Fatalf("the secret's file: %v, %v; want 32 bytes, 0600", fi, err)
	}
	for i, c := range clients {
		cl := checkOutput(t, c, true)
		checkShutdown(t, c, cl)
		v, ok := testutil.FindOne(cl, "verificar_sorteo", "success")
		if !ok || v.Get("numero") != strconv.Itoa(number) || v.Get("raiz") != draw.Get("raiz") {
			t.Errorf("%s: verificar_sorteo line %q, want numero %d and raiz %s", c.Name, v.Raw, number, draw.Get("raiz"))
		}
		want := rowsPlaying(t, d.files[i], number)
		if w, _ := testutil.FindOne(cl, "consulta_ganadores", "success"); w.Get("cant_ganadores") != strconv.Itoa(want) {
			t.Errorf("%s: %q, want cant_ganadores %d (its rows that played %04d)", c.Name, w.Raw, want, number)
		}
	}

	// bin/audit, offline, from the files and the receipts.
	args := []string{"-pub", filepath.Join(testutil.PKI(t, 0), pki.LogPubFile), "-bets", filepath.Join(dir, "bets.csv"),
		"-statement", filepath.Join(dir, "bets.csv.sorteo")}
	for _, c := range clients {
		args = append(args, filepath.Join(c.Dir, ".data", "agency-"+strings.TrimPrefix(c.Name, "client")+".receipts"))
	}
	ctx, cancel := context.WithTimeout(testutil.Context(t), runTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(testutil.Binaries(t), testutil.AuditBin), args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "audit: OK") || !strings.Contains(string(out), fmt.Sprintf("number %04d", number)) {
		t.Errorf("bin/audit: %v\n%s", err, out)
	}

	// A restart: the same commitment, the same draw.
	srv = testutil.StartServer(t, dir, env)
	if !srv.WaitCount(runTimeout, 1, "recuperar_sorteo", "success") {
		t.Fatalf("no recovered draw:\n%s", srv.Output())
	}
	srv.Signal(syscall.SIGTERM)
	srv.Wait(t, runTimeout)
	lines = checkOutput(t, srv, true)
	if c, _ := testutil.FindOne(lines, "compromiso", "success"); c.Get("nuevo") != "false" || c.Get("compromiso") != commit.Get("compromiso") {
		t.Errorf("after a restart: %q, want the same commitment, not new", c.Raw)
	}
	if r, _ := testutil.FindOne(lines, "recuperar_sorteo", "success"); r.Get("numero") != draw.Get("numero") {
		t.Errorf("after a restart: %q, want numero %s", r.Raw, draw.Get("numero"))
	}

	// The default mode on a journal that commits to a secret: refused
	// before listening.
	p := testutil.Start(t, "server", filepath.Join(testutil.Binaries(t), testutil.ServerBin), dir, testutil.ServerTLSEnv(t))
	if code := p.Wait(t, runTimeout); code != 1 {
		t.Errorf("a central without DRAW_NUMBER=committed on a committed journal exited %d, want 1", code)
	}
	if l, ok := testutil.FindOne(p.Lines(), "compromiso", "fail"); !ok || !strings.Contains(l.Get("error"), "DRAW_NUMBER=committed") || lineAt(p.Lines(), "escuchar") >= 0 {
		t.Errorf("want one compromiso fail line naming DRAW_NUMBER=committed, before listening:\n%s", p.Output())
	}

	// Another secret: refused before listening.
	if err := os.WriteFile(secret, []byte("another secret of thirty-two b.."), 0o600); err != nil {
		t.Fatal(err)
	}
	p = testutil.Start(t, "server", filepath.Join(testutil.Binaries(t), testutil.ServerBin), dir, withEnv(testutil.ServerTLSEnv(t), env))
	if code := p.Wait(t, runTimeout); code != 1 {
		t.Errorf("a central with another secret exited %d, want 1", code)
	}
	if l, ok := testutil.FindOne(p.Lines(), "compromiso", "fail"); !ok || !strings.Contains(l.Get("error"), "not the secret the journal commits to") {
		t.Errorf("want a compromiso fail line naming the secret:\n%s", p.Output())
	}
	if lineAt(p.Lines(), "escuchar") >= 0 {
		t.Error("the central listened with a secret the journal does not commit to")
	}
}

// rowsPlaying counts the rows of an agency file whose number is n.
func rowsPlaying(t *testing.T, path string, n int) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csvrow.NewReader(f, 64<<10)
	count := 0
	for {
		fields, err := r.Read()
		if err != nil {
			return count
		}
		if len(fields) == 5 && string(fields[4]) == strconv.Itoa(n) {
			count++
		}
	}
}

func lineAt(lines []testutil.Line, action string) int {
	for i, l := range lines {
		if l.Action == action {
			return i
		}
	}
	return -1
}

func withEnv(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
