package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"lottery"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"lottery/agency"
	"lottery/central"
	"lottery/replica"
)

// FailoverResult is what RunFailover measured. Every time is from the
// moment the leader is killed:
//
//   - failover_ms: until an agency receives the ack of a batch committed
//     by the new leader (the first ack the agency side sees after the new
//     leader's first commit; an ack the old leader sent before dying cannot
//     be counted).
//   - elected_ms: until another node leads and takes agencies (Raft's
//     election and the new leader's barrier).
//   - commit_ms: until the new leader's first batch commit completes (a
//     majority has it): the node side of the same moment.
//   - catch_up_ms: from restarting the killed node until the round's
//     upload has ended and the node has applied everything the leader has.
//
// The percentiles are nearest-rank: with 20 kills, p99 is the maximum.
type FailoverResult struct {
	Centrals           int       `json:"centrals"`
	Kills              int       `json:"kills"`
	AgenciesPerKill    int       `json:"agencies_per_kill"`
	BetsPerAgency      int       `json:"bets_per_agency"`
	HeartbeatTimeoutMs float64   `json:"heartbeat_timeout_ms"`
	Kill               string    `json:"kill"`
	FailoverMs         []float64 `json:"failover_ms"`
	FailoverP50Ms      float64   `json:"failover_p50_ms"`
	FailoverP99Ms      float64   `json:"failover_p99_ms"`
	FailoverMaxMs      float64   `json:"failover_max_ms"`
	ElectedMs          []float64 `json:"elected_ms"`
	ElectedP50Ms       float64   `json:"elected_p50_ms"`
	ElectedMaxMs       float64   `json:"elected_max_ms"`
	CommitMs           []float64 `json:"commit_ms"`
	CommitP50Ms        float64   `json:"commit_p50_ms"`
	CommitP99Ms        float64   `json:"commit_p99_ms"`
	CommitMaxMs        float64   `json:"commit_max_ms"`
	CatchUpP50Ms       float64   `json:"catch_up_p50_ms"`
	CatchUpMaxMs       float64   `json:"catch_up_max_ms"`
	StoredBets         int64     `json:"stored_bets"`
	Winners            int       `json:"winners"`
}

// killAt is the share of a round's bets stored when its leader is killed:
// well into the upload, with most of it still to come.
const killAt = 0.2

// failoverWait bounds one failover, and a restarted node's catch-up.
const failoverWait = 60 * time.Second

// RunFailover starts a replicated central of Centrals nodes and, Failover
// times, starts Agencies more agencies (numbered on from the previous
// round's), kills the leader abruptly once a fifth of the round's bets are
// stored, measures how long until an agency gets a batch acked by the new
// leader, restarts the killed node over its own files, and waits until the
// round's upload has ended and that node has caught up. At the end every
// agency must get exactly its winners, the store must hold every bet once,
// and every node's bets file must be the same.
func (b *Bench) RunFailover(ctx context.Context) (FailoverResult, error) {
	sc := b.sc
	if sc.Failover < 1 || sc.Centrals < 3 {
		return FailoverResult{}, errors.New("bench: failover needs Failover ≥ 1 and 3 or 5 centrals")
	}
	ctx, cancel := context.WithTimeout(ctx, sc.Timeout)
	defer cancel()
	hb := sc.HeartbeatTimeout
	if hb <= 0 {
		hb = replica.DefaultHeartbeatTimeout
	}
	total := sc.totalAgencies()
	res := FailoverResult{Centrals: sc.Centrals, Kills: sc.Failover, AgenciesPerKill: sc.Agencies, BetsPerAgency: sc.Bets,
		HeartbeatTimeoutMs: ms(hb), Kill: "in-process: the leader's listener, connections and Raft closed at once, its store closed"}
	runDir := filepath.Join(b.dir, "failover")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return res, err
	}
	defer os.RemoveAll(runDir)
	probe := new(failoverProbe)
	cl, err := startCluster(runDir, b.nodes[:sc.Centrals], total, orDefault(sc.Window, agency.DefaultWindow), sc.NoSync, sc.HeartbeatTimeout, probe, b.logSigner)
	if err != nil {
		return res, fmt.Errorf("start the central: %w", err)
	}
	defer cl.kill(nil) // after Stop, a no-op

	results, errs := make([]agency.Result, total), make([]error, total)
	var wg sync.WaitGroup
	var catchUp []float64
	loopErr := func() error {
		for round := range sc.Failover {
			base := cl.StoredBets()
			b.startAgencies(ctx, round*sc.Agencies, (round+1)*sc.Agencies, cl.Addr(),
				func(int, time.Duration) { probe.acked() }, &wg, results, errs)
			took, err := b.killLeader(ctx, cl, probe, round, base, &res)
			if err != nil {
				return err
			}
			catchUp = append(catchUp, took)
		}
		return nil
	}()
	if loopErr != nil {
		cancel() // the agencies give up
	}
	wg.Wait()
	st, stopErr := cl.Stop()
	if loopErr != nil {
		return res, loopErr
	}
	res.StoredBets = st.StoredBets
	for _, r := range results {
		res.Winners += len(r.Winners)
	}
	res.summarize(catchUp)
	check := Result{TotalBets: int64(total) * int64(sc.Bets), StoredBets: st.StoredBets}
	return res, errors.Join(stopErr, b.verify(check, results, errs))
}

// killLeader is one round of the failover run, once its agencies upload:
// it kills the leader once killAt of the round's bets are stored, times
// the new leader's election, first commit and first ack, restarts the
// killed node and returns how long it took to catch up.
func (b *Bench) killLeader(ctx context.Context, cl *cluster, probe *failoverProbe, round int, base int64, res *FailoverResult) (float64, error) {
	sc := b.sc
	roundBets := int64(sc.Agencies) * int64(sc.Bets)
	threshold := base + int64(killAt*float64(roundBets))
	if err := waitUntil(ctx, failoverWait, func() bool { return cl.StoredBets() >= threshold }); err != nil {
		return 0, fmt.Errorf("round %d: %d of %d bets stored: %w", round+1, cl.StoredBets()-base, roundBets, err)
	}
	lead, err := cl.waitLeader(failoverWait)
	if err != nil {
		return 0, err
	}
	t0 := probe.arm(lead)
	if err := cl.stopNode(lead, false); err != nil {
		return 0, fmt.Errorf("round %d: kill %s: %w", round+1, lead.name, err)
	}
	elected := make(chan time.Time, 1)
	go func() { // the new leader, as soon as it takes agencies
		waitUntil(ctx, failoverWait, func() bool { n := cl.leader(); return n != nil && n != lead })
		elected <- time.Now()
	}()
	if err := probe.wait(ctx, failoverWait); err != nil {
		return 0, fmt.Errorf("round %d: no batch acked by a new leader within %v of killing %s: %w", round+1, failoverWait, lead.name, err)
	}
	committed, acked := probe.disarm()
	res.ElectedMs = append(res.ElectedMs, ms((<-elected).Sub(t0)))
	res.CommitMs = append(res.CommitMs, ms(committed.Sub(t0)))
	res.FailoverMs = append(res.FailoverMs, ms(acked.Sub(t0)))
	if sc.Progress != nil {
		fmt.Fprintf(sc.Progress, "bench: kill %d of %d: %s killed; a new leader after %.0f ms, its first commit after %.0f ms, an agency has its ack after %.0f ms\n",
			round+1, sc.Failover, lead.name, res.ElectedMs[len(res.ElectedMs)-1], ms(committed.Sub(t0)), ms(acked.Sub(t0)))
	}
	restart := time.Now()
	if err := cl.start(lead); err != nil {
		return 0, fmt.Errorf("round %d: restart %s: %w", round+1, lead.name, err)
	}
	if err := waitUntil(ctx, failoverWait, func() bool { return cl.StoredBets() >= base+roundBets }); err != nil {
		return 0, fmt.Errorf("round %d: the upload did not end: %d of %d bets stored: %w", round+1, cl.StoredBets()-base, roundBets, err)
	}
	if err := waitUntil(ctx, failoverWait, func() bool { return cl.nodeBets(lead) == cl.StoredBets() }); err != nil {
		return 0, fmt.Errorf("round %d: restarted %s has %d bets, the leader %d: %w", round+1, lead.name, cl.nodeBets(lead), cl.StoredBets(), err)
	}
	return ms(time.Since(restart)), nil
}

// summarize computes the percentiles of the rounds' timings.
func (res *FailoverResult) summarize(catchUp []float64) {
	sorted := func(xs []float64) []float64 { s := slices.Clone(xs); slices.Sort(s); return s }
	f, c := sorted(res.FailoverMs), sorted(res.CommitMs)
	res.FailoverP50Ms, res.FailoverP99Ms, res.FailoverMaxMs = percentileF(f, 50), percentileF(f, 99), percentileF(f, 100)
	res.CommitP50Ms, res.CommitP99Ms, res.CommitMaxMs = percentileF(c, 50), percentileF(c, 99), percentileF(c, 100)
	res.ElectedP50Ms, res.ElectedMaxMs = median(res.ElectedMs), percentileF(sorted(res.ElectedMs), 100)
	res.CatchUpP50Ms, res.CatchUpMaxMs = median(catchUp), percentileF(sorted(catchUp), 100)
}

// Report writes a human-readable summary of a failover run.
func (r FailoverResult) Report(w io.Writer) {
	fmt.Fprintf(w, "scenario     %d centrals, %d leader kills, %d agencies x %d bets per kill, Raft heartbeat timeout %.0f ms\n",
		r.Centrals, r.Kills, r.AgenciesPerKill, r.BetsPerAgency, r.HeartbeatTimeoutMs)
	fmt.Fprintf(w, "kill         %s\n", r.Kill)
	fmt.Fprintf(w, "failover     p50 %.0f ms  p99 %.0f ms  max %.0f ms  (kill → an agency has a batch acked by the new leader)\n",
		r.FailoverP50Ms, r.FailoverP99Ms, r.FailoverMaxMs)
	fmt.Fprintf(w, "new leader   p50 %.0f ms  max %.0f ms  (kill → another node leads and takes agencies)\n", r.ElectedP50Ms, r.ElectedMaxMs)
	fmt.Fprintf(w, "new commit   p50 %.0f ms  p99 %.0f ms  max %.0f ms  (kill → the new leader's first batch committed)\n",
		r.CommitP50Ms, r.CommitP99Ms, r.CommitMaxMs)
	fmt.Fprintf(w, "catch-up     p50 %.0f ms  max %.0f ms  (restart of the killed node → the round's upload ended and it has every bet)\n", r.CatchUpP50Ms, r.CatchUpMaxMs)
	fmt.Fprintf(w, "verified     %d bets stored, identical on every node, %d winners answered\n", r.StoredBets, r.Winners)
}

// percentileF is percentile for sorted float64s.
func percentileF(sorted []float64, p float64) float64 {
	d := make([]time.Duration, len(sorted))
	for i, x := range sorted {
		d[i] = time.Duration(x * float64(time.Millisecond))
	}
	return ms(percentile(d, p))
}

// waitUntil polls cond every millisecond until it holds, ctx ends or
// timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", timeout)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// failoverProbe times one failover: armed when the leader is killed, it
// records the first batch commit that completes on another node, then the
// first ack an agency receives after it.
type failoverProbe struct {
	armed atomic.Bool // the fast path of acked, called on every ack

	mu        sync.Mutex
	killed    *clusterNode
	committed time.Time
	ackedAt   time.Time
	done      chan struct{} // closed once acked is set
}

// arm starts timing a failover from now, with killed about to die.
func (p *failoverProbe) arm(killed *clusterNode) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killed, p.committed, p.ackedAt, p.done = killed, time.Time{}, time.Time{}, make(chan struct{})
	p.armed.Store(true)
	return time.Now()
}

func (p *failoverProbe) wait(ctx context.Context, timeout time.Duration) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("timed out")
	}
}

func (p *failoverProbe) disarm() (committed, acked time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed.Store(false)
	return p.committed, p.ackedAt
}

// appended is told of every batch a node's central hands its ledger.
func (p *failoverProbe) appended(n *clusterNode, c *lottery.Commit) {
	if !p.armed.Load() {
		return
	}
	p.mu.Lock()
	watch := n != p.killed && p.committed.IsZero()
	p.mu.Unlock()
	if !watch {
		return
	}
	go func() {
		<-c.Done()
		if c.Err != nil {
			return
		}
		now := time.Now()
		p.mu.Lock()
		if p.armed.Load() && p.committed.IsZero() {
			p.committed = now
		}
		p.mu.Unlock()
	}()
}

// acked is told of every ack an agency receives.
func (p *failoverProbe) acked() {
	if !p.armed.Load() {
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.committed.IsZero() && p.ackedAt.IsZero() && !now.Before(p.committed) {
		p.ackedAt = now
		close(p.done)
	}
}

// probedLedger is a node's ledger that tells the probe of every batch.
type probedLedger struct {
	central.Cluster
	probe *failoverProbe
	node  *clusterNode
}

func (l probedLedger) Append(agency uint32, seq uint64, rows *lottery.Rows) *lottery.Commit {
	c := l.Cluster.Append(agency, seq, rows)
	l.probe.appended(l.node, c)
	return c
}
