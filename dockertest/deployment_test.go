// Package dockertest runs the system the way the course does: the images
// built by `make docker-image`, a compose file from the generator, real
// containers, logs read with `docker compose logs` / `docker logs` and exit
// codes with `docker inspect`. It holds only tests; they skip unless
// LOTTERY_DOCKER is 1, or auto with a reachable engine.
//
// Every test runs its own compose project in a throw-away directory that
// holds copies of the repository's config files, its own .data/ and its own
// PKI in .pki/ (a CA of its own: TLS is on, as in a real deployment), with
// container names prefixed so that they never meet a deployment that is
// already running; the project is removed (down -v) when the test ends.
// Projects run one after the other: the machine has two cores.
package dockertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"lottery"
	"lottery/compose"
	"lottery/gendata"
	"lottery/internal/testutil"
	"lottery/pki"
	"lottery/storage"
)

// Generous limits for a loaded 2-core machine; they bound waits, they
// assert nothing about speed.
const (
	runTimeout   = 3 * time.Minute  // a deployment to finish its work
	cmdTimeout   = 2 * time.Minute  // one docker command
	buildTimeout = 10 * time.Minute // make docker-image
	pollEvery    = 150 * time.Millisecond
)

var (
	imagesOnce sync.Once
	imagesErr  error

	netcatOnce sync.Once
	netcatErr  error

	composeOnce sync.Once
	composeCmd  []string

	projectSeq struct {
		sync.Mutex
		n int
	}
)

// setup skips the test unless Docker tests are on, then builds the images
// from the current code once per test binary (`make docker-image`, as a
// user does) and returns the repository root.
func setup(t *testing.T) string {
	t.Helper()
	testutil.Docker(t)
	root := testutil.ModuleRoot(t)
	imagesOnce.Do(func() {
		_, imagesErr = command(buildTimeout, root, "make", "--no-print-directory", "docker-image")
	})
	if imagesErr != nil {
		t.Fatalf("make docker-image: %v", imagesErr)
	}
	return root
}

// netcatImage builds the netcat image validar-echo-server.sh uses, once.
func netcatImage(t *testing.T, root string) {
	t.Helper()
	netcatOnce.Do(func() {
		_, netcatErr = command(buildTimeout, root, "make", "--no-print-directory", "docker-netcat-image")
	})
	if netcatErr != nil {
		t.Fatalf("make docker-netcat-image: %v", netcatErr)
	}
}

// composeCommand is `docker compose` when the plugin is there, else
// docker-compose, as the Makefile chooses.
func composeCommand() []string {
	composeOnce.Do(func() {
		composeCmd = []string{"docker-compose"}
		if _, err := command(cmdTimeout, "", "docker", "compose", "version"); err == nil {
			composeCmd = []string{"docker", "compose"}
		}
	})
	return composeCmd
}

// command runs name args in dir and returns its stdout; the error carries
// stderr.
func command(timeout time.Duration, dir, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if name == "make" {
		// Under `make test` the parent's flags (a jobserver's file
		// descriptors, which go test does not pass on) mean nothing here.
		cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
			return strings.HasPrefix(kv, "MAKEFLAGS=") || strings.HasPrefix(kv, "MFLAGS=") || strings.HasPrefix(kv, "MAKELEVEL=")
		})
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// deployment is one compose project in a throw-away directory.
type deployment struct {
	t       *testing.T
	root    string // the repository
	dir     string // server/config.ini, client/config.yaml, .data/, .pki/, docker-compose.yaml
	project string // compose project name
	prefix  string // container name prefix
	file    compose.File
}

// newDeployment prepares (but does not start) a project with the central
// and the given number of agencies, copies of the repository's config files,
// an empty .data/ and a PKI in .pki/ for the central and those agencies.
func newDeployment(t *testing.T, agencies int) *deployment {
	t.Helper()
	root := setup(t)
	projectSeq.Lock()
	projectSeq.n++
	n := projectSeq.n
	projectSeq.Unlock()
	project := fmt.Sprintf("lotterytest%d-%d", os.Getpid(), n)
	d := &deployment{t: t, root: root, dir: t.TempDir(), project: project, prefix: project + "-"}
	for _, f := range []string{"server/config.ini", "client/config.yaml"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		d.writeFile(f, string(b))
	}
	if err := os.MkdirAll(d.path(".data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Issue(pki.Options{Dir: d.path(".pki"), Agencies: agencies}); err != nil {
		t.Fatal(err)
	}
	// What the generator does next: the central (not root) must read its key.
	if _, err := compose.ShareCentralKey(d.path(".pki")); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.IssueLogKey(d.path(".pki"), pki.DefaultLogOrigin); err != nil {
		t.Fatal(err)
	}
	if _, err := compose.ShareLogKey(d.path(".pki")); err != nil {
		t.Fatal(err)
	}
	f, err := compose.New(compose.Options{Agencies: agencies, NamePrefix: d.prefix, AdminHostPort: compose.EphemeralAdminPort})
	if err != nil {
		t.Fatal(err)
	}
	d.file = f
	// Registered after t.TempDir, so it runs before the directory goes.
	t.Cleanup(func() {
		if _, err := os.Stat(d.path("docker-compose.yaml")); err != nil {
			return // never started
		}
		if _, err := d.composeRun("down", "-v", "-t", "5"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return d
}

func (d *deployment) path(rel string) string { return filepath.Join(d.dir, filepath.FromSlash(rel)) }

func (d *deployment) writeFile(rel, content string) {
	d.t.Helper()
	p := d.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// setEnv adds environment variables to a service.
func (d *deployment) setEnv(service string, vars ...string) {
	d.t.Helper()
	s := d.file.Service(service)
	if s == nil {
		d.t.Fatalf("no service %s", service)
	}
	s.Environment = append(s.Environment, vars...)
}

// setClientConfig sets keys ("batch.maxAmount") of the agencies' config.yaml.
func (d *deployment) setClientConfig(kv map[string]any) {
	d.t.Helper()
	b, err := os.ReadFile(d.path("client/config.yaml"))
	if err != nil {
		d.t.Fatal(err)
	}
	doc := map[string]any{}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		d.t.Fatal(err)
	}
	for k, v := range kv {
		m := doc
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		d.t.Fatal(err)
	}
	d.writeFile("client/config.yaml", string(out))
}

// setServerConfig sets keys of the central's config.ini, replacing the line
// of a key that is there and appending the others.
func (d *deployment) setServerConfig(kv map[string]string) {
	d.t.Helper()
	b, err := os.ReadFile(d.path("server/config.ini"))
	if err != nil {
		d.t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	done := map[string]bool{}
	for i, l := range lines {
		key, _, ok := strings.Cut(l, "=")
		key = strings.TrimSpace(key)
		if v, set := kv[key]; ok && set {
			lines[i] = key + " = " + v
			done[key] = true
		}
	}
	for k, v := range kv {
		if !done[k] {
			lines = append(lines, k+" = "+v)
		}
	}
	d.writeFile("server/config.ini", strings.Join(lines, "\n")+"\n")
}

// writeAgencyFile writes a generated .data/agency-N.csv and returns its bets.
func (d *deployment) writeAgencyFile(agency, n, winners int) []lottery.Bet {
	d.t.Helper()
	if _, err := gendata.WriteFile(d.path(".data"), agency, n, winners, 1, true); err != nil {
		d.t.Fatal(err)
	}
	return gendata.Bets(agency, n, winners, 1)
}

// container is the container name of a service.
func (d *deployment) container(service string) string { return d.prefix + service }

// network is the name Docker gives the project's network.
func (d *deployment) network() string { return d.project + "_" + compose.DefaultNetwork }

// composeRun runs a compose command on the project.
func (d *deployment) composeRun(args ...string) (string, error) {
	cc := composeCommand()
	full := append(append([]string{}, cc[1:]...), "-p", d.project, "-f", d.path("docker-compose.yaml"))
	return command(cmdTimeout, d.dir, cc[0], append(full, args...)...)
}

// up writes the compose file and starts every service (up -d).
func (d *deployment) up() {
	d.t.Helper()
	var buf bytes.Buffer
	if err := d.file.Encode(&buf); err != nil {
		d.t.Fatal(err)
	}
	d.writeFile("docker-compose.yaml", buf.String())
	if _, err := d.composeRun("up", "-d"); err != nil {
		d.t.Fatal(err)
	}
}

// docker runs a docker command and fails the test if it fails.
func (d *deployment) docker(args ...string) string {
	d.t.Helper()
	out, err := command(cmdTimeout, d.dir, "docker", args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// state returns a container's status (running, exited…) and exit code.
func (d *deployment) state(service string) (string, int) {
	d.t.Helper()
	out := d.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", d.container(service))
	status, code, _ := strings.Cut(strings.TrimSpace(out), " ")
	n, err := strconv.Atoi(code)
	if err != nil {
		d.t.Fatalf("docker inspect %s: %q", service, out)
	}
	return status, n
}

// waitExit waits for a container to stop and returns its exit code.
func (d *deployment) waitExit(service string) int {
	d.t.Helper()
	deadline := time.Now().Add(runTimeout)
	for {
		status, code := d.state(service)
		if status == "exited" || status == "dead" {
			return code
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s still %s after %v; its log:\n%s", service, status, runTimeout, d.rawLogs(service))
		}
		time.Sleep(pollEvery)
	}
}

// rawLogs is what a container printed (docker logs).
func (d *deployment) rawLogs(service string) string {
	d.t.Helper()
	out, err := command(cmdTimeout, d.dir, "docker", "logs", d.container(service))
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// logs parses a container's log strictly: a line with "action:" that
// breaks the contract fails the test.
func (d *deployment) logs(service string) []testutil.Line {
	d.t.Helper()
	lines, err := testutil.ParseAll(d.rawLogs(service))
	if err != nil {
		d.t.Errorf("%s: %v", service, err)
	}
	return lines
}

// waitLog waits until the container's log satisfies cond and returns it.
func (d *deployment) waitLog(service, what string, cond func([]testutil.Line) bool) []testutil.Line {
	d.t.Helper()
	deadline := time.Now().Add(runTimeout)
	for {
		lines := testutil.Lines(d.rawLogs(service))
		if cond(lines) {
			return lines
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: no %s after %v; its log:\n%s", service, what, runTimeout, d.rawLogs(service))
		}
		time.Sleep(pollEvery)
	}
}

// composeLogs reads every service's log the way the course's harness does
// (`docker compose logs`) and splits it by service.
func (d *deployment) composeLogs() map[string]string {
	d.t.Helper()
	out, err := d.composeRun("logs", "--no-color")
	if err != nil {
		d.t.Fatal(err)
	}
	return d.splitLogs(out)
}

// splitLogs splits prefixed compose output ("name | line") by service
// name; lines without a prefix ("x exited with code 0") go under "".
func (d *deployment) splitLogs(out string) map[string]string {
	logs := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		name, line, ok := strings.Cut(l, " | ")
		if !ok {
			logs[""] += l + "\n"
			continue
		}
		name = strings.TrimPrefix(strings.TrimSpace(name), d.prefix)
		logs[name] += line + "\n"
	}
	return logs
}

// copyBets copies the central's bets file out of its container (running
// or stopped) and reads it.
func (d *deployment) copyBets() []lottery.Bet {
	d.t.Helper()
	dst := d.copyOut(compose.BetsFile)
	bets, err := storage.LoadBets(dst)
	if err != nil {
		d.t.Fatalf("the bets file copied out of the central: %v", err)
	}
	return bets
}

// copyOut copies a file out of the central's container (running or
// stopped) into a temporary directory and returns its path there.
func (d *deployment) copyOut(path string) string {
	d.t.Helper()
	dst := filepath.Join(d.t.TempDir(), filepath.Base(path))
	d.docker("cp", d.container(compose.ServerService)+":"+path, dst)
	return dst
}

// acked sums the cantidad of the central's `apuesta_recibida | result:
// success` lines per agency, and returns their sizes in order.
func acked(t *testing.T, lines []testutil.Line) (map[int]int, map[int][]int) {
	t.Helper()
	sum, sizes := map[int]int{}, map[int][]int{}
	for _, l := range testutil.Find(lines, "apuesta_recibida", "success") {
		n, ok1 := l.Int("cantidad")
		a, ok2 := l.Int("agency")
		if !ok1 || !ok2 {
			t.Fatalf("bad line %q", l.Raw)
		}
		sum[a] += n
		sizes[a] = append(sizes[a], n)
	}
	return sum, sizes
}

// checkWholeBatches checks that the stored bets of each agency are exactly
// the first bets of its file, in order, that they are as many as the
// central acknowledged, and that they are whole batches of batchSize
// (unless the whole file is there): nothing half-stored, nothing twice.
func checkWholeBatches(t *testing.T, stored []lottery.Bet, files map[int][]lottery.Bet, ack map[int]int, batchSize int) map[int]int {
	t.Helper()
	per := map[int][]lottery.Bet{}
	for _, b := range stored {
		per[b.Agency] = append(per[b.Agency], b)
	}
	counts := map[int]int{}
	for a, got := range per {
		want, ok := files[a]
		if !ok {
			t.Errorf("stored bets of agency %d, which has no file", a)
			continue
		}
		counts[a] = len(got)
		if len(got) > len(want) {
			t.Errorf("agency %d: %d bets stored, its file has %d", a, len(got), len(want))
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("agency %d: stored bet %d is %+v, the file's is %+v", a, i, got[i], want[i])
				break
			}
		}
		if len(got) != len(want) && len(got)%batchSize != 0 {
			t.Errorf("agency %d: %d bets stored: not whole batches of %d", a, len(got), batchSize)
		}
	}
	for a := range files {
		if counts[a] != ack[a] {
			t.Errorf("agency %d: %d bets stored, the central logged %d acknowledged", a, counts[a], ack[a])
		}
	}
	return counts
}

// winners reads an agency's `consulta_ganadores` count.
func winners(t *testing.T, lines []testutil.Line, service string) int {
	t.Helper()
	l, ok := testutil.FindOne(lines, "consulta_ganadores", "success")
	if !ok {
		t.Fatalf("%s: want one consulta_ganadores success line, got %d", service, len(testutil.Find(lines, "consulta_ganadores", "")))
	}
	n, ok := l.Int("cant_ganadores")
	if !ok {
		t.Fatalf("%s: %q", service, l.Raw)
	}
	return n
}

// noFail reports every `result: fail` line.
func noFail(t *testing.T, service string, lines []testutil.Line) {
	t.Helper()
	for _, l := range testutil.Results(lines, "fail") {
		t.Errorf("%s logged a failure: %s", service, l.Raw)
	}
}

// wantShutdown checks the shutdown lines of a gracefully stopped program:
// at least one resource released (in_progress), then one success last.
func wantShutdown(t *testing.T, service string, lines []testutil.Line) {
	t.Helper()
	sd := testutil.Find(lines, "shutdown", "")
	if len(sd) < 2 || sd[len(sd)-1].Result != "success" {
		t.Errorf("%s: want shutdown in_progress lines then shutdown success, got %q", service, raws(sd))
	}
	for _, l := range sd[:max(len(sd)-1, 0)] {
		if l.Result != "in_progress" {
			t.Errorf("%s: %s", service, l.Raw)
		}
	}
	t.Logf("%s shutdown:\n%s", service, strings.Join(raws(sd), "\n"))
}

func raws(lines []testutil.Line) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Raw)
	}
	return out
}
