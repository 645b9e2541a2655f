package testutil

import (
	"os"
	"syscall"
	"testing"
)

func TestStartServer_Signal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	dir := t.TempDir()
	p := StartServer(t, dir, map[string]string{"STORAGE_NOSYNC": "true"})
	if p.Port == 0 || p.Addr == "" {
		t.Fatalf("addr %q port %d", p.Addr, p.Port)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(t, ExitTimeout); code != 0 {
		t.Fatalf("exit code %d, want 0:\n%s", code, p.Output())
	}
	lines, err := ParseAll(p.Output())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(lines); n == 0 || lines[n-1].Action != "shutdown" || lines[n-1].Result != "success" {
		t.Fatalf("last line is not the shutdown success:\n%s", p.Output())
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBinaries()
	os.Exit(code)
}
