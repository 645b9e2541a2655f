//go:build linux

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"lottery/gendata"
	"lottery/internal/testutil"
)

// maxAgencyRSS is what an agency may peak at, whatever its file holds
// (the issue: "peaks under 64 MiB RSS").
const maxAgencyRSS = 64 << 20

// rssexec builds e2e/testdata/rssexec, the small program that runs a
// binary and reports its peak RSS (see its doc: the test process cannot
// read it itself), and returns its path.
func rssexec(t *testing.T) string {
	t.Helper()
	root := testutil.ModuleRoot(t)
	bin := filepath.Join(t.TempDir(), "rssexec")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./e2e/testdata/rssexec")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building rssexec: %v\n%s", err, out)
	}
	return bin
}

// measured runs prog in dir with env through rssexec, to its end, and
// returns it with prog's peak RSS and rssexec's own, in KiB.
func measured(t *testing.T, name, prog, dir string, env map[string]string) (p *testutil.Proc, maxrss, floor int64) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "rss")
	e := map[string]string{"RSSEXEC_PROGRAM": prog, "RSSEXEC_OUT": out}
	for k, v := range env {
		e[k] = v
	}
	p = testutil.Start(t, name, rssexec(t), dir, e)
	p.Wait(t, runTimeout)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("rssexec wrote no figure: %v\n%s", err, p.Output())
	}
	if _, err := fmt.Sscan(string(b), &maxrss, &floor); err != nil {
		t.Fatalf("rssexec figure %q: %v", b, err)
	}
	return p, maxrss, floor
}

// measuredAgency runs agency 1 (bin/client, with the test PKI) on data
// against addr to its end through rssexec, and returns it with its
// peak RSS in bytes.
func measuredAgency(t *testing.T, addr, data string) (*testutil.Proc, int64) {
	t.Helper()
	env := clientEnv(1, addr, map[string]string{"CLI_DATA_FILE": data})
	for k, v := range testutil.ClientTLSEnv(t, 1) {
		env[k] = v
	}
	p, maxrss, floor := measured(t, "client", filepath.Join(testutil.Binaries(t), testutil.ClientBin), clientDir(t, 1, ""), env)
	if maxrss > floor {
		t.Logf("agency peak RSS: %.1f MiB (%d KiB; rssexec's own peak, the floor of the figure: %d KiB)", float64(maxrss)/1024, maxrss, floor)
	} else {
		t.Logf("agency peak RSS: at most %.1f MiB (%d KiB): no more than rssexec's own peak", float64(maxrss)/1024, maxrss)
	}
	return p, maxrss << 10
}

// checkHostileRun checks an agency run on a hostile file: it exited 0
// under the memory cap, logged the hostile row as one invalid row at line
// 1, and uploaded the bets after it (sent of them, winners winning).
func checkHostileRun(t *testing.T, p *testutil.Proc, rss int64, sent, winners int) {
	t.Helper()
	lines := checkOutput(t, p, false)
	checkShutdown(t, p, lines)
	if rss >= maxAgencyRSS {
		t.Errorf("agency peak RSS %d MiB, want under %d MiB", rss>>20, maxAgencyRSS>>20)
	}
	fails := testutil.Find(lines, "leer_apuesta", "fail")
	if len(fails) != 1 || fails[0].Get("linea") != "1" || !strings.Contains(fails[0].Get("error"), "record too long") {
		t.Errorf("want one `leer_apuesta | result: fail | linea: 1 | error: record too long…` line, got %v", fails)
	}
	if others := testutil.Results(lines, "fail"); len(others) != 1 {
		t.Errorf("other fail lines: %v", others)
	}
	l, ok := testutil.FindOne(lines, "loop_finished", "success")
	if n, _ := l.Int("apuestas"); !ok || n != sent || l.Get("invalidas") != "1" {
		t.Errorf("loop_finished line %q, want apuestas: %d, invalidas: 1", l.Raw, sent)
	}
	l, ok = testutil.FindOne(lines, "consulta_ganadores", "success")
	if n, _ := l.Int("cant_ganadores"); !ok || n != winners {
		t.Errorf("consulta_ganadores line %q, want cant_ganadores: %d", l.Raw, winners)
	}
}

// stopServer stops the central and returns how many rows its bets file has.
func stopServer(t *testing.T, srv *testutil.Proc, dir string) int {
	t.Helper()
	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t, testutil.ExitTimeout)
	checkShutdown(t, srv, checkOutput(t, srv, true))
	return testutil.CountLines(t, filepath.Join(dir, "bets.csv"))
}

// TestE2E_AgencyMemory_Commas: a line of a million commas is one invalid
// row; the valid rows after it are uploaded; the agency stays under 64 MiB.
func TestE2E_AgencyMemory_Commas(t *testing.T) {
	const bets, winners = 1000, 2
	var buf bytes.Buffer
	buf.WriteString(strings.Repeat(",", 1_000_000) + "\r\n")
	if err := gendata.Write(&buf, gendata.Bets(1, bets, winners, 4242)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "agency-1.csv")
	testutil.WriteFile(t, path, buf.String())

	sdir := serverDir(t)
	srv := testutil.StartServer(t, sdir, map[string]string{"AGENCIES": "1"})
	p, rss := measuredAgency(t, srv.Addr, path)
	checkHostileRun(t, p, rss, bets, winners)
	if n := stopServer(t, srv, sdir); n != bets {
		t.Errorf("bets.csv has %d rows, want %d", n, bets)
	}
}

// TestE2E_AgencyMemory_1GiBLine: a 1 GiB agency file without a line ending
// is read whole (twice: counting rows, then reading them) as one invalid
// row, under 64 MiB. The file is sparse: 1 GiB of zero bytes, which the
// reader treats as any byte that is not a line ending or a quote (the path
// of a line of 'a's), at no disk cost.
func TestE2E_AgencyMemory_1GiBLine(t *testing.T) {
	testutil.Long(t)
	path := filepath.Join(t.TempDir(), "agency-1.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(f.Truncate(1<<30), f.Close()); err != nil {
		t.Fatal(err)
	}
	sdir := serverDir(t)
	srv := testutil.StartServer(t, sdir, map[string]string{"AGENCIES": "1"})
	p, rss := measuredAgency(t, srv.Addr, path)
	checkHostileRun(t, p, rss, 0, 0)
	if n := stopServer(t, srv, sdir); n != 0 {
		t.Errorf("bets.csv has %d rows, want none", n)
	}
}

// TestE2E_AgencyMemory_Floor checks the measurement itself: rssexec's own
// peak is far below the cap, so a figure under the cap is not rssexec's.
func TestE2E_AgencyMemory_Floor(t *testing.T) {
	p, maxrss, floor := measured(t, "true", "/bin/true", t.TempDir(), nil)
	if code := p.ExitCode(); code != 0 || floor <= 0 {
		t.Fatalf("exit %d, floor %d KiB:\n%s", code, floor, p.Output())
	}
	t.Logf("/bin/true through rssexec: %d KiB; rssexec's own peak: %d KiB", maxrss, floor)
	if floor<<10 >= maxAgencyRSS/8 {
		t.Errorf("rssexec peaks at %d KiB: too close to the %d MiB cap to measure under it", floor, maxAgencyRSS>>20)
	}
}
