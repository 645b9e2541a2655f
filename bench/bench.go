// Package bench measures the lottery end to end: a real central (this
// process's central code, or the server binary as a child process) with
// real TCP on loopback and the real durable storage in a temporary
// directory, and many agencies uploading generated files at once. It is the
// engine of cmd/bench; docs/performance.md records what it measured.
//
// Definitions of the figures (Result):
//
//   - e2e_seconds: from starting the agencies (after the data was generated
//     and the central is listening) until the last agency has its winners.
//   - upload_seconds: from starting the agencies until the last batch ack
//     reaches its agency. It includes connecting, Hello and reading the
//     files, but not Finished, the draw or the winners answers.
//   - bets_per_second (ingest): agencies × bets / upload_seconds.
//   - ack_p50_ms, ack_p99_ms: percentiles of the time from writing a batch
//     frame to receiving its ack, over every batch of the run (agency
//     Config.OnAck). With a window, this includes the time a batch waits
//     behind the ones sent before it.
//   - central_peak_rss_bytes: VmHWM of the server process with -server-bin;
//     in-process it is this whole process (central and agencies), reset
//     after the data generation, which is why go_heap_peak_bytes (the Go
//     heap, sampled every 10 ms) is also given.
//   - cpu_seconds: user+system CPU of the server process, or of this whole
//     process in-process.
//   - fsyncs: fsync calls of the store (2 per group commit: bets file and
//     journal); -1 with -server-bin, where the process does not report it.
//     With a replicated central, summed over its nodes' stores (Raft's own
//     log is not counted).
//
// With Centrals 3 or 5 the central is a replicated one: that many nodes in
// this process (cluster.go), each with its own durable store, Raft state
// and certificate, wired as cmd/server wires a node; the agencies are given
// every node's address, and a run also checks that every node's bets file
// is the same. RunFailover (failover.go) kills the leader during uploads
// and times how long the agencies wait for the new one.
package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"lottery/agency"
	"lottery/central"
	"lottery/logline"
	"lottery/pki"
)

// Scenario is one benchmark configuration.
type Scenario struct {
	Agencies  int
	Bets      int // per agency
	Winners   int // winning bets in each agency file
	MaxAmount int // bets per batch; 0 is the agency's default
	Window    int // batches in flight per agency; 0 is the agency's default
	NoSync    bool
	// TLS runs every connection over mutual TLS with a PKI issued for the
	// run (not measured), as the programs do by default.
	TLS bool
	// Audit signs checkpoints with a log key issued for the run and has
	// every agency ask for, verify and keep receipts, as the programs do
	// by default with a PKI (docs/audit.md). The tree itself is always
	// kept: a build before the audit log is the baseline of its cost.
	Audit bool
	// ServerBin, if set, is the server binary to run as a child process;
	// otherwise the central runs in this process.
	ServerBin      string
	ServerLogLevel string // LOGGING_LEVEL of the child; default INFO
	// Preload is how many bets the store already holds when the central
	// starts (under agency numbers above Agencies, so they do not clash).
	Preload int64
	// Centrals is the largest central Prepare readies: 0 or 1, the single
	// central; 3 or 5, a replicated central of that many in-process nodes
	// (see cluster.go), whose node certificates are issued too. Run runs
	// with it; RunCentrals runs 1 or any group size up to it.
	Centrals int
	// HeartbeatTimeout is the replicated central's Raft timing (0:
	// replica.DefaultHeartbeatTimeout).
	HeartbeatTimeout time.Duration
	// Failover is how many leader kills RunFailover makes; it uploads
	// Agencies agencies per kill, so Prepare generates the files of
	// Agencies × Failover agencies.
	Failover int
	Seed     uint64
	// Dir is where data and stores go; empty means a temporary directory
	// removed by Close.
	Dir     string
	Timeout time.Duration // per run; 0 means 10 minutes
	// Progress, if set, receives a progress line every ProgressEvery.
	Progress      io.Writer
	ProgressEvery time.Duration
	// AdminPoll is how often a run with the admin listener on (Variant)
	// fetches its /status.json and /metrics during the upload; 0: never,
	// which measures what the instruments cost the ingest path alone.
	AdminPoll time.Duration
}

// Result is what one run measured (or the medians of several runs).
type Result struct {
	Agencies      int     `json:"agencies"`
	BetsPerAgency int     `json:"bets_per_agency"`
	TotalBets     int64   `json:"total_bets"`
	MaxAmount     int     `json:"max_amount"`
	Window        int     `json:"window"`
	NoSync        bool    `json:"nosync"`
	TLS           bool    `json:"tls"`
	Central       string  `json:"central"`
	Centrals      int     `json:"centrals"`
	Preloaded     int64   `json:"preloaded_bets"`
	Runs          int     `json:"runs"`
	E2ESeconds    float64 `json:"e2e_seconds"`
	UploadSeconds float64 `json:"upload_seconds"`
	BetsPerSecond float64 `json:"bets_per_second"`
	Batches       int64   `json:"batches"`
	AckP50Ms      float64 `json:"ack_p50_ms"`
	AckP99Ms      float64 `json:"ack_p99_ms"`
	AckMaxMs      float64 `json:"ack_max_ms"`
	PeakRSS       int64   `json:"central_peak_rss_bytes"`
	RSSScope      string  `json:"rss_scope"`
	GoHeapPeak    int64   `json:"go_heap_peak_bytes"`
	GoMappedPeak  int64   `json:"go_mapped_peak_bytes"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	CPUScope      string  `json:"cpu_scope"`
	Fsyncs        int64   `json:"fsyncs"`
	StoredBets    int64   `json:"stored_bets"`
	Winners       int     `json:"winners"`
	// What the run left on disk (the single central's files; 0 when a
	// file is not there, as bets.csv.tlog before the audit log).
	Audit         bool  `json:"audit"`
	BetsBytes     int64 `json:"bets_bytes"`
	JournalBytes  int64 `json:"journal_bytes"`
	TreeBytes     int64 `json:"tree_bytes"`
	ReceiptsBytes int64 `json:"receipts_bytes"`
	// Admin: the central ran its admin listener, polled during the
	// upload AdminPolls times (Variant.Admin).
	Admin      bool  `json:"admin"`
	AdminPolls int64 `json:"admin_polls"`
}

// Defaults of Scenario.
const (
	DefaultWinners       = 3
	DefaultSeed          = 1
	DefaultTimeout       = 10 * time.Minute
	DefaultProgressEvery = 500 * time.Millisecond
)

// Bench is a prepared scenario: its data is generated once and reused by
// every run; each run gets a fresh store.
type Bench struct {
	sc        Scenario
	dir       string
	ownDir    bool
	files     []agencyFile
	preloaded string // a store holding the preloaded bets, copied per run
	preWins   int64
	// With TLS: the PKI's directory, the central's config and each
	// agency's, built once (reading keys is not what is measured).
	pkiDir    string
	serverTLS *tls.Config
	agencyTLS []*tls.Config
	nodes     []nodeTLS // server1 … serverK, with Centrals K > 1
	// With Audit: the log's keys, and where this run's agencies keep
	// their receipts.
	logSigner note.Signer
	logKey    note.Verifier
	receipts  string
}

// Prepare checks the scenario and generates its data. None of this is
// measured.
func Prepare(sc Scenario) (*Bench, error) {
	if sc.Agencies < 1 || sc.Bets < 1 || sc.Preload < 0 || sc.MaxAmount < 0 || sc.Window < 0 {
		return nil, errors.New("bench: agencies and bets must be at least 1; preload, maxamount and window not negative")
	}
	if err := checkCentrals(sc); err != nil {
		return nil, err
	}
	if sc.Winners == 0 {
		sc.Winners = DefaultWinners
	}
	sc.Winners = min(max(sc.Winners, 0), sc.Bets)
	if sc.Seed == 0 {
		sc.Seed = DefaultSeed
	}
	if sc.Timeout <= 0 {
		sc.Timeout = DefaultTimeout
	}
	if sc.ProgressEvery <= 0 {
		sc.ProgressEvery = DefaultProgressEvery
	}
	if sc.ServerLogLevel == "" {
		sc.ServerLogLevel = "INFO"
	}
	b := &Bench{sc: sc, dir: sc.Dir}
	var err error
	if b.dir == "" {
		if b.dir, err = os.MkdirTemp("", "lottery-bench-"); err != nil {
			return nil, err
		}
		b.ownDir = true
	}
	data := filepath.Join(b.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		b.Close()
		return nil, err
	}
	if b.files, err = writeAgencyFiles(data, sc.totalAgencies(), sc.Bets, sc.Winners, sc.Seed); err != nil {
		b.Close()
		return nil, fmt.Errorf("generate agency files: %w", err)
	}
	if sc.TLS || sc.Centrals > 1 {
		if err := b.preparePKI(); err != nil {
			b.Close()
			return nil, fmt.Errorf("issue the PKI: %w", err)
		}
	}
	if sc.Audit {
		b.receipts = filepath.Join(b.dir, "receipts") // each run's own, for Run
		if err := b.prepareLogKey(); err != nil {
			b.Close()
			return nil, fmt.Errorf("issue the log key: %w", err)
		}
	}
	if sc.Preload > 0 {
		b.preloaded = filepath.Join(data, "preloaded.csv")
		if b.preWins, err = preload(b.preloaded, sc.Preload, sc.Agencies+1, sc.Seed); err != nil {
			b.Close()
			return nil, fmt.Errorf("preload: %w", err)
		}
	}
	return b, nil
}

// preparePKI issues the CA, the central's, every node's and every
// agency's certificate (pki.Issue, as bin/pki does) and loads their TLS
// configs. Without TLS only the nodes' are loaded: Raft always speaks
// mutual TLS.
func (b *Bench) preparePKI() error {
	b.pkiDir = filepath.Join(b.dir, ".pki")
	agencies := b.sc.totalAgencies()
	if _, err := pki.Issue(pki.Options{Dir: b.pkiDir, Agencies: agencies, Centrals: max(b.sc.Centrals, 0)}); err != nil {
		return err
	}
	var err error
	if b.sc.Centrals > 1 {
		if b.nodes, err = loadNodeTLS(b.pkiDir, b.sc.Centrals, b.sc.TLS); err != nil {
			return err
		}
	}
	if !b.sc.TLS {
		return nil
	}
	in := func(name string) string { return filepath.Join(b.pkiDir, name) }
	if b.serverTLS, err = pki.ServerConfig(in(pki.CentralCertFile), in(pki.CentralKeyFile), in(pki.CAFile), nil); err != nil {
		return err
	}
	b.agencyTLS = make([]*tls.Config, agencies)
	for i := range b.agencyTLS {
		if b.agencyTLS[i], err = pki.ClientConfig(in(pki.AgencyCertFile(i+1)), in(pki.AgencyKeyFile(i+1)), in(pki.CAFile)); err != nil {
			return err
		}
	}
	return nil
}

// Close removes the temporary directory, if Prepare made it.
func (b *Bench) Close() error {
	if b.ownDir {
		return os.RemoveAll(b.dir)
	}
	return nil
}

// prepareLogKey issues the audit log's key (pki.IssueLogKey, as bin/pki
// does) and loads both halves.
func (b *Bench) prepareLogKey() error {
	if b.pkiDir == "" {
		b.pkiDir = filepath.Join(b.dir, ".pki")
	}
	if _, err := pki.IssueLogKey(b.pkiDir, pki.DefaultLogOrigin); err != nil {
		return err
	}
	var err error
	if b.logSigner, err = pki.ReadLogSigner(filepath.Join(b.pkiDir, pki.LogKeyFile)); err != nil {
		return err
	}
	b.logKey, err = pki.ReadLogVerifier(filepath.Join(b.pkiDir, pki.LogPubFile))
	return err
}

// Run runs the scenario once (run numbers runs for progress lines and the
// store's directory). It returns the result even when the verification
// failed, with an error saying what was wrong.
func (b *Bench) Run(ctx context.Context, run int) (Result, error) {
	return b.RunCentrals(ctx, run, b.sc.Centrals)
}

// RunCentrals is Run with a central of k nodes: 1 (or 0), the single
// central, or a group size up to the Centrals Prepare readied.
func (b *Bench) RunCentrals(ctx context.Context, run, k int) (Result, error) {
	return b.RunVariant(ctx, run, Variant{Centrals: k})
}

// RunVariant is Run with the central v describes.
func (b *Bench) RunVariant(ctx context.Context, run int, v Variant) (Result, error) {
	sc, k := b.sc, v.Centrals
	if k > 1 && (k > sc.Centrals || pki.CheckCentrals(k) != nil) {
		return Result{}, fmt.Errorf("bench: %d centrals: prepared for 1 to %d (3 or 5 nodes)", k, max(sc.Centrals, 1))
	}
	ctx, cancel := context.WithTimeout(ctx, sc.Timeout)
	defer cancel()
	runDir := filepath.Join(b.dir, fmt.Sprintf("run-%d", run))
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(runDir) // a store of millions of bets is big
	res := Result{
		Agencies: sc.Agencies, BetsPerAgency: sc.Bets, TotalBets: int64(sc.Agencies) * int64(sc.Bets),
		MaxAmount: orDefault(sc.MaxAmount, agency.DefaultMaxAmount), Window: orDefault(sc.Window, agency.DefaultWindow),
		NoSync: sc.NoSync, TLS: sc.TLS, Centrals: max(k, 1), Preloaded: sc.Preload, Runs: 1, Audit: sc.Audit, Admin: v.Admin,
	}
	b.receipts = filepath.Join(runDir, "receipts")
	if v.Admin && k > 1 {
		return res, errAdminCluster
	}
	cut, err := b.startCentral(runDir, k, v.Admin, &res)
	if err != nil {
		return res, fmt.Errorf("start the central: %w", err)
	}
	var (
		acked   atomic.Int64
		lastAck atomic.Int64 // unix nanoseconds of the latest ack
		rtts    = make([][]time.Duration, sc.Agencies)
	)
	stopProgress := b.progress(run, &acked, cut)
	poll := startPolling(cut, sc.AdminPoll)
	start := time.Now()
	results, errs := b.runAgencies(ctx, 0, sc.Agencies, cut.Addr(), func(i int, rtt time.Duration) {
		rtts[i] = append(rtts[i], rtt) // called by agency i's goroutine only
		acked.Add(1)
		now := time.Now().UnixNano()
		for old := lastAck.Load(); now > old && !lastAck.CompareAndSwap(old, now); old = lastAck.Load() {
		}
	})
	end := time.Now()
	stopProgress()
	var pollErr error
	res.AdminPolls, pollErr = poll.stop()
	st, stopErr := cut.Stop()

	res.E2ESeconds = end.Sub(start).Seconds()
	if la := lastAck.Load(); la > 0 {
		res.UploadSeconds = time.Unix(0, la).Sub(start).Seconds()
		res.BetsPerSecond = float64(res.TotalBets) / res.UploadSeconds
	}
	all := slices.Concat(rtts...)
	slices.Sort(all)
	res.Batches = int64(len(all))
	res.AckP50Ms, res.AckP99Ms, res.AckMaxMs = ms(percentile(all, 50)), ms(percentile(all, 99)), ms(percentile(all, 100))
	res.PeakRSS, res.RSSScope, res.GoHeapPeak, res.GoMappedPeak = st.PeakRSS, st.RSSScope, st.HeapPeak, st.MappedPeak
	res.CPUSeconds, res.CPUScope, res.Fsyncs, res.StoredBets = st.CPUSeconds, st.CPUScope, st.Fsyncs, st.StoredBets
	for _, r := range results {
		res.Winners += len(r.Winners)
	}
	res.measureFiles(runDir)
	return res, errors.Join(stopErr, pollErr, b.verify(res, results, errs))
}

// startCentral starts the central a run measures in runDir, with k nodes
// (1: the single one, in this process or as the server binary), and names
// it in res.
func (b *Bench) startCentral(runDir string, k int, admin bool, res *Result) (centralUnderTest, error) {
	sc := b.sc
	betsPath := filepath.Join(runDir, "bets.csv")
	if b.preloaded != "" {
		if err := copyStore(b.preloaded, betsPath); err != nil {
			return nil, fmt.Errorf("copy the preloaded store: %w", err)
		}
	}
	switch {
	case k > 1:
		res.Central = fmt.Sprintf("in-process, %d replicated nodes", k)
		return startCluster(runDir, b.nodes[:k], sc.Agencies, res.Window, sc.NoSync, sc.HeartbeatTimeout, nil, b.logSigner)
	case sc.ServerBin != "":
		res.Central = sc.ServerBin + adminLabel(admin)
		return startChild(sc.ServerBin, runDir, betsPath, sc.Agencies, sc.NoSync, sc.ServerLogLevel, b.pkiDir, b.logSigner != nil, admin)
	}
	res.Central = "in-process" + adminLabel(admin)
	var log *central.Log
	if b.logSigner != nil {
		log = central.NewLog(b.logSigner)
	}
	return startInProcess(betsPath, sc.Agencies, res.Window, sc.NoSync, b.serverTLS, log, admin)
}

// runAgencies runs agencies from+1..to against addr at once, to their end,
// and returns what each did; onAck (if set) gets every ack's round trip,
// from that agency's goroutine.
func (b *Bench) runAgencies(ctx context.Context, from, to int, addr string, onAck func(i int, rtt time.Duration)) ([]agency.Result, []error) {
	results, errs := make([]agency.Result, to), make([]error, to)
	var wg sync.WaitGroup
	b.startAgencies(ctx, from, to, addr, onAck, &wg, results, errs)
	wg.Wait()
	return results[from:], errs[from:]
}

// startAgencies starts agencies from+1..to against addr, each in its own
// goroutine counted in wg, writing what it did to results[i] and errs[i].
func (b *Bench) startAgencies(ctx context.Context, from, to int, addr string, onAck func(i int, rtt time.Duration), wg *sync.WaitGroup, results []agency.Result, errs []error) {
	sc := b.sc
	for i := from; i < to; i++ {
		cfg := agency.Config{ID: i + 1, ServerAddress: addr, DataFile: b.files[i].path,
			MaxAmount: sc.MaxAmount, Window: sc.Window, TLS: b.agencyTLSFor(i)}
		if b.logKey != nil {
			cfg.LogKey, cfg.Receipts = b.logKey, filepath.Join(b.receipts, fmt.Sprintf("agency-%d.receipts", i+1))
		}
		if onAck != nil {
			cfg.OnAck = func(rtt time.Duration) { onAck(i, rtt) }
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := agency.New(cfg, logline.Discard())
			if err == nil {
				results[i], err = a.Run(ctx)
			}
			errs[i] = err
		}()
	}
}

// measureFiles notes the sizes of the files a run left in runDir.
func (r *Result) measureFiles(runDir string) {
	size := func(path string) int64 {
		fi, err := os.Stat(path)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	bets := filepath.Join(runDir, "bets.csv")
	r.BetsBytes, r.JournalBytes, r.TreeBytes = size(bets), size(bets+".journal"), size(bets+".tlog")
	if entries, err := os.ReadDir(filepath.Join(runDir, "receipts")); err == nil {
		for _, e := range entries {
			r.ReceiptsBytes += size(filepath.Join(runDir, "receipts", e.Name()))
		}
	}
}

// verify checks that every agency got exactly its generated winners and
// that the store holds every bet once.
func (b *Bench) verify(res Result, results []agency.Result, errs []error) error {
	const maxProblems = 10
	var problems []error
	add := func(err error) {
		if len(problems) < maxProblems {
			problems = append(problems, err)
		} else if len(problems) == maxProblems {
			problems = append(problems, errors.New("(more problems not shown)"))
		}
	}
	for i, r := range results {
		id := i + 1
		if errs[i] != nil {
			add(fmt.Errorf("agency %d: %w", id, errs[i]))
			continue
		}
		if r.Sent != b.sc.Bets || r.Rejected != 0 || r.Invalid != 0 {
			add(fmt.Errorf("agency %d: %d bets stored, %d rejected, %d invalid; want %d stored", id, r.Sent, r.Rejected, r.Invalid, b.sc.Bets))
		}
		got := slices.Sorted(slices.Values(r.Winners))
		if !slices.Equal(got, b.files[i].winners) {
			add(fmt.Errorf("agency %d: winners %v, want %v", id, got, b.files[i].winners))
		}
	}
	if want := b.sc.Preload + res.TotalBets; res.StoredBets != want {
		add(fmt.Errorf("store holds %d bets, want %d", res.StoredBets, want))
	}
	if len(problems) > 0 {
		return fmt.Errorf("verification failed: %w", errors.Join(problems...))
	}
	return nil
}

// progress prints a line every ProgressEvery until the returned stop is
// called.
func (b *Bench) progress(run int, acked *atomic.Int64, cut centralUnderTest) (stop func()) {
	if b.sc.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	total := int64(b.sc.Agencies) * int64(b.sc.Bets)
	go func() {
		defer wg.Done()
		t := time.NewTicker(b.sc.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				line := fmt.Sprintf("bench: run %d  %5.1fs  batches acked %d", run, time.Since(start).Seconds(), acked.Load())
				if stored := cut.StoredBets(); stored >= 0 {
					stored -= b.sc.Preload
					line += fmt.Sprintf("  bets stored %d/%d (%.0f%%)", stored, total, 100*float64(stored)/float64(total))
				}
				fmt.Fprintln(b.sc.Progress, line)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// checkCentrals accepts the group sizes of a central and what goes with
// them: a replicated central runs in this process, without preloaded bets
// (they would have to be in every node's log too); Failover needs one.
func checkCentrals(sc Scenario) error {
	if sc.Centrals < 0 || pki.CheckCentrals(sc.Centrals) != nil {
		return fmt.Errorf("bench: %d centrals: 1, 3 or 5", sc.Centrals)
	}
	if sc.Centrals > 1 && (sc.ServerBin != "" || sc.Preload > 0) {
		return errors.New("bench: a replicated central runs in this process, without preloaded bets")
	}
	if sc.Failover < 0 || (sc.Failover > 0 && sc.Centrals < 3) {
		return errors.New("bench: failover needs a replicated central (3 or 5 centrals) and at least one kill")
	}
	return nil
}

// totalAgencies is how many agency files and certificates the scenario
// needs: Agencies, or Agencies per kill of a failover run.
func (sc Scenario) totalAgencies() int { return sc.Agencies * max(sc.Failover, 1) }

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// copyStore copies a store's bets file and journal.
func copyStore(from, to string) error {
	for _, suffix := range []string{"", ".journal"} {
		if err := copyFile(from+suffix, to+suffix); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// agencyTLSFor returns agency i's TLS config (nil without TLS).
func (b *Bench) agencyTLSFor(i int) *tls.Config {
	if b.agencyTLS == nil {
		return nil
	}
	return b.agencyTLS[i]
}
