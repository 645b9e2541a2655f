package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"lottery/admin"
	"lottery/agency"
	"lottery/logline"
	"lottery/protocol"
)

// RestartScenario times how long the server binary takes to start on the
// files of a central that already holds many bets: for each size, a
// central is filled by agencies uploading generated files (not measured),
// then restarted Runs times on its files, durable. With several binaries
// (the code before a change, and after), each gets its own files of each
// size and their restarts alternate.
//
//   - listen_ms: from exec until a TCP connection to its port is accepted
//     (the kernel accepts once the central listens).
//   - welcome_ms: from exec until a Hello on a new connection is answered
//     with a Welcome: the central knows what it holds.
type RestartScenario struct {
	Bins  []string // server binaries
	Sizes []int64  // stored bets
	Runs  int
	Dir   string // empty: a temporary directory, removed at the end
	// Progress, if set, receives a line per step.
	Progress io.Writer
}

// RestartResult is the medians of one binary at one size.
type RestartResult struct {
	Bin        string  `json:"bin"`
	Bets       int64   `json:"stored_bets"`
	BetsBytes  int64   `json:"bets_file_bytes"`
	Runs       int     `json:"runs"`
	ListenMs   float64 `json:"listen_ms"`
	WelcomeMs  float64 `json:"welcome_ms"`
	ListenMax  float64 `json:"listen_max_ms"`
	WelcomeMax float64 `json:"welcome_max_ms"`
}

// restartAgencies is how many agencies fill a store: enough to share its
// group commits.
const restartAgencies = 10

// RunRestart runs the scenario and returns one result per binary and size,
// sizes first.
func RunRestart(ctx context.Context, sc RestartScenario) ([]RestartResult, error) {
	if len(sc.Bins) == 0 || len(sc.Sizes) == 0 || sc.Runs < 1 {
		return nil, errors.New("bench: -restart needs a server binary, sizes and runs")
	}
	dir := sc.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "lottery-restart-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	var out []RestartResult
	for _, size := range sc.Sizes {
		stores := make([]string, len(sc.Bins))
		for i, bin := range sc.Bins {
			stores[i] = filepath.Join(dir, fmt.Sprintf("size-%d-bin-%d", size, i))
			progressf(sc.Progress, "restart: filling a central of %s with %d bets (not measured)", filepath.Base(bin), size)
			if err := fillCentral(ctx, bin, stores[i], size); err != nil {
				return nil, fmt.Errorf("fill %d bets with %s: %w", size, bin, err)
			}
		}
		listen := make([][]float64, len(sc.Bins))
		welcome := make([][]float64, len(sc.Bins))
		for run := 1; run <= sc.Runs; run++ {
			for i, bin := range sc.Bins {
				l, w, err := timeRestart(ctx, bin, stores[i])
				if err != nil {
					return nil, fmt.Errorf("restart %d of %s at %d bets: %w", run, bin, size, err)
				}
				listen[i], welcome[i] = append(listen[i], l), append(welcome[i], w)
			}
		}
		for i, bin := range sc.Bins {
			fi, err := os.Stat(filepath.Join(stores[i], "bets.csv"))
			if err != nil {
				return nil, err
			}
			r := RestartResult{Bin: bin, Bets: size, BetsBytes: fi.Size(), Runs: sc.Runs,
				ListenMs: median(listen[i]), WelcomeMs: median(welcome[i]),
				ListenMax: slices.Max(listen[i]), WelcomeMax: slices.Max(welcome[i])}
			progressf(sc.Progress, "restart: %s, %d bets: listen %.2f ms, welcome %.2f ms (medians of %d)", filepath.Base(bin), size, r.ListenMs, r.WelcomeMs, sc.Runs)
			out = append(out, r)
		}
	}
	return out, nil
}

// fillCentral starts bin on an empty directory, uploads size generated
// bets through restartAgencies agencies to the end (their winners
// received), and stops it with SIGTERM.
func fillCentral(ctx context.Context, bin, dir string, size int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files, err := writeAgencyFiles(dir, restartAgencies, int((size+restartAgencies-1)/restartAgencies), 1, DefaultSeed)
	if err != nil {
		return err
	}
	c, err := startChild(bin, dir, filepath.Join(dir, "bets.csv"), restartAgencies, false, "WARNING", "", false, false)
	if err != nil {
		return err
	}
	// Every agency at once: each waits for the draw, which waits for all.
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := agency.New(agency.Config{ID: i + 1, ServerAddress: c.Addr(), DataFile: f.path}, logline.Discard())
			if err == nil {
				_, err = a.Run(ctx)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	err = errors.Join(errs...)
	// Not Stop: it reopens the store with this code, which would upgrade
	// an older binary's files.
	if serr := c.terminate(); err == nil {
		err = serr
	}
	for _, f := range files {
		os.Remove(f.path)
	}
	return err
}

// timeRestart starts bin on the files in dir and returns the milliseconds
// from exec to an accepted connection and to a Welcome, then stops it.
func timeRestart(ctx context.Context, bin, dir string) (listenMs, welcomeMs float64, err error) {
	port, err := freePort()
	if err != nil {
		return 0, 0, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	bin, err = filepath.Abs(bin)
	if err != nil {
		return 0, 0, err
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = dir
	cmd.Env = childEnv(port, filepath.Join(dir, "bets.csv"), restartAgencies, false, "WARNING", "", false, admin.Off)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if werr := cmd.Wait(); err == nil && werr != nil {
			err = fmt.Errorf("the server did not stop cleanly: %w", werr)
		}
	}()
	var conn net.Conn
	for deadline := start.Add(childStartTimeout); ; {
		if conn, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("no listener on %s within %v", addr, childStartTimeout)
		}
		time.Sleep(100 * time.Microsecond) // a benchmark's poll: the resolution of listen_ms
	}
	listenMs = ms(time.Since(start))
	defer conn.Close()
	hello, _ := protocol.AppendFrame(nil, protocol.Hello{Agency: 1})
	conn.SetDeadline(time.Now().Add(childStartTimeout))
	if _, err := conn.Write(hello); err != nil {
		return 0, 0, err
	}
	f, err := protocol.NewReader(conn).Next()
	if err != nil {
		return 0, 0, fmt.Errorf("waiting for the Welcome: %w", err)
	}
	if f.Type != protocol.TypeWelcome {
		return 0, 0, fmt.Errorf("the server answered %s to a Hello", f.Type)
	}
	return listenMs, ms(time.Since(start)), nil
}

func progressf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// ReportRestart prints the results as a table: a row per size, a column
// pair per binary.
func ReportRestart(w io.Writer, rs []RestartResult) {
	fmt.Fprintf(w, "%-12s %-14s %-28s %10s %10s %10s %10s\n", "stored bets", "bets.csv", "binary", "listen ms", "max", "welcome ms", "max")
	for _, r := range rs {
		fmt.Fprintf(w, "%-12d %-14s %-28s %10.2f %10.2f %10.2f %10.2f\n", r.Bets, fmtBytes(r.BetsBytes), filepath.Base(filepath.Dir(r.Bin))+"/"+filepath.Base(r.Bin),
			r.ListenMs, r.ListenMax, r.WelcomeMs, r.WelcomeMax)
	}
}
