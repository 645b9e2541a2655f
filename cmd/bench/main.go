// Command bench measures the lottery end to end: a real central (in this
// process, or the server binary with -server-bin) on loopback with durable
// storage in a temporary directory, and many agencies uploading generated
// files at once. It prints end-to-end time, ingest throughput, batch ack
// latency, the central's peak RSS and CPU, and fsyncs, checks that every
// agency got exactly its winners, and exits 1 if not. With -draw-only it
// times the draw over a store of -bets rows instead. Package bench defines
// every figure precisely.
//
//	bin/bench -agencies 64 -bets 100000 -runs 3 -json
//	bin/bench -agencies 64 -bets 100000 -runs 3 -centrals 1,3
//	bin/bench -agencies 64 -bets 100000 -runs 3 -admin off,on
//	bin/bench -centrals 3 -failover 20 -agencies 4 -bets 100000
//	bin/bench -draw-only -bets 10000000
//	bin/bench -restart -server-bin bin/server,/tmp/old/server -sizes 10000,1000000,10000000
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"lottery/bench"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // a run failed or its verification did
	exitUsage  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	sc         bench.Scenario
	centrals   []int  // the central sizes compared, run after run
	admin      []bool // the admin listener off and on, compared run after run
	runs       int
	drawOnly   bool
	restart    bool
	sizes      []int64
	json       bool
	quiet      bool
	cpuProfile string
	memProfile string
}

const usage = `usage: bench [flags]
  Runs a real central on loopback with durable storage and -agencies
  agencies uploading generated files at once; reports end-to-end time,
  bets/s, batch ack latency, the central's peak RSS and CPU, and fsyncs,
  and exits 1 if an agency did not get exactly its winners. With
  -draw-only it times the draw over a store of -bets rows instead.

  -restart times the start of the -server-bin binaries (comma-separated:
  the code before a change and after, alternated) on a central already
  holding each of -sizes stored bets, durable: from exec to an accepted
  connection (listen) and to a Welcome.

  -centrals 3 runs a replicated central of 3 in-process nodes (Raft over
  mutual TLS, each with its own durable store); -centrals 1,3 alternates
  the single central and the group, run after run, and reports both.
  -failover N (with -centrals 3 or 5) kills the leader N times during
  uploads of -agencies agencies each and reports the failover times.

  -admin on runs the single central with its admin listener (metrics
  counted, the status page and /metrics polled every -admin-poll, 100 ms,
  during the upload; with -server-bin, ADMIN_ADDRESS on a free port
  instead of off); -admin off,on alternates the two, run after run, and
  reports both.

`

// parseFlags reads the flags. For -h it prints the usage on stdout and
// returns flag.ErrHelp; for a bad flag, the error and the usage on stderr.
func parseFlags(args []string, stdout, stderr io.Writer) (o options, err error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	defer func() {
		switch {
		case errors.Is(err, flag.ErrHelp):
			fs.SetOutput(stdout)
		case err != nil:
			fmt.Fprintln(stderr, "bench:", err)
			fs.SetOutput(stderr)
		default:
			return
		}
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}()
	fs.IntVar(&o.sc.Agencies, "agencies", 5, "agencies uploading at once")
	fs.IntVar(&o.sc.Bets, "bets", 20000, "bets per agency file (with -draw-only: bets stored for the draw)")
	fs.IntVar(&o.sc.Winners, "winners", bench.DefaultWinners, "winning bets per agency file")
	fs.IntVar(&o.sc.MaxAmount, "maxamount", 0, "bets per batch (0: the agency's default)")
	fs.IntVar(&o.sc.Window, "window", 0, "batches in flight per agency (0: the agency's default)")
	fs.BoolVar(&o.sc.NoSync, "nosync", false, "store without fsync (shows what durability costs)")
	fs.BoolVar(&o.sc.TLS, "tls", true, "mutual TLS on every connection, as the programs run by default (-tls=false shows what it costs)")
	fs.BoolVar(&o.sc.Audit, "audit", true, "signed receipts for every ack, verified and kept by the agencies, and the signed draw statement, as the programs run by default (-audit=false shows what they cost; the tree is always kept)")
	fs.StringVar(&o.sc.ServerBin, "server-bin", "", "run this server binary as a child process instead of the central in-process")
	fs.StringVar(&o.sc.ServerLogLevel, "server-log-level", "INFO", "LOGGING_LEVEL of the -server-bin child (its log goes to a file in the run directory)")
	centrals := fs.String("centrals", "1", "central sizes, comma-separated, alternated run after run: 1 (the single central), 3 or 5 (a replicated central of in-process nodes)")
	adminModes := fs.String("admin", "off", "the central's admin listener: off, on, or off,on to alternate them run after run (a single central)")
	fs.DurationVar(&o.sc.AdminPoll, "admin-poll", bench.DefaultAdminPoll, "with -admin on: fetch /status.json and /metrics this often during the upload (0: never, the instruments alone)")
	fs.IntVar(&o.sc.Failover, "failover", 0, "kill the leader of a replicated central this many times during uploads (-agencies per kill) and report the failover times")
	fs.DurationVar(&o.sc.HeartbeatTimeout, "heartbeat", 0, "Raft heartbeat timeout of a replicated central (0: the replica's default, 1s)")
	fs.Int64Var(&o.sc.Preload, "preload", 0, "bets already stored when the central starts (to measure RSS against stored bets)")
	fs.Uint64Var(&o.sc.Seed, "seed", bench.DefaultSeed, "seed of the generated data")
	fs.StringVar(&o.sc.Dir, "dir", "", "directory for data and stores (default: a temporary directory, removed at the end)")
	fs.DurationVar(&o.sc.Timeout, "timeout", bench.DefaultTimeout, "limit of one run")
	fs.IntVar(&o.runs, "runs", 1, "runs; the report gives the medians")
	fs.BoolVar(&o.drawOnly, "draw-only", false, "time the draw over a store of -bets rows instead")
	fs.BoolVar(&o.restart, "restart", false, "time the restart of -server-bin on centrals holding each of -sizes bets instead")
	sizes := fs.String("sizes", "10000,1000000,10000000", "with -restart: stored bets, comma-separated")
	fs.BoolVar(&o.json, "json", false, "print the result as one JSON object on the last line")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured runs to this file")
	fs.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile (pprof allocs, cumulative since start: data generation shows as gendata) after the runs to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.runs < 1 || o.sc.Agencies < 1 || o.sc.Bets < 1 || o.sc.Preload < 0 || o.sc.MaxAmount < 0 || o.sc.Window < 0 {
		return o, errors.New("-runs, -agencies and -bets must be at least 1; -preload, -maxamount and -window not negative")
	}
	if o.centrals, err = parseCentrals(*centrals); err != nil {
		return o, err
	}
	if o.admin, err = parseAdmin(*adminModes); err != nil {
		return o, err
	}
	if o.restart {
		if o.sizes, err = parseSizes(*sizes); err != nil {
			return o, err
		}
		if o.sc.ServerBin == "" {
			return o, errors.New("-restart needs -server-bin")
		}
	}
	o.sc.Centrals = slices.Max(o.centrals)
	if o.sc.Centrals > 1 && (o.drawOnly || o.sc.ServerBin != "" || o.sc.Preload > 0) {
		return o, errors.New("-centrals 3 or 5 runs in this process, without -draw-only, -server-bin or -preload")
	}
	if o.sc.Failover < 0 || (o.sc.Failover > 0 && (len(o.centrals) != 1 || o.sc.Centrals < 3)) {
		return o, errors.New("-failover needs one replicated central: -centrals 3 or 5")
	}
	if slices.Contains(o.admin, true) && (o.sc.Centrals > 1 || o.drawOnly || o.restart || o.sc.Failover > 0) {
		return o, errors.New("-admin on measures the single central's ingest: not with -centrals 3 or 5, -draw-only, -restart or -failover")
	}
	if !o.quiet {
		o.sc.Progress = stderr
	}
	return o, nil
}

// parseSizes reads -sizes: stored bets, each at least 1.
func parseSizes(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-sizes %q: numbers of bets, comma-separated", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseCentrals reads -centrals: sizes of 1, 3 or 5, each once.
func parseCentrals(s string) ([]int, error) {
	var ks []int
	for _, f := range strings.Split(s, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || (k != 1 && k != 3 && k != 5) || slices.Contains(ks, k) {
			return nil, fmt.Errorf("-centrals %q: sizes 1, 3 or 5, comma-separated, each once", s)
		}
		ks = append(ks, k)
	}
	return ks, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch {
	case o.restart:
		err = runRestart(ctx, o, stdout, stderr)
	case o.drawOnly:
		err = runDraw(o, stdout, stderr)
	case o.sc.Failover > 0:
		err = runFailover(ctx, o, stdout, stderr)
	default:
		err = runScenario(ctx, o, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return exitFailed
	}
	return exitOK
}

func runScenario(ctx context.Context, o options, stdout, stderr io.Writer) error {
	logf(o, stderr, "bench: generating %d agency files of %d bets (not measured)", o.sc.Agencies, o.sc.Bets)
	if o.sc.Preload > 0 {
		logf(o, stderr, "bench: preloading %d stored bets (not measured)", o.sc.Preload)
	}
	b, err := bench.Prepare(o.sc)
	if err != nil {
		return err
	}
	defer b.Close()
	variants := o.variants()
	results := make([][]bench.Result, len(variants))
	err = profiled(o, func() error {
		for i := 1; i <= o.runs; i++ {
			for j, v := range variants {
				r, err := b.RunVariant(ctx, i, v)
				if err != nil {
					r.Report(stderr)
					return fmt.Errorf("run %d (%s): %w", i, variantName(v), err)
				}
				if o.runs > 1 || len(variants) > 1 {
					fmt.Fprintf(stdout, "run %d: %s%.3f s end to end, %.0f bets/s, ack p99 %.2f ms\n", i, variantLabel(variants, v), r.E2ESeconds, r.BetsPerSecond, r.AckP99Ms)
				}
				results[j] = append(results[j], r)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	medians := make([]bench.Result, len(variants))
	for j := range variants {
		medians[j] = bench.Median(results[j])
		medians[j].Report(stdout)
	}
	if len(variants) > 1 {
		fmt.Fprintf(stdout, "side by side (medians of %d runs, alternated):\n", o.runs)
		for j, v := range variants {
			m := medians[j]
			fmt.Fprintf(stdout, "  %-22s %10.0f bets/s  upload %.3f s  end to end %.3f s  ack p50 %.2f ms  p99 %.2f ms  CPU %.2f s  (%+.1f %% vs %s; run by run %+.1f %%)\n",
				variantName(v), m.BetsPerSecond, m.UploadSeconds, m.E2ESeconds, m.AckP50Ms, m.AckP99Ms, m.CPUSeconds,
				100*(m.BetsPerSecond/medians[0].BetsPerSecond-1), variantName(variants[0]), 100*(pairedRatio(results[j], results[0])-1))
		}
	}
	if o.json {
		if len(medians) == 1 {
			return printJSON(stdout, medians[0])
		}
		return printJSON(stdout, map[string]any{"results": medians})
	}
	return nil
}

// variants are the runs compared: every central size with every admin
// mode, in that order, alternated run after run.
func (o options) variants() []bench.Variant {
	var vs []bench.Variant
	for _, k := range o.centrals {
		for _, a := range o.admin {
			vs = append(vs, bench.Variant{Centrals: k, Admin: a})
		}
	}
	return vs
}

// variantName names a variant: "1 central(s), admin off".
func variantName(v bench.Variant) string {
	admin := "off"
	if v.Admin {
		admin = "on"
	}
	return fmt.Sprintf("%d central(s), admin %s", max(v.Centrals, 1), admin)
}

// variantLabel names the variant of a run line when several are compared.
func variantLabel(vs []bench.Variant, v bench.Variant) string {
	if len(vs) == 1 {
		return ""
	}
	return variantName(v) + ", "
}

// parseAdmin reads -admin: off, on, or both, comma-separated, each once.
func parseAdmin(s string) ([]bool, error) {
	var modes []bool
	for _, f := range strings.Split(s, ",") {
		var on bool
		switch strings.TrimSpace(f) {
		case "off":
		case "on":
			on = true
		default:
			return nil, fmt.Errorf("-admin %q: off, on, or off,on", s)
		}
		if slices.Contains(modes, on) {
			return nil, fmt.Errorf("-admin %q: each mode once", s)
		}
		modes = append(modes, on)
	}
	return modes, nil
}

func runFailover(ctx context.Context, o options, stdout, stderr io.Writer) error {
	logf(o, stderr, "bench: generating %d agency files of %d bets (not measured)", o.sc.Agencies*o.sc.Failover, o.sc.Bets)
	b, err := bench.Prepare(o.sc)
	if err != nil {
		return err
	}
	defer b.Close()
	r, err := b.RunFailover(ctx)
	if err != nil {
		return err
	}
	r.Report(stdout)
	if o.json {
		return printJSON(stdout, r)
	}
	return nil
}

func runRestart(ctx context.Context, o options, stdout, stderr io.Writer) error {
	sc := bench.RestartScenario{Bins: strings.Split(o.sc.ServerBin, ","), Sizes: o.sizes, Runs: o.runs, Dir: o.sc.Dir}
	if !o.quiet {
		sc.Progress = stderr
	}
	rs, err := bench.RunRestart(ctx, sc)
	if err != nil {
		return err
	}
	bench.ReportRestart(stdout, rs)
	if o.json {
		return printJSON(stdout, map[string]any{"restarts": rs})
	}
	return nil
}

func runDraw(o options, stdout, stderr io.Writer) error {
	logf(o, stderr, "bench: writing a store of %d bets (not measured)", o.sc.Bets)
	start := time.Now()
	d, err := bench.PrepareDraw(bench.DrawScenario{Bets: int64(o.sc.Bets), Seed: o.sc.Seed, Dir: o.sc.Dir})
	if err != nil {
		return err
	}
	defer d.Close()
	logf(o, stderr, "bench: store written in %.1f s; drawing", time.Since(start).Seconds())
	var results []bench.DrawResult
	err = profiled(o, func() error {
		for i := 1; i <= o.runs; i++ {
			r, err := d.Run()
			if err != nil {
				return fmt.Errorf("draw %d: %w", i, err)
			}
			if o.runs > 1 {
				fmt.Fprintf(stdout, "draw %d: %.3f s\n", i, r.DrawSeconds)
			}
			results = append(results, r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	m := bench.MedianDraw(results)
	m.Report(stdout)
	if o.json {
		return printJSON(stdout, m)
	}
	return nil
}

// profiled runs fn under the CPU profile and writes the allocation profile
// after it, as the flags ask.
func profiled(o options, fn func() error) error {
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if err := fn(); err != nil {
		return err
	}
	if o.memProfile != "" {
		f, err := os.Create(o.memProfile)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", line)
	return err
}

func logf(o options, w io.Writer, format string, args ...any) {
	if !o.quiet {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// pairedRatio is the median, over the runs, of a variant's bets/s divided
// by the first variant's in the same round: on a shared machine whose speed
// drifts from minute to minute, runs made one after the other compare
// better than the medians of each variant do.
func pairedRatio(rs, base []bench.Result) float64 {
	var ratios []float64
	for i := range min(len(rs), len(base)) {
		if base[i].BetsPerSecond > 0 {
			ratios = append(ratios, rs[i].BetsPerSecond/base[i].BetsPerSecond)
		}
	}
	if len(ratios) == 0 {
		return 1
	}
	slices.Sort(ratios)
	if n := len(ratios); n%2 == 1 {
		return ratios[n/2]
	}
	n := len(ratios)
	return (ratios[n/2-1] + ratios[n/2]) / 2
}
