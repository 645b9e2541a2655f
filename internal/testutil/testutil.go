// Package testutil holds helpers shared by the integration and end-to-end
// tests: building the binaries once, skipping long and Docker tests, finding
// the real dataset, parsing the log contract and running the programs as
// processes.
package testutil

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"lottery/protocol"
)

// Binary names built by Binaries.
const (
	ServerBin  = "server"
	ClientBin  = "client"
	GendataBin = "gendata"
	AuditBin   = "audit"
)

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error

	binOnce sync.Once
	binDir  string
	binErr  error

	dockerOnce sync.Once
	dockerOK   bool
)

// goTool returns the go command that runs these tests.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// ModuleRoot returns the directory of the module's go.mod (`go env GOMOD`).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		out, err := exec.Command(goTool(), "env", "GOMOD").Output()
		if err != nil {
			rootErr = err
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			rootErr = os.ErrNotExist
			return
		}
		rootDir = filepath.Dir(gomod)
	})
	if rootErr != nil {
		t.Fatalf("testutil: cannot find the module root: %v", rootErr)
	}
	return rootDir
}

// Binaries builds ./cmd/server, ./cmd/client, ./cmd/gendata and ./cmd/audit
// (static, CGO_ENABLED=0) once per test binary and returns the directory
// that holds them. The directory lives under os.TempDir; RemoveBinaries
// deletes it (call it from TestMain after m.Run).
func Binaries(t testing.TB) string {
	t.Helper()
	root := ModuleRoot(t)
	binOnce.Do(func() {
		dir, err := os.MkdirTemp(os.TempDir(), "lottery-bin-")
		if err != nil {
			binErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool(), "build", "-o", dir+string(filepath.Separator),
			"./cmd/"+ServerBin, "./cmd/"+ClientBin, "./cmd/"+GendataBin, "./cmd/"+AuditBin)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			binErr = &buildError{err: err, out: string(out)}
			return
		}
		binDir = dir
	})
	if binErr != nil {
		t.Fatalf("testutil: building the binaries: %v", binErr)
	}
	return binDir
}

// RemoveBinaries deletes what Binaries built and the test PKI, if anything.
func RemoveBinaries() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	removePKI()
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// Long skips the test unless LOTTERY_LONG=1; -short always skips it.
func Long(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("long test: skipped with -short")
	}
	if os.Getenv("LOTTERY_LONG") != "1" {
		t.Skip("long test: set LOTTERY_LONG=1 to run it")
	}
}

// Docker skips the test unless LOTTERY_DOCKER=1, or LOTTERY_DOCKER=auto and
// `docker info` succeeds; -short always skips it.
func Docker(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("Docker test: skipped with -short")
	}
	switch os.Getenv("LOTTERY_DOCKER") {
	case "1":
		return
	case "auto":
		dockerOnce.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			dockerOK = exec.CommandContext(ctx, "docker", "info").Run() == nil
		})
		if dockerOK {
			return
		}
		t.Skip("Docker test: LOTTERY_DOCKER=auto and no reachable Docker engine")
	default:
		t.Skip("Docker test: set LOTTERY_DOCKER=1 (or auto) to run it")
	}
}

// DatasetAgencies is how many agency files the real dataset has.
const DatasetAgencies = 5

// Dataset returns the real dataset's directory (<module root>/../shared/dataset)
// and whether agency-1.csv … agency-5.csv are all there.
func Dataset(t testing.TB) (dir string, ok bool) {
	t.Helper()
	dir = filepath.Join(filepath.Dir(ModuleRoot(t)), "shared", "dataset")
	for i := 1; i <= DatasetAgencies; i++ {
		if !fileExists(filepath.Join(dir, "agency-"+strconv.Itoa(i)+".csv")) {
			return dir, false
		}
	}
	return dir, true
}

// Frame encodes a message as one whole frame, failing the test if it does
// not fit.
func Frame(t testing.TB, m protocol.Message) []byte {
	t.Helper()
	b, err := protocol.AppendFrame(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// WaitFor polls cond every few milliseconds until it holds, failing the
// test if timeout passes first. It is for state only visible by polling
// (a file, a counter); a process's output has Proc.WaitOutput.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// IsReset reports whether err is the peer resetting the connection (or the
// pipe breaking under a write), as a central that closes with unread bytes
// does: tested on the errno, never on the error's text.
func IsReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
