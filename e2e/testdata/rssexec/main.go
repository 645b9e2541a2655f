// Command rssexec runs one program and reports its peak RSS: the tests'
// way to measure a binary's memory (e2e/memory_test.go).
//
// The test process cannot read it itself: Go starts a child with vfork
// (CLONE_VM), and Linux carries the parent's peak RSS at the exec into the
// child's Maxrss, so a child of a 300 MB process reports at least 300 MB,
// even /bin/true. rssexec is a small process (about 2 MiB) that runs the
// program and reads the program's Maxrss when it exits: max(rssexec's own
// peak, the program's). It writes "<maxrss KiB> <own peak KiB>" so that a
// reader knows the floor of the figure.
//
// It takes its arguments from the environment, as test helpers start
// programs without arguments: RSSEXEC_PROGRAM (run with this environment,
// less these variables, and this stdin, stdout and stderr) and RSSEXEC_OUT
// (where the figures go). It exits with the program's exit code, 128 plus
// the signal if a signal killed it, or 125 if it could not run it. The
// program dies with rssexec.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	prog, out := os.Getenv("RSSEXEC_PROGRAM"), os.Getenv("RSSEXEC_OUT")
	if prog == "" || out == "" {
		fmt.Fprintln(os.Stderr, "rssexec: set RSSEXEC_PROGRAM and RSSEXEC_OUT")
		os.Exit(125)
	}
	os.Unsetenv("RSSEXEC_PROGRAM")
	os.Unsetenv("RSSEXEC_OUT")
	runtime.LockOSThread() // Pdeathsig follows the thread that starts the child
	cmd := exec.Command(prog)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "rssexec:", err)
		os.Exit(125)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		os.Exit(125)
	}
	if err := os.WriteFile(out, fmt.Appendf(nil, "%d %d\n", ru.Maxrss, ownPeakKiB()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "rssexec:", err)
		os.Exit(125)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		os.Exit(128 + int(ws.Signal()))
	}
	os.Exit(cmd.ProcessState.ExitCode())
}

// ownPeakKiB returns this process's peak RSS (VmHWM), in KiB, 0 if unknown.
func ownPeakKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
