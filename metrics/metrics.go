// Package metrics is what the central knows about itself while it runs: bets
// and batches by agency, connections, handshakes, the draw, the store, the
// Raft group and the audit log's checkpoint. It is the one source of both
// the Prometheus exposition (/metrics) and the status page (Snapshot), so
// the two never disagree.
//
// The ingest path pays an atomic add per event and nothing else: counters
// are plain atomics (per agency in a slice indexed by agency), read only
// when Prometheus scrapes (a custom Collector building constant metrics) or
// the page polls. Histograms are Prometheus's own, whose Observe is a few
// atomic operations too.
//
// Every method is safe for concurrent use and does nothing on a nil
// *Lottery, so a central built without metrics calls them all the same.
//
// Metrics never see a name or a document: a bet is counted, never shown,
// and the draw is reported as a number of winners per agency.
package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"lottery"
)

// Histogram buckets, in seconds. An ack waits for the group commit it
// belongs to (one fsync shared by concurrent batches) and, when
// replicated, for a majority of the nodes: half a millisecond on a fast
// SSD and loopback, seconds on a struggling disk. Fifteen doublings from
// 100 µs cover both ends with a bucket per factor of two.
const (
	latencyBucketStart  = 100e-6
	latencyBucketFactor = 2
	latencyBuckets      = 15 // 100 µs … 1.6 s, then +Inf
)

// latencyBucketBounds are the upper bounds every latency histogram uses.
var latencyBucketBounds = prometheus.ExponentialBuckets(latencyBucketStart, latencyBucketFactor, latencyBuckets)

// unknownAgency is the slot of agencies outside 1..N: the central refuses
// them (unknown_agency), and their refusals are counted here, under the
// label agency="0", so that a stranger's made-up numbers never become
// labels while the totals still add up.
const unknownAgency = 0

// agency holds one agency's counters. The fields the ingest path writes
// for every batch come first; the struct is far larger than a cache line,
// so two agencies' sessions never write the same line.
type agency struct {
	bets       atomic.Uint64 // bets stored by this agency's batches
	stored     atomic.Uint64 // batches stored
	duplicates atomic.Uint64 // batches resent and recognised, stored before
	refused    atomic.Uint64 // batches refused, all codes together
	sessions   atomic.Int32  // authenticated connections open
	finished   atomic.Bool
	winners    atomic.Int64
	codes      [codeSlots]atomic.Uint64 // refused batches by code
}

// Lottery is the central's instruments. Create it with New.
type Lottery struct {
	agencies []agency // indexed by agency number; 0 is unknownAgency

	connsOpen        atomic.Int64
	connsRefused     []atomic.Uint64 // indexed like connReasons
	handshakesFailed []atomic.Uint64 // indexed like handshakeReasons

	drawnAt     atomic.Int64 // Unix nanoseconds of the draw; 0 before it
	inFlight    atomic.Int64
	inFlightCap atomic.Int64
	storeBytes  atomic.Int64
	storeBets   atomic.Int64
	lastFsync   atomic.Int64 // nanoseconds

	ackSeconds   prometheus.Histogram
	fsyncSeconds prometheus.Histogram

	raft raftState

	// checkpointMu guards checkpoint, replaced whole at every new
	// checkpoint (rare next to batches: a mutex is plenty).
	checkpointMu sync.Mutex
	checkpoint   *Checkpoint

	history history
}

// raftState is the replicated central's part. replicated turns on the Raft
// metrics and the page's nodes: a single central has none.
type raftState struct {
	replicated    atomic.Bool
	leader        atomic.Bool
	leaderChanges atomic.Uint64
	applied       atomic.Uint64
	commitSeconds prometheus.Histogram
	applySeconds  prometheus.Histogram

	nodesMu sync.Mutex
	nodes   []NodeStatus
}

// NodeStatus is one node of a replicated central, as this node sees it.
type NodeStatus struct {
	Name string `json:"name"` // as in its certificate
	Addr string `json:"addr"` // where agencies reach it
	// Role is "leader", "follower", "candidate" or "unknown".
	Role string `json:"role"`
	// Applied is the node's applied Raft index, 0 when this node does
	// not know it.
	Applied uint64 `json:"applied"`
	Self    bool   `json:"self"` // the node serving this page
}

// Checkpoint is the audit log's latest signed checkpoint.
type Checkpoint struct {
	Size uint64 `json:"size"` // leaves in the tree: acked batches
	Root string `json:"root"` // the tree's root hash, standard base64
}

// New returns the instruments of a central waiting for agencies 1..agencies.
func New(agencies int) *Lottery {
	agencies = max(agencies, 0)
	histogram := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBucketBounds})
	}
	l := &Lottery{
		agencies:         make([]agency, agencies+1),
		connsRefused:     make([]atomic.Uint64, len(connReasons)),
		handshakesFailed: make([]atomic.Uint64, len(handshakeReasons)),
		ackSeconds:       histogram("lottery_batch_ack_seconds", "Time from reading a batch to writing its ack."),
		fsyncSeconds:     histogram("lottery_fsync_seconds", "Duration of the store's fsync calls (one per group commit)."),
	}
	l.raft.commitSeconds = histogram("lottery_raft_commit_seconds", "Time from proposing an entry to Raft to its commit by a majority.")
	l.raft.applySeconds = histogram("lottery_raft_apply_seconds", "Time the state machine takes to apply a batch of committed entries.")
	l.history.init(time.Now)
	return l
}

// Agencies returns how many agencies the central waits for.
func (l *Lottery) Agencies() int {
	if l == nil {
		return 0
	}
	return len(l.agencies) - 1
}

// slot returns the counters of agency a, or of unknownAgency outside 1..N.
func (l *Lottery) slot(a uint32) *agency {
	if a == unknownAgency || uint64(a) >= uint64(len(l.agencies)) {
		return &l.agencies[unknownAgency]
	}
	return &l.agencies[a]
}

// AgencyConnected counts an authenticated connection of agency a: call it
// once the agency is known (after the handshake, or the Hello without
// TLS), and AgencyDisconnected when that connection closes.
func (l *Lottery) AgencyConnected(a uint32) {
	if l != nil {
		l.slot(a).sessions.Add(1)
	}
}

// AgencyDisconnected undoes one AgencyConnected.
func (l *Lottery) AgencyDisconnected(a uint32) {
	if l != nil {
		l.slot(a).sessions.Add(-1)
	}
}

// BatchStored counts a batch of bets stored for agency a (acked as stored,
// not a duplicate).
func (l *Lottery) BatchStored(a uint32, bets int) {
	if l != nil {
		s := l.slot(a)
		s.bets.Add(uint64(max(bets, 0)))
		s.stored.Add(1)
	}
}

// BatchDuplicate counts a resent batch recognised as stored before: acked,
// not stored again.
func (l *Lottery) BatchDuplicate(a uint32) {
	if l != nil {
		l.slot(a).duplicates.Add(1)
	}
}

// BatchRefused counts a batch of agency a answered with code (invalid_bet,
// conflict, bad_sequence, storage, …). Codes the domain does not define,
// and OK, are counted as Other.
func (l *Lottery) BatchRefused(a uint32, code lottery.Code) {
	if l != nil {
		s := l.slot(a)
		s.refused.Add(1)
		s.codes[codeSlot(code)].Add(1)
	}
}

// AckLatency records the time from reading a batch to writing its ack,
// whatever the answer.
func (l *Lottery) AckLatency(d time.Duration) {
	if l != nil {
		l.ackSeconds.Observe(d.Seconds())
	}
}

// Fsync records one fsync of the store: its latency histogram and the
// page's "last fsync".
func (l *Lottery) Fsync(d time.Duration) {
	if l != nil {
		l.fsyncSeconds.Observe(d.Seconds())
		l.lastFsync.Store(int64(d))
	}
}

// ConnectionOpened counts an accepted connection, authenticated or not;
// ConnectionClosed undoes it when the connection closes.
func (l *Lottery) ConnectionOpened() {
	if l != nil {
		l.connsOpen.Add(1)
	}
}

// ConnectionClosed undoes one ConnectionOpened.
func (l *Lottery) ConnectionClosed() {
	if l != nil {
		l.connsOpen.Add(-1)
	}
}

// ConnectionRefused counts a connection refused or evicted before it was
// served, by one of the Reason constants; any other reason counts as Other.
func (l *Lottery) ConnectionRefused(reason string) {
	if l != nil {
		l.connsRefused[indexOf(connReasons, reason)].Add(1)
	}
}

// HandshakeFailed counts a failed TLS handshake by pki.Reason's word; any
// other word counts as Other.
func (l *Lottery) HandshakeFailed(reason string) {
	if l != nil {
		l.handshakesFailed[indexOf(handshakeReasons, reason)].Add(1)
	}
}

// AgencyFinished records that agency a said it is done (or was found done
// at recovery). Calling it again changes nothing.
func (l *Lottery) AgencyFinished(a uint32) {
	if l != nil && a != unknownAgency && uint64(a) < uint64(len(l.agencies)) {
		l.agencies[a].finished.Store(true)
	}
}

// DrawCompleted records the draw: when, and how many winners each agency
// has (agencies absent from winners have none). It takes counts, not the
// winners' documents, which metrics must never hold.
func (l *Lottery) DrawCompleted(at time.Time, winners map[uint32]int) {
	if l == nil {
		return
	}
	for i := range l.agencies {
		l.agencies[i].winners.Store(0)
	}
	for a, n := range winners {
		l.slot(a).winners.Add(int64(n))
	}
	l.drawnAt.Store(at.UnixNano())
}

// InFlight sets the bytes of the central's in-flight budget in use: batches
// read from agencies and not answered yet.
func (l *Lottery) InFlight(bytes int64) {
	if l != nil {
		l.inFlight.Store(bytes)
	}
}

// InFlightLimit sets the size of the in-flight budget (MAX_INFLIGHT_BYTES).
func (l *Lottery) InFlightLimit(bytes int64) {
	if l != nil {
		l.inFlightCap.Store(bytes)
	}
}

// StoreSize sets what the store holds: the bets file's committed bytes and
// bets (storage.Stats' Size and Bets). Unlike the counters, which start at
// zero with the process, these include what a restarted central recovered.
func (l *Lottery) StoreSize(bytes, bets int64) {
	if l != nil {
		l.storeBytes.Store(bytes)
		l.storeBets.Store(bets)
	}
}

// SetCheckpoint records the audit log's latest checkpoint: the tree's size
// and root hash.
func (l *Lottery) SetCheckpoint(size uint64, root []byte) {
	if l == nil {
		return
	}
	c := &Checkpoint{Size: size, Root: encodeRoot(root)}
	l.checkpointMu.Lock()
	l.checkpoint = c
	l.checkpointMu.Unlock()
}

// latestCheckpoint returns the checkpoint, nil when there is none.
func (l *Lottery) latestCheckpoint() *Checkpoint {
	l.checkpointMu.Lock()
	defer l.checkpointMu.Unlock()
	return l.checkpoint
}

// Leader records whether this node leads its Raft group. Like every Raft
// method it marks the central replicated.
func (l *Lottery) Leader(leads bool) {
	if l != nil {
		l.raft.replicated.Store(true)
		l.raft.leader.Store(leads)
	}
}

// LeaderChanged counts a change of the group's leader as this node observed
// it (Raft's LeaderObservation), whoever the new leader is.
func (l *Lottery) LeaderChanged() {
	if l != nil {
		l.raft.replicated.Store(true)
		l.raft.leaderChanges.Add(1)
	}
}

// RaftCommit records the time from proposing an entry to its commit.
func (l *Lottery) RaftCommit(d time.Duration) {
	if l != nil {
		l.raft.replicated.Store(true)
		l.raft.commitSeconds.Observe(d.Seconds())
	}
}

// RaftApply records the time the state machine took to apply entries.
func (l *Lottery) RaftApply(d time.Duration) {
	if l != nil {
		l.raft.replicated.Store(true)
		l.raft.applySeconds.Observe(d.Seconds())
	}
}

// AppliedIndex sets this node's last applied Raft index.
func (l *Lottery) AppliedIndex(i uint64) {
	if l != nil {
		l.raft.replicated.Store(true)
		l.raft.applied.Store(i)
	}
}

// Nodes replaces the page's list of the group's nodes.
func (l *Lottery) Nodes(nodes []NodeStatus) {
	if l == nil {
		return
	}
	l.raft.replicated.Store(true)
	nodes = append([]NodeStatus(nil), nodes...)
	l.raft.nodesMu.Lock()
	l.raft.nodes = nodes
	l.raft.nodesMu.Unlock()
}

// nodeList returns a copy of the nodes, nil for a single central.
func (l *Lottery) nodeList() []NodeStatus {
	l.raft.nodesMu.Lock()
	defer l.raft.nodesMu.Unlock()
	return append([]NodeStatus(nil), l.raft.nodes...)
}

// totalBets sums the bets stored by every agency, the unknown slot included
// (always 0: a stranger's batch is never stored).
func (l *Lottery) totalBets() uint64 {
	var n uint64
	for i := range l.agencies {
		n += l.agencies[i].bets.Load()
	}
	return n
}
