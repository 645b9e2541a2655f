package dockertest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"lottery/internal/testutil"
	"lottery/pki"
)

// script runs one of the repository's scripts with a shell ("bash", or "sh"
// as the course's harness does: dash on Debian) and extra environment, and
// returns its stdout, stderr and exit code.
func script(t *testing.T, shell, root, name string, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, shell, append([]string{filepath.Join(root, name)}, args...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitCode()
	}
	t.Fatalf("%s: %v", name, err)
	return "", "", 0
}

const (
	echoSuccess = "action: test_echo_server | result: success\n"
	echoFail    = "action: test_echo_server | result: fail\n"
)

// TestValidarEchoServer checks the health check against the running central
// (TLS on: the echo is the one thing it answers in plain text), run with
// bash and with sh, then with nothing there, with something that does not
// listen, with a stand-in that answers something else, and with no network
// at all.
func TestValidarEchoServer(t *testing.T) {
	d := newDeployment(t, 0)
	netcatImage(t, d.root)
	d.up()
	d.waitLog("server", "escuchar", func(lines []testutil.Line) bool {
		return len(testutil.Find(lines, "escuchar", "success")) == 1
	})
	byContainer := []string{"SERVER_CONTAINER=" + d.container("server")}
	byNetwork := []string{"NETWORK=" + d.network()}

	// standIn runs a netcat container answering to the name "server" and,
	// when it is to listen, waits until it does.
	standIn := func(t *testing.T, listens bool, shell string) {
		t.Helper()
		name := d.prefix + "standin"
		d.docker("run", "-d", "--rm", "--name", name, "--network", d.network(), "--network-alias", "server", "netcat:latest", "sh", "-c", shell)
		t.Cleanup(func() { command(cmdTimeout, "", "docker", "rm", "-f", name) })
		deadline := time.Now().Add(cmdTimeout)
		for listens && !strings.Contains(d.docker("exec", name, "netstat", "-ltn"), ":12345 ") {
			if time.Now().After(deadline) {
				t.Fatal("the stand-in never listened")
			}
			time.Sleep(pollEvery)
		}
	}

	tests := []struct {
		name    string
		shell   string // bash if empty
		env     []string
		prepare func(t *testing.T)
		want    string
		code    int
		// stderr is part of what the script says on failure: it shows
		// the failure is the one the case is about.
		stderr string
	}{
		{name: "OK", env: byContainer, want: echoSuccess},
		{name: "OKWithSh", shell: "sh", env: byContainer, want: echoSuccess},
		{name: "OKWithShMessage", shell: "sh", env: append([]string{`ECHO_MESSAGE=ñandú 100% \n`}, byContainer...), want: echoSuccess},
		{name: "ErrCentralStopped", env: byContainer, code: 1, want: echoFail, stderr: "bad address 'server'",
			prepare: func(t *testing.T) { d.docker("stop", "-t", "20", d.container("server")) }},
		{name: "ErrNothingListening", env: byNetwork, code: 1, want: echoFail, stderr: "answer:  (nothing)",
			prepare: func(t *testing.T) { standIn(t, false, "exec sleep 600") }},
		{name: "ErrWrongAnswer", env: byNetwork, code: 1, want: echoFail, stderr: "answer:  01 09 00 04 70 6f 6e 67",
			prepare: func(t *testing.T) {
				standIn(t, true, `while true; do printf '\001\011\000\004pong' | nc -l -p 12345; done`)
			}},
		{name: "ErrSilentPeer", env: append([]string{"ECHO_TIMEOUT=2"}, byNetwork...), code: 1, want: echoFail, stderr: "answer:  (nothing)",
			prepare: func(t *testing.T) { standIn(t, true, "nc -l -p 12345 -e sleep 600") }},
		{name: "ErrNoNetwork", env: []string{"NETWORK=" + d.project + "-missing"}, code: 1, want: echoFail, stderr: "no network"},
		{name: "ErrNoContainer", env: []string{"SERVER_CONTAINER=" + d.prefix + "nobody"}, code: 1, want: echoFail, stderr: "no container"},
		{name: "ErrNoContainerWithSh", shell: "sh", env: []string{"SERVER_CONTAINER=" + d.prefix + "nobody"}, code: 1, want: echoFail, stderr: "no container"},
	}
	// The cases run in order: the first ones need the central up, the next
	// ones need it stopped.
	echoes := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prepare != nil {
				tt.prepare(t)
			}
			shell := tt.shell
			if shell == "" {
				shell = "bash"
			}
			stdout, stderr, code := script(t, shell, d.root, "validar-echo-server.sh", tt.env)
			if stdout != tt.want || code != tt.code {
				t.Errorf("stdout %q exit %d, want %q exit %d; stderr:\n%s", stdout, code, tt.want, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr does not say %q:\n%s", tt.stderr, stderr)
			}
			if tt.code == 0 {
				echoes++
				got := testutil.Find(d.logs("server"), "receive_message", "success")
				if len(got) != echoes {
					t.Fatalf("the central logged %d receive_message lines, want %d", len(got), echoes)
				}
				if l := got[echoes-1]; tt.name == "OK" && l.Get("msg") != "ping" {
					t.Errorf("want the central to log receive_message with msg: ping, got %q", l.Raw)
				}
			}
		})
	}
}

// TestGenerarCompose runs generar-compose.sh (with sh, as the course's
// harness may) and checks the result with `docker compose config`: the
// services, the PKI it issued next to the file, and that the CA's key is
// mounted nowhere.
func TestGenerarCompose(t *testing.T) {
	testutil.Docker(t)
	root := testutil.ModuleRoot(t)
	dir := t.TempDir()
	for _, n := range []int{0, 1, 3, 5, 10} {
		t.Run("N="+strconv.Itoa(n), func(t *testing.T) {
			out := filepath.Join(dir, "compose-"+strconv.Itoa(n)+".yaml")
			if _, stderr, code := script(t, "sh", root, "generar-compose.sh", nil, out, strconv.Itoa(n)); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			cc := composeCommand()
			got, err := command(cmdTimeout, dir, cc[0], append(cc[1:], "-f", out, "config", "--services")...)
			if err != nil {
				t.Fatalf("compose config rejects the file: %v", err)
			}
			services := strings.Fields(got)
			slices.Sort(services)
			want := []string{"server"}
			for i := 1; i <= n; i++ {
				want = append(want, "client"+strconv.Itoa(i))
			}
			slices.Sort(want)
			if !slices.Equal(services, want) {
				t.Errorf("services %q, want %q", services, want)
			}
			containers, err := command(cmdTimeout, dir, cc[0], append(cc[1:], "-f", out, "config")...)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range want {
				if !strings.Contains(containers, "container_name: "+name+"\n") {
					t.Errorf("no container_name: %s in\n%s", name, containers)
				}
			}
			if strings.Contains(containers, pki.CAKeyFile) {
				t.Errorf("the CA's key is mounted:\n%s", containers)
			}
			issued := []string{pki.CAFile, pki.CAKeyFile, pki.CentralCertFile, pki.CentralKeyFile}
			for i := 1; i <= n; i++ {
				issued = append(issued, pki.AgencyCertFile(i), pki.AgencyKeyFile(i))
			}
			for _, f := range issued {
				if _, err := os.Stat(filepath.Join(dir, ".pki", f)); err != nil {
					t.Errorf("the PKI next to the file: %v", err)
				}
			}
		})
	}

	t.Run("PlainText", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "compose.yaml")
		if _, stderr, code := script(t, "sh", root, "generar-compose.sh", nil, "-tls=false", out, "2"); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		cc := composeCommand()
		got, err := command(cmdTimeout, dir, cc[0], append(cc[1:], "-f", out, "config")...)
		if err != nil {
			t.Fatalf("compose config rejects the file: %v", err)
		}
		if strings.Contains(got, ".pki") {
			t.Errorf("a plain-text file mounts the PKI:\n%s", got)
		}
		// compose config writes the environment as a mapping.
		var cfg struct {
			Services map[string]struct {
				Environment map[string]any `yaml:"environment"`
			} `yaml:"services"`
		}
		if err := yaml.Unmarshal([]byte(got), &cfg); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{"server": "TLS", "client1": "CLI_TLS", "client2": "CLI_TLS"} {
			if v := cfg.Services[name].Environment[want]; v != "off" {
				t.Errorf("%s: %s is %v, want off", name, want, v)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, ".pki")); !os.IsNotExist(err) {
			t.Errorf("-tls=false issued a PKI (%v)", err)
		}
	})

	bad := []struct {
		name string
		args []string
	}{
		{"NoArgs", nil},
		{"MissingN", []string{"OUT"}},
		{"NotANumber", []string{"OUT", "cinco"}},
		{"Negative", []string{"OUT", "-2"}},
		{"Extra", []string{"OUT", "3", "extra"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "docker-compose-dev.yaml")
			if err := os.WriteFile(out, []byte("untouched\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			args := slices.Clone(tt.args)
			for i := range args {
				args[i] = strings.ReplaceAll(args[i], "OUT", out)
			}
			_, stderr, code := script(t, "sh", root, "generar-compose.sh", nil, args...)
			if code != 2 || !strings.Contains(stderr, "usage: generar-compose.sh <output-file> <N>") {
				t.Errorf("exit %d, stderr %q; want exit 2 and the usage", code, stderr)
			}
			if b, _ := os.ReadFile(out); string(b) != "untouched\n" {
				t.Errorf("the output file changed to %q", b)
			}
		})
	}
}
