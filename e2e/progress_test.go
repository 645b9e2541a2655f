package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"lottery/internal/testutil"
)

// TestE2E_ClientProgressBar runs an agency on a terminal (a pseudo-terminal
// made by util-linux's script(1)): it draws its progress bar, and every
// log line still reaches the screen whole, above the bar, in the
// contract's grammar. (Piped, as in every other test here, there is no
// bar at all: checkOutput refuses a carriage return.)
func TestE2E_ClientProgressBar(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script(1) to give the agency a terminal")
	}
	const bets = 2000
	d := generated(t, 1, bets, []int{1})
	srv := testutil.StartServer(t, serverDir(t), map[string]string{"AGENCIES": "1"})
	dir := clientDir(t, 1, d.files[0])
	ctx, cancel := context.WithTimeout(testutil.Context(t), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "-q", "-e", "-c", filepath.Join(testutil.Binaries(t), testutil.ClientBin), "/dev/null")
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "CLI_ID=1", "CLI_SERVER_ADDRESS="+srv.Addr, "CLI_BATCH_MAXAMOUNT=10")
	for k, v := range testutil.ClientTLSEnv(t, 1) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the agency on a terminal: %v\n%s", err, out)
	}
	// What the screen shows of each line: what follows its last carriage
	// return (the terminal writes \r\n for a newline).
	var logs []string
	bars := 0
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSuffix(l, "\r")
		shown := strings.TrimRight(l[strings.LastIndex(l, "\r")+1:], " ")
		switch {
		case strings.Contains(shown, "action: "):
			logs = append(logs, shown)
		case strings.Contains(l, " bets acked"):
			bars++
		}
	}
	lines, err := testutil.ParseAll(strings.Join(logs, "\n") + "\n")
	if err != nil {
		t.Errorf("log lines on the terminal: %v", err)
	}
	if _, ok := testutil.FindOne(lines, "consulta_ganadores", "success"); !ok {
		t.Errorf("no consulta_ganadores line on the terminal:\n%q", out)
	}
	if n := len(testutil.Find(lines, "progreso", "in_progress")); n == 0 {
		t.Errorf("no progreso line on the terminal: the 10 %% lines stay with the bar")
	}
	if bars == 0 || !strings.Contains(string(out), "2,000/2,000 bets acked") {
		t.Errorf("no progress bar ending at 2,000/2,000 on the terminal:\n%q", out)
	}
}
