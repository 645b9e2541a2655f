package testutil

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Timeouts generous enough for a loaded 2-core machine.
const (
	// StartTimeout bounds how long a server may take to log `escuchar`.
	StartTimeout = 30 * time.Second
	// ExitTimeout is Wait's default bound on a process's exit.
	ExitTimeout = 60 * time.Second
)

// Proc is a program started by the tests. Its stdout and stderr are
// captured together; it is killed at the end of the test if still running.
type Proc struct {
	Name string
	Dir  string
	// Addr ("127.0.0.1:port") and Port are set by StartServer.
	Addr string
	Port int

	cmd  *exec.Cmd
	out  *Buffer
	done chan struct{} // closed when the process has exited
	code int
	err  error
}

// baseEnv is the environment every process starts from: only what a program
// needs to run, so no CLI_*, SERVER_* or NOMBRE… of the test's own
// environment leaks in. A central's admin listener gets a port of its own
// (ADMIN_ADDRESS=127.0.0.1:0) unless the test names one: the default
// 127.0.0.1:9090 would let only one central of the test run at a time.
func baseEnv() []string {
	env := []string{"ADMIN_ADDRESS=127.0.0.1:0"}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Start runs the binary bin (a path) in dir with env added to a minimal
// environment. The process is killed and reaped when the test ends; if the
// test failed, its output is logged.
func Start(t testing.TB, name, bin, dir string, env map[string]string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Dir: dir, out: NewBuffer(), done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Dir = dir
	p.cmd.Env = baseEnv()
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		p.err = err
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.Exited() {
			p.Kill()
		}
		if t.Failed() {
			t.Logf("output of %s (exit %d):\n%s", name, p.code, p.Output())
		}
	})
	return p
}

// StartServer runs bin/server in dir and waits for its `escuchar` line. If
// env has no SERVER_PORT, a free port is chosen. Addr and Port are set from
// that line.
func StartServer(t testing.TB, dir string, env map[string]string) *Proc {
	t.Helper()
	bin := filepath.Join(Binaries(t), ServerBin)
	e := withTLS(t, env, true)
	_, fixed := env["SERVER_PORT"]
	for attempt := 1; ; attempt++ {
		if !fixed {
			e["SERVER_PORT"] = strconv.Itoa(FreePort(t))
		}
		p := Start(t, "server", bin, dir, e)
		l, ok := p.WaitLine(StartTimeout, "escuchar", "")
		if !ok {
			t.Fatalf("server did not log `action: escuchar` in %v", StartTimeout)
		}
		if l.Result != "success" {
			// Another process took the free port meanwhile: try another.
			if !fixed && attempt < 3 {
				p.Wait(t, ExitTimeout)
				continue
			}
			t.Fatalf("server could not listen: %s", l.Raw)
		}
		_, port, err := net.SplitHostPort(l.Get("addr"))
		if err != nil {
			t.Fatalf("server escuchar line without addr: %s", l.Raw)
		}
		p.Port, _ = strconv.Atoi(port)
		p.Addr = net.JoinHostPort("127.0.0.1", port)
		return p
	}
}

// StartClient runs bin/client in dir. Both StartServer and StartClient use
// the test PKI (PKI) unless env sets TLS / CLI_TLS or names the files.
func StartClient(t testing.TB, name, dir string, env map[string]string) *Proc {
	t.Helper()
	return Start(t, name, filepath.Join(Binaries(t), ClientBin), dir, withTLS(t, env, false))
}

// RunClient runs bin/client in dir to its end and returns it, failing the
// test if it does not exit within timeout.
func RunClient(t testing.TB, name, dir string, env map[string]string, timeout time.Duration) *Proc {
	t.Helper()
	p := StartClient(t, name, dir, env)
	p.Wait(t, timeout)
	return p
}

// Output returns everything the process printed so far.
func (p *Proc) Output() string { return p.out.String() }

// Lines returns the contract lines printed so far.
func (p *Proc) Lines() []Line { return Lines(p.Output()) }

// WaitOutput waits until cond holds for the output, the process exits, or
// timeout passes, and reports whether cond held.
func (p *Proc) WaitOutput(timeout time.Duration, cond func(out string) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if cond(p.Output()) {
			return true
		}
		select {
		case <-p.out.Changed():
		case <-p.done:
			return cond(p.Output())
		case <-deadline.C:
			return cond(p.Output())
		}
	}
}

// WaitLine waits for a line with the action and result ("" matches any
// result) and returns the first one.
func (p *Proc) WaitLine(timeout time.Duration, action, result string) (Line, bool) {
	var found Line
	ok := p.WaitOutput(timeout, func(out string) bool {
		ls := Find(Lines(out), action, result)
		if len(ls) > 0 {
			found = ls[0]
			return true
		}
		return false
	})
	return found, ok
}

// WaitCount waits until at least n lines with the action and result have
// been printed.
func (p *Proc) WaitCount(timeout time.Duration, n int, action, result string) bool {
	return p.WaitOutput(timeout, func(out string) bool { return len(Find(Lines(out), action, result)) >= n })
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit code (-1 if a
// signal killed it). After timeout it kills the process and fails the test.
func (p *Proc) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	code, err := p.WaitTimeout(timeout)
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	return code
}

// WaitTimeout is Wait without a test: it returns an error (after killing the
// process) if the process is still running after timeout.
func (p *Proc) WaitTimeout(timeout time.Duration) (int, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.code, nil
	case <-t.C:
		p.Kill()
		return p.code, errors.New("did not exit in " + timeout.String() + ": killed")
	}
}

// ExitCode returns the exit code of an exited process.
func (p *Proc) ExitCode() int {
	<-p.done
	return p.code
}

// Kill kills the process and waits for it to be reaped.
func (p *Proc) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// NodePorts returns n free agency ports whose port + offset is free too:
// the nodes of a replicated central listen for Raft there
// (replica.RaftPortOffset).
func NodePorts(t testing.TB, n, offset int) []int {
	t.Helper()
	var ports []int
	for len(ports) < n {
		p := FreePort(t)
		if p+offset > 65535 {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+offset))
		if err != nil {
			continue
		}
		ln.Close()
		ports = append(ports, p)
	}
	return ports
}

// WriteFile writes a file for a test, failing it on error.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// CountLines counts the lines of a file (rows of a bets file: every row
// ends with CRLF and no name holds a line break).
func CountLines(t testing.TB, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// Context returns a context cancelled when the test ends.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}
