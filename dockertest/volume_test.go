package dockertest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"lottery/compose"
	"lottery/internal/testutil"
	"lottery/pki"
)

// volume is the Docker name of the deployment's bets volume.
func (d *deployment) volume() string { return d.prefix + compose.DataVolumeName }

// volumeExists reports whether the deployment's bets volume is there.
func (d *deployment) volumeExists() bool {
	_, err := command(cmdTimeout, d.dir, "docker", "volume", "inspect", d.volume())
	return err == nil
}

// readOut copies a file out of the central's container and returns its bytes.
func (d *deployment) readOut(path string) []byte {
	d.t.Helper()
	b, err := os.ReadFile(d.copyOut(path))
	if err != nil {
		d.t.Fatal(err)
	}
	return b
}

// centralUser checks, from outside, who the running central is: every id of
// its process (real, effective, saved) is compose.CentralUID's, never 0.
func centralUser(t *testing.T, d *deployment) {
	t.Helper()
	// docker top runs ps on the engine's host; it wants the pid column.
	out := d.docker("top", d.container(compose.ServerService), "-o", "pid,ruid,euid,suid,rgid,egid,comm")
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 2 {
		t.Fatalf("docker top: want the central's process alone, got:\n%s", out)
	}
	f := strings.Fields(rows[1])
	uid, gid := strconv.Itoa(compose.CentralUID), strconv.Itoa(compose.CentralGID)
	if len(f) != 7 || f[1] != uid || f[2] != uid || f[3] != uid || f[4] != gid || f[5] != gid {
		t.Errorf("the central runs as %q, want uid %s and gid %s:\n%s", f, uid, gid, out)
	}
	t.Logf("the central's process: %s", rows[1])
}

// agenciesDone waits for agencies 1..len(want) to exit 0 with their winners.
func agenciesDone(t *testing.T, d *deployment, want []int) {
	t.Helper()
	for a := 1; a <= len(want); a++ {
		name := compose.ClientPrefix + strconv.Itoa(a)
		if code := d.waitExit(name); code != 0 {
			t.Errorf("%s exited with code %d; its log:\n%s", name, code, d.rawLogs(name))
			continue
		}
		lines := d.logs(name)
		noFail(t, name, lines)
		if got := winners(t, lines, name); got != want[a-1] {
			t.Errorf("%s: cant_ganadores %d, want %d", name, got, want[a-1])
		}
	}
}

// TestCompose_VolumeKeepsBets runs five agencies, takes the deployment
// down (containers and network gone, volume kept) and up again: the new
// central finds the bets and the draw on the volume, the agencies, run
// again from scratch, get every batch acknowledged as a duplicate and the
// same winners, and the bets file is byte for byte the same. After down -v
// the volume is gone and the next central starts empty. The central is
// not root and writes /data.
func TestCompose_VolumeKeepsBets(t *testing.T) {
	const n, bets = 5, 250
	d := newDeployment(t, n)
	wantWinners := []int{2, 0, 1, 3, 1}
	for a := 1; a <= n; a++ {
		d.writeAgencyFile(a, bets, wantWinners[a-1])
	}
	d.up()
	agenciesDone(t, d, wantWinners)
	centralUser(t, d)
	if user := strings.TrimSpace(d.docker("inspect", "-f", "{{.Config.User}}", d.container(compose.ServerService))); user != "10001:10001" {
		t.Errorf("the central's container runs as %q, want 10001:10001", user)
	}
	first := d.readOut(compose.BetsFile)
	if got := len(d.copyBets()); got != n*bets {
		t.Fatalf("%d bets stored, want %d", got, n*bets)
	}
	server := d.logs(compose.ServerService)
	noFail(t, "server", server)
	if len(testutil.Find(server, "sorteo", "success")) != 1 {
		t.Fatalf("no sorteo in the first run")
	}

	// down keeps the volume; up again, with the same files.
	if _, err := d.composeRun("down", "-t", "10"); err != nil {
		t.Fatal(err)
	}
	if !d.volumeExists() {
		t.Fatalf("down removed the volume %s", d.volume())
	}
	if _, err := d.composeRun("up", "-d"); err != nil {
		t.Fatal(err)
	}
	agenciesDone(t, d, wantWinners)
	server = d.logs(compose.ServerService)
	noFail(t, "server", server)
	if l, ok := testutil.FindOne(server, "recuperar", "success"); !ok || l.Get("apuestas") != strconv.Itoa(n*bets) ||
		l.Get("agencias_finalizadas") != strconv.Itoa(n) {
		t.Errorf("the central after up: recuperar %q, want %d bets and %d agencies finished", l.Raw, n*bets, n)
	}
	if len(testutil.Find(server, "recuperar_sorteo", "success")) != 1 || len(testutil.Find(server, "sorteo", "")) != 0 {
		t.Errorf("want one recuperar_sorteo and no new sorteo after up; the log:\n%s", d.rawLogs(compose.ServerService))
	}
	if ack, _ := acked(t, server); len(ack) != 0 {
		t.Errorf("batches stored again after up: %v", ack)
	}
	dup := map[int]int{}
	for _, l := range testutil.Find(server, "apuesta_duplicada", "success") {
		a, _ := l.Int("agency")
		c, _ := l.Int("cantidad")
		dup[a] += c
	}
	for a := 1; a <= n; a++ {
		if dup[a] != bets {
			t.Errorf("agency %d: %d bets acknowledged as duplicates after up, want %d", a, dup[a], bets)
		}
	}
	if second := d.readOut(compose.BetsFile); !bytes.Equal(first, second) {
		t.Errorf("the bets file changed across down and up: %d bytes, then %d", len(first), len(second))
	}

	// down -v removes the volume: the next central starts a new draw.
	if _, err := d.composeRun("down", "-v", "-t", "10"); err != nil {
		t.Fatal(err)
	}
	if d.volumeExists() {
		t.Fatalf("down -v left the volume %s", d.volume())
	}
	if _, err := d.composeRun("up", "-d", compose.ServerService); err != nil {
		t.Fatal(err)
	}
	server = d.waitLog(compose.ServerService, "escuchar", func(lines []testutil.Line) bool {
		return len(testutil.Find(lines, "escuchar", "success")) == 1
	})
	if l, ok := testutil.FindOne(server, "recuperar", "success"); !ok || l.Get("apuestas") != "0" {
		t.Errorf("the central after down -v and up: recuperar %q, want 0 bets", l.Raw)
	}
	if len(testutil.Find(server, "recuperar_sorteo", "")) != 0 {
		t.Errorf("the central after down -v recovered a draw")
	}
	if b := d.readOut(compose.BetsFile); len(b) != 0 {
		t.Errorf("the bets file after down -v has %d bytes", len(b))
	}
	centralUser(t, d)
}

// TestCompose_KeyOfAUser is a student's laptop: .pki/ issued by a user who
// is not root (the generator run as that user), so central.key is that
// user's, 0600. The generator lets the central's user read it with an ACL
// entry and nobody else; the central (not root) starts on it and serves.
func TestCompose_KeyOfAUser(t *testing.T) {
	const student = 4242 // no such user needed: ids are numbers
	if os.Geteuid() != 0 {
		t.Skip("playing another user needs root")
	}
	d := newDeployment(t, 1)
	if err := os.RemoveAll(d.path(".pki")); err != nil {
		t.Fatal(err)
	}
	// The student's directory, which the student can reach.
	if err := os.Chown(d.dir, student, student); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(d.dir), 0o711); err != nil {
		t.Fatal(err)
	}
	gen := exec.Command(filepath.Join(d.root, "bin", "gencompose"), d.path("generated.yaml"), "1")
	gen.Dir = d.dir
	gen.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: student, Gid: student}}
	out, err := gen.CombinedOutput()
	if err != nil {
		t.Fatalf("gencompose as uid %d: %v\n%s", student, err, out)
	}
	t.Logf("gencompose as uid %d:\n%s", student, out)
	key := d.path(".pki/" + pki.CentralKeyFile)
	st, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	// 0640 with an ACL: the group bits show the mask (what uid 10001 may
	// read); the owning group's own entry and the others' stay empty.
	if owner := st.Sys().(*syscall.Stat_t).Uid; owner != student || st.Mode().Perm() != 0o640 {
		t.Errorf("central.key: owner %d mode %v, want %d and 0640 (rw, then the ACL's mask)", owner, st.Mode().Perm(), student)
	}

	d.writeAgencyFile(1, 30, 2)
	d.up()
	agenciesDone(t, d, []int{2})
	centralUser(t, d)
	server := d.logs(compose.ServerService)
	noFail(t, "server", server)
	if len(testutil.Find(server, "sorteo", "success")) != 1 {
		t.Errorf("no sorteo; the central's log:\n%s", d.rawLogs(compose.ServerService))
	}
}
