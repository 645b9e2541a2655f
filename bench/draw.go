package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"lottery/central"
	"lottery/storage"
)

// DrawScenario measures the draw alone: a store holding Bets rows, and
// central.FindWinners over it.
type DrawScenario struct {
	Bets int64
	Seed uint64
	Dir  string // empty: a temporary directory removed by Close
}

// DrawResult is what one draw measured (or the medians of several).
type DrawResult struct {
	StoredBets    int64   `json:"stored_bets"`
	FileBytes     int64   `json:"file_bytes"`
	Runs          int     `json:"runs"`
	DrawSeconds   float64 `json:"draw_seconds"`
	CPUSeconds    float64 `json:"draw_cpu_seconds"`
	RowsPerSecond float64 `json:"rows_per_second"`
	Winners       int64   `json:"winners"`
	GoHeapPeak    int64   `json:"go_heap_peak_bytes"`
	GoMappedPeak  int64   `json:"go_mapped_peak_bytes"`
	RSSBefore     int64   `json:"rss_before_bytes"`
	PeakRSS       int64   `json:"peak_rss_bytes"`
}

// DrawBench is a prepared store for repeated draws.
type DrawBench struct {
	sc      DrawScenario
	dir     string
	ownDir  bool
	path    string
	winners int64
	store   *storage.Store
}

// PrepareDraw writes the store (not measured) and opens it durably, as the
// central would.
func PrepareDraw(sc DrawScenario) (*DrawBench, error) {
	if sc.Bets < 1 {
		return nil, errors.New("bench: the draw needs at least 1 bet")
	}
	if sc.Seed == 0 {
		sc.Seed = DefaultSeed
	}
	d := &DrawBench{sc: sc, dir: sc.Dir}
	var err error
	if d.dir == "" {
		if d.dir, err = os.MkdirTemp("", "lottery-draw-"); err != nil {
			return nil, err
		}
		d.ownDir = true
	}
	d.path = filepath.Join(d.dir, "bets.csv")
	if d.winners, err = preload(d.path, sc.Bets, 1, sc.Seed); err != nil {
		d.Close()
		return nil, err
	}
	if d.store, _, err = storage.Open(d.path, storage.Options{}); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Run times one draw and checks it found every winner.
func (d *DrawBench) Run() (DrawResult, error) {
	res := DrawResult{Runs: 1}
	settleMemory()
	res.RSSBefore = procStatusBytes("self", "VmRSS:")
	mem := startMemSampler()
	cpu0, start := processCPUSeconds(), time.Now()
	winners, err := central.FindWinners(d.store)
	elapsed := time.Since(start)
	res.CPUSeconds = processCPUSeconds() - cpu0
	res.GoHeapPeak, res.GoMappedPeak = mem.Stop()
	res.PeakRSS = peakRSS("self")
	if err != nil {
		return res, err
	}
	st := d.store.Stats()
	res.StoredBets, res.FileBytes = st.Bets, st.Size
	res.DrawSeconds = elapsed.Seconds()
	res.RowsPerSecond = float64(st.Bets) / res.DrawSeconds
	for _, w := range winners {
		res.Winners += int64(len(w))
	}
	if res.StoredBets != d.sc.Bets || res.Winners != d.winners {
		return res, fmt.Errorf("verification failed: the draw saw %d bets and %d winners, want %d and %d",
			res.StoredBets, res.Winners, d.sc.Bets, d.winners)
	}
	return res, nil
}

// Store returns the prepared store, open, for benchmarks of their own.
func (d *DrawBench) Store() *storage.Store { return d.store }

// Winners returns how many of the stored bets win.
func (d *DrawBench) Winners() int64 { return d.winners }

// Close closes the store and removes the temporary directory.
func (d *DrawBench) Close() error {
	var err error
	if d.store != nil {
		err = d.store.Close()
	}
	if d.ownDir {
		err = errors.Join(err, os.RemoveAll(d.dir))
	}
	return err
}

// MedianDraw returns the median of each figure over several draws.
func MedianDraw(rs []DrawResult) DrawResult {
	if len(rs) == 0 {
		return DrawResult{}
	}
	m := rs[0]
	m.Runs = len(rs)
	f := func(get func(DrawResult) float64) float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = get(r)
		}
		return median(xs)
	}
	m.DrawSeconds = f(func(r DrawResult) float64 { return r.DrawSeconds })
	m.RowsPerSecond = f(func(r DrawResult) float64 { return r.RowsPerSecond })
	m.CPUSeconds = f(func(r DrawResult) float64 { return r.CPUSeconds })
	m.GoHeapPeak = int64(f(func(r DrawResult) float64 { return float64(r.GoHeapPeak) }))
	m.GoMappedPeak = int64(f(func(r DrawResult) float64 { return float64(r.GoMappedPeak) }))
	m.RSSBefore = int64(f(func(r DrawResult) float64 { return float64(r.RSSBefore) }))
	m.PeakRSS = int64(f(func(r DrawResult) float64 { return float64(r.PeakRSS) }))
	return m
}

// Report writes a human-readable summary of a draw result.
func (r DrawResult) Report(w io.Writer) {
	runs := "1 run"
	if r.Runs > 1 {
		runs = fmt.Sprintf("median of %d runs", r.Runs)
	}
	fmt.Fprintf(w, "draw         %d stored bets (%s file), %s\n", r.StoredBets, fmtBytes(r.FileBytes), runs)
	fmt.Fprintf(w, "time         %.3f s (%.0f rows/s), %.3f s of CPU (this process), %d winners\n", r.DrawSeconds, r.RowsPerSecond, r.CPUSeconds, r.Winners)
	fmt.Fprintf(w, "memory       Go heap peak %s, Go mapped peak %s; process RSS %s before, peak %s during\n",
		fmtBytes(r.GoHeapPeak), fmtBytes(r.GoMappedPeak), fmtBytes(r.RSSBefore), fmtBytes(r.PeakRSS))
}
