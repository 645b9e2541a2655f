package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"lottery/agency"
)

// runScenario prepares and runs sc once, failing the test on any error.
func runScenario(t *testing.T, sc Scenario) Result {
	t.Helper()
	sc.Dir = t.TempDir()
	b, err := Prepare(sc)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	r, err := b.Run(context.Background(), 1)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

// checkSane checks the figures every successful run must have.
func checkSane(t *testing.T, r Result, agencies, bets int) {
	t.Helper()
	total := int64(agencies * bets)
	if r.TotalBets != total || r.StoredBets != total {
		t.Errorf("total %d, stored %d; want %d", r.TotalBets, r.StoredBets, total)
	}
	if r.Winners != agencies*DefaultWinners {
		t.Errorf("winners = %d, want %d", r.Winners, agencies*DefaultWinners)
	}
	if want := int64(agencies * ((bets + agency.DefaultMaxAmount - 1) / agency.DefaultMaxAmount)); r.Batches != want {
		t.Errorf("batches = %d, want %d", r.Batches, want)
	}
	if !(r.UploadSeconds > 0 && r.E2ESeconds >= r.UploadSeconds) {
		t.Errorf("upload %v s, end to end %v s: want 0 < upload <= end to end", r.UploadSeconds, r.E2ESeconds)
	}
	if got := r.BetsPerSecond * r.UploadSeconds; got < float64(total)*0.999 || got > float64(total)*1.001 {
		t.Errorf("bets/s %v × upload %v s = %v, want %d", r.BetsPerSecond, r.UploadSeconds, got, total)
	}
	if !(r.AckP50Ms > 0 && r.AckP50Ms <= r.AckP99Ms && r.AckP99Ms <= r.AckMaxMs) {
		t.Errorf("ack p50 %v, p99 %v, max %v: want 0 < p50 <= p99 <= max", r.AckP50Ms, r.AckP99Ms, r.AckMaxMs)
	}
	if r.PeakRSS <= 0 || r.CPUSeconds < 0 {
		t.Errorf("peak RSS %d, CPU %v s: want both measured", r.PeakRSS, r.CPUSeconds)
	}
}

func TestBench_Run(t *testing.T) {
	const agencies, bets = 2, 500
	t.Run("OKDurable", func(t *testing.T) {
		r := runScenario(t, Scenario{Agencies: agencies, Bets: bets})
		checkSane(t, r, agencies, bets)
		if r.Central != "in-process" || r.NoSync {
			t.Errorf("central %q, nosync %v; want in-process, durable", r.Central, r.NoSync)
		}
		// At least one group commit (two fsyncs), at most two per batch
		// and per Finished, plus the two of Open.
		if maxF := 2*(r.Batches+agencies) + 2; r.Fsyncs < 2 || r.Fsyncs > maxF {
			t.Errorf("fsyncs = %d, want 2 to %d", r.Fsyncs, maxF)
		}
		if r.GoHeapPeak <= 0 || r.GoMappedPeak < r.GoHeapPeak {
			t.Errorf("Go heap peak %d, mapped peak %d: want 0 < heap <= mapped", r.GoHeapPeak, r.GoMappedPeak)
		}
	})
	t.Run("OKNoSync", func(t *testing.T) {
		r := runScenario(t, Scenario{Agencies: agencies, Bets: bets, NoSync: true})
		checkSane(t, r, agencies, bets)
		if r.Fsyncs != 0 {
			t.Errorf("fsyncs = %d with NoSync, want 0", r.Fsyncs)
		}
	})
	t.Run("OKPreload", func(t *testing.T) {
		r := runScenario(t, Scenario{Agencies: agencies, Bets: bets, Preload: 2500})
		if r.StoredBets != 2500+agencies*bets || r.Winners != agencies*DefaultWinners {
			t.Errorf("stored %d, winners %d; want %d and %d (preloaded bets count as stored, not as the agencies' winners)",
				r.StoredBets, r.Winners, 2500+agencies*bets, agencies*DefaultWinners)
		}
	})
	t.Run("OKServerBin", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds the server binary")
		}
		r := runScenario(t, Scenario{Agencies: agencies, Bets: bets, ServerBin: serverBinary(t)})
		checkSane(t, r, agencies, bets)
		if r.Fsyncs != -1 || r.GoHeapPeak != -1 || !strings.Contains(r.RSSScope, "server process") {
			t.Errorf("fsyncs %d, Go heap %d, RSS scope %q: want -1, -1 and the server process", r.Fsyncs, r.GoHeapPeak, r.RSSScope)
		}
	})
	t.Run("ErrServerBinMissing", func(t *testing.T) {
		b, err := Prepare(Scenario{Agencies: 1, Bets: 10, Dir: t.TempDir(), ServerBin: filepath.Join(t.TempDir(), "nope")})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if _, err := b.Run(context.Background(), 1); err == nil {
			t.Error("Run with a missing server binary succeeded")
		}
	})
}

func TestPrepare_Err(t *testing.T) {
	for name, sc := range map[string]Scenario{
		"NoAgencies":       {Agencies: 0, Bets: 10},
		"NoBets":           {Agencies: 1, Bets: 0},
		"NegativePreload":  {Agencies: 1, Bets: 1, Preload: -1},
		"NegativeWindow":   {Agencies: 1, Bets: 1, Window: -1},
		"NegativeMaxCount": {Agencies: 1, Bets: 1, MaxAmount: -1},
	} {
		t.Run(name, func(t *testing.T) {
			sc.Dir = t.TempDir()
			if _, err := Prepare(sc); err == nil {
				t.Errorf("Prepare(%+v) succeeded", sc)
			}
		})
	}
}

// TestBench_verify checks that a wrong outcome fails the run: a benchmark
// that cannot see a lost bet would measure nothing.
func TestBench_verify(t *testing.T) {
	b := &Bench{sc: Scenario{Agencies: 2, Bets: 3}, files: []agencyFile{{winners: []string{"1", "2"}}, {winners: nil}}}
	ok := []agency.Result{{Sent: 3, Winners: []string{"2", "1"}}, {Sent: 3}}
	res := Result{TotalBets: 6, StoredBets: 6}
	if err := b.verify(res, ok, make([]error, 2)); err != nil {
		t.Fatalf("verify of a right outcome: %v", err)
	}
	for name, tc := range map[string]struct {
		res     Result
		results []agency.Result
		errs    []error
	}{
		"ErrMissingWinner": {res, []agency.Result{{Sent: 3, Winners: []string{"1"}}, {Sent: 3}}, make([]error, 2)},
		"ErrExtraWinner":   {res, []agency.Result{ok[0], {Sent: 3, Winners: []string{"1"}}}, make([]error, 2)},
		"ErrUnsentBets":    {res, []agency.Result{ok[0], {Sent: 2}}, make([]error, 2)},
		"ErrRejected":      {res, []agency.Result{ok[0], {Sent: 3, Rejected: 1}}, make([]error, 2)},
		"ErrAgencyFailed":  {res, ok, []error{nil, errors.New("boom")}},
		"ErrStoredTwice":   {Result{TotalBets: 6, StoredBets: 7}, ok, make([]error, 2)},
	} {
		t.Run(name, func(t *testing.T) {
			if err := b.verify(tc.res, tc.results, tc.errs); err == nil {
				t.Error("verify accepted a wrong outcome")
			}
		})
	}
}

func TestDrawBench_Run(t *testing.T) {
	d, err := PrepareDraw(DrawScenario{Bets: 2500, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r, err := d.Run()
	if err != nil {
		t.Fatal(err)
	}
	if r.StoredBets != 2500 || r.Winners != preloadWinners || r.FileBytes <= 0 {
		t.Errorf("stored %d, winners %d, file %d bytes; want 2500, %d, some", r.StoredBets, r.Winners, r.FileBytes, preloadWinners)
	}
	if r.DrawSeconds <= 0 || r.GoHeapPeak <= 0 {
		t.Errorf("draw %v s, Go heap peak %d: want both measured", r.DrawSeconds, r.GoHeapPeak)
	}
}

func TestMedian(t *testing.T) {
	rs := []Result{{E2ESeconds: 3, Fsyncs: 10}, {E2ESeconds: 1, Fsyncs: 30}, {E2ESeconds: 2, Fsyncs: 20}}
	if m := Median(rs); m.E2ESeconds != 2 || m.Fsyncs != 20 || m.Runs != 3 {
		t.Errorf("Median = e2e %v, fsyncs %d, runs %d; want 2, 20, 3", m.E2ESeconds, m.Fsyncs, m.Runs)
	}
	if m := Median(rs[:2]); m.E2ESeconds != 2 || m.Fsyncs != 20 {
		t.Errorf("Median of two = e2e %v, fsyncs %d; want the means 2, 20", m.E2ESeconds, m.Fsyncs)
	}
	ds := []DrawResult{{DrawSeconds: 5}, {DrawSeconds: 1}, {DrawSeconds: 4}}
	if m := MedianDraw(ds); m.DrawSeconds != 4 || m.Runs != 3 {
		t.Errorf("MedianDraw = %v s, %d runs; want 4, 3", m.DrawSeconds, m.Runs)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {0.1, 1}} {
		if got := percentile(d, tc.p); got != tc.want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(none) = %v, want 0", got)
	}
}

var (
	binDir     string // removed by TestMain
	serverOnce sync.Once
	serverPath string
	serverErr  error
)

// TestMain also fails the package if a goroutine (a session, an agency, a
// sampler) outlives the tests: cmd/bench runs scenarios back to back, and
// a leftover would load the next run.
func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "bench-test-bin-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	if code == 0 {
		if err := goleak.Find(raftLeaks...); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// raftLeaks are goroutines hashicorp/raft leaves behind once every node
// has stopped: NetworkTransport.Close closes its listener but neither the
// connections it accepted nor those pooled to the other nodes (only
// CloseStreams does, which replica.Replica.Close does not call), so the
// handlers of accepted connections stay blocked reading. They belong to
// package replica, not to the benchmark; in a process that exits they are
// gone with it.
var raftLeaks = []goleak.Option{goleak.IgnoreAnyFunction("github.com/hashicorp/raft.(*NetworkTransport).handleConn")}

// serverBinary builds cmd/server once per test binary.
func serverBinary(t *testing.T) string {
	t.Helper()
	serverOnce.Do(func() {
		serverPath = filepath.Join(binDir, "server")
		out, err := exec.Command("go", "build", "-o", serverPath, "lottery/cmd/server").CombinedOutput()
		if err != nil {
			serverErr = errors.New(string(out))
		}
	})
	if serverErr != nil {
		t.Fatalf("build the server: %v", serverErr)
	}
	return serverPath
}
