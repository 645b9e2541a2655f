package e2e

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"lottery/internal/testutil"
)

// TestE2E_ConfigFailsLoudly: an agency whose central address cannot be
// dialled, or whose explicitly named agency file is not there, stops at
// once with exit 2 and one config fail line naming the setting; it never
// reaches the central, so it cannot let the draw run without its bets.
func TestE2E_ConfigFailsLoudly(t *testing.T) {
	srv := testutil.StartServer(t, serverDir(t), map[string]string{"AGENCIES": "1"})
	for name, tt := range map[string]struct {
		env map[string]string
		key string
	}{
		"address without a port": {map[string]string{"CLI_SERVER_ADDRESS": "nohost"}, "CLI_SERVER_ADDRESS"},
		"port out of range":      {map[string]string{"CLI_SERVER_ADDRESS": ":99999"}, "CLI_SERVER_ADDRESS"},
		"missing agency file":    {map[string]string{"CLI_DATA_FILE": "./.data/agency-7.csv"}, "CLI_DATA_FILE"},
	} {
		t.Run(name, func(t *testing.T) {
			p := testutil.StartClient(t, "client", clientDir(t, 1, ""), clientEnv(1, srv.Addr, tt.env))
			if code := p.Wait(t, testutil.ExitTimeout); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			lines := checkOutput(t, p, false)
			if l, ok := testutil.FindOne(lines, "config", "fail"); !ok || len(lines) != 1 || !strings.Contains(l.Get("error"), tt.key) {
				t.Errorf("want exactly one `action: config | result: fail` line naming %s; got:\n%s", tt.key, p.Output())
			}
		})
	}
	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t, testutil.ExitTimeout)
	lines := checkOutput(t, srv, true)
	for _, action := range []string{"agencia_conectada", "agencia_finalizada", "sorteo"} {
		if ls := testutil.Find(lines, action, ""); len(ls) > 0 {
			t.Errorf("the central logged %s: %v", action, ls)
		}
	}
}

// TestE2E_ConfigWarnings: the built programs warn, naming the key, about a
// blank value that falls back to its default and about an unknown key,
// and run on.
func TestE2E_ConfigWarnings(t *testing.T) {
	sdir := serverDir(t)
	testutil.WriteFile(t, filepath.Join(sdir, "config.ini"), "[DEFAULT]\nSERVER_IP =\nSERVER_LISTEN_BACKLOG =\nAGENCIAS = 3\n")
	srv := testutil.StartServer(t, sdir, map[string]string{"AGENCIES": "1"})
	cdir := clientDir(t, 1, "")
	testutil.WriteFile(t, filepath.Join(cdir, "config.yaml"), "server:\n  adress: server:1\nloop:\n  period:\n")
	c := testutil.RunClient(t, "client", cdir, clientEnv(1, srv.Addr, nil), runTimeout)
	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t, testutil.ExitTimeout)
	for _, tt := range []struct {
		p    *testutil.Proc
		keys []string
	}{
		{srv, []string{"SERVER_LISTEN_BACKLOG", "AGENCIAS"}},
		{c, []string{"loop.period", "server.adress"}},
	} {
		lines := checkOutput(t, tt.p, true)
		checkShutdown(t, tt.p, lines)
		var keys []string
		for _, l := range testutil.Find(lines, "config", "in_progress") {
			if l.Level != "WARNING" || !l.Has("warning") {
				t.Errorf("%s: %s", tt.p.Name, l.Raw)
			}
			keys = append(keys, l.Get("key"))
		}
		if strings.Join(keys, " ") != strings.Join(tt.keys, " ") {
			t.Errorf("%s warned about %v, want %v", tt.p.Name, keys, tt.keys)
		}
	}
}

// TestE2E_Help: -h and --help print the usage on stdout and exit 0,
// starting nothing.
func TestE2E_Help(t *testing.T) {
	bin := testutil.Binaries(t)
	for _, prog := range []string{testutil.ServerBin, testutil.ClientBin, testutil.GendataBin} {
		for _, arg := range []string{"-h", "--help"} {
			t.Run(prog+" "+arg, func(t *testing.T) {
				dir := t.TempDir()
				var stdout, stderr bytes.Buffer
				cmd := exec.Command(filepath.Join(bin, prog), arg)
				cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
				cmd.Env = []string{"CLI_ID=1", "CLI_TLS=off", "TLS=off", "SERVER_PORT=1"}
				if err := cmd.Run(); err != nil {
					t.Fatalf("%v; stderr:\n%s", err, stderr.String())
				}
				if !strings.HasPrefix(stdout.String(), "usage: "+prog) || stderr.Len() > 0 {
					t.Fatalf("stdout %q, stderr %q; want the usage on stdout", stdout.String(), stderr.String())
				}
			})
		}
	}
}
