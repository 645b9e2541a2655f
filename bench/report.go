package bench

import (
	"fmt"
	"io"
)

// Median returns the median of each figure over several runs of the same
// scenario.
func Median(rs []Result) Result {
	if len(rs) == 0 {
		return Result{}
	}
	m := rs[0]
	m.Runs = len(rs)
	f := func(get func(Result) float64) float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = get(r)
		}
		return median(xs)
	}
	i := func(get func(Result) int64) int64 { return int64(f(func(r Result) float64 { return float64(get(r)) })) }
	m.E2ESeconds = f(func(r Result) float64 { return r.E2ESeconds })
	m.UploadSeconds = f(func(r Result) float64 { return r.UploadSeconds })
	m.BetsPerSecond = f(func(r Result) float64 { return r.BetsPerSecond })
	m.AckP50Ms = f(func(r Result) float64 { return r.AckP50Ms })
	m.AckP99Ms = f(func(r Result) float64 { return r.AckP99Ms })
	m.AckMaxMs = f(func(r Result) float64 { return r.AckMaxMs })
	m.CPUSeconds = f(func(r Result) float64 { return r.CPUSeconds })
	m.Batches = i(func(r Result) int64 { return r.Batches })
	m.PeakRSS = i(func(r Result) int64 { return r.PeakRSS })
	m.GoHeapPeak = i(func(r Result) int64 { return r.GoHeapPeak })
	m.GoMappedPeak = i(func(r Result) int64 { return r.GoMappedPeak })
	m.Fsyncs = i(func(r Result) int64 { return r.Fsyncs })
	m.StoredBets = i(func(r Result) int64 { return r.StoredBets })
	m.BetsBytes = i(func(r Result) int64 { return r.BetsBytes })
	m.JournalBytes = i(func(r Result) int64 { return r.JournalBytes })
	m.TreeBytes = i(func(r Result) int64 { return r.TreeBytes })
	m.ReceiptsBytes = i(func(r Result) int64 { return r.ReceiptsBytes })
	m.AdminPolls = i(func(r Result) int64 { return r.AdminPolls })
	return m
}

// Report writes a human-readable summary of a result.
func (r Result) Report(w io.Writer) {
	runs := "1 run"
	if r.Runs > 1 {
		runs = fmt.Sprintf("median of %d runs", r.Runs)
	}
	durability := "durable"
	if r.NoSync {
		durability = "nosync"
	}
	transport := "mutual TLS"
	if !r.TLS {
		transport = "plain TCP"
	}
	fmt.Fprintf(w, "scenario     %d agencies x %d bets = %d bets, maxamount %d, window %d, %s, %s, central %s, preloaded %d (%s)\n",
		r.Agencies, r.BetsPerAgency, r.TotalBets, r.MaxAmount, r.Window, durability, transport, r.Central, r.Preloaded, runs)
	fmt.Fprintf(w, "end to end   %.3f s (agencies start to last winners answer)\n", r.E2ESeconds)
	fmt.Fprintf(w, "ingest       %.0f bets/s (upload phase %.3f s)\n", r.BetsPerSecond, r.UploadSeconds)
	fmt.Fprintf(w, "batch ack    p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%d batches)\n", r.AckP50Ms, r.AckP99Ms, r.AckMaxMs, r.Batches)
	fmt.Fprintf(w, "peak RSS     %s (%s)", fmtBytes(r.PeakRSS), r.RSSScope)
	if r.GoHeapPeak >= 0 {
		fmt.Fprintf(w, "; Go heap peak %s, Go mapped peak %s", fmtBytes(r.GoHeapPeak), fmtBytes(r.GoMappedPeak))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "CPU          %.2f s (%s)\n", r.CPUSeconds, r.CPUScope)
	if r.Fsyncs >= 0 {
		fmt.Fprintf(w, "fsyncs       %d (%.1f batches per group commit)\n", r.Fsyncs, groupShare(r))
	} else {
		fmt.Fprintln(w, "fsyncs       n/a (the server binary does not report them)")
	}
	fmt.Fprintf(w, "verified     %d bets stored, %d winners answered\n", r.StoredBets, r.Winners)
	if r.BetsBytes > 0 {
		audit := "audit log off"
		if r.Audit {
			audit = "audit log on"
		}
		fmt.Fprintf(w, "on disk      bets.csv %s, journal %s, tree %s (%.1f %% of bets.csv), receipts %s (%s)\n",
			fmtBytes(r.BetsBytes), fmtBytes(r.JournalBytes), fmtBytes(r.TreeBytes),
			100*float64(r.TreeBytes)/float64(r.BetsBytes), fmtBytes(r.ReceiptsBytes), audit)
	}
	if r.Admin {
		fmt.Fprintf(w, "admin        on: /status.json and /metrics answered %d fetches during the upload\n", r.AdminPolls)
	}
}

// groupShare is batches per group commit: every group makes three fsyncs
// (bets file, journal and the audit log's tree, in parallel), plus a few
// for Finished marks; a replicated central's fsyncs are summed over its
// nodes, each storing every batch (Raft's own log fsyncs are not counted).
func groupShare(r Result) float64 {
	if r.Fsyncs < 3 {
		return 0
	}
	return float64(r.Batches) / (float64(r.Fsyncs) / 3 / float64(max(r.Centrals, 1)))
}
