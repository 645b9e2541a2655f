// Package replica makes the central a replicated state machine on
// hashicorp/raft: every batch, every "finished" and the draw are entries of
// one replicated log, acknowledged once a majority of the nodes has them on
// disk; each node applies the log to its own bets file, which is therefore
// byte-identical on every node. docs/replication.md explains the choices.
package replica

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"golang.org/x/mod/sumdb/tlog"

	"lottery"
	"lottery/logline"
	"lottery/metrics"
	"lottery/pki"
	"lottery/storage"
)

// Config is one node's part in the group.
type Config struct {
	Name     string // this node, one of Nodes
	Nodes    []Node // every node, this one included (ParseNodes)
	Agencies int    // how many agencies must finish before the draw
	// Dir holds the node's Raft state (log, votes, snapshots): beside the
	// bets file, on the same volume.
	Dir string
	// BindAddr is where the Raft listener binds; empty: this node's
	// RaftAddr.
	BindAddr string
	TLS      *tls.Config // PeerTLS
	// Revoked is the revocation list in force (TLS_CRL): a node whose
	// certificate it names can neither join nor be dialled. Nil: none.
	Revoked *pki.Revocations
	Storage storage.Options
	Log     *slog.Logger
	// Timing of the Raft group; zero takes the defaults below.
	HeartbeatTimeout time.Duration
	// Snapshots: taken every SnapshotThreshold entries (checked every
	// SnapshotInterval), keeping TrailingLogs entries behind each, so a
	// node that was down briefly catches up from the log and only one far
	// behind receives the whole file. Zero: the defaults below.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotInterval  time.Duration
	// Metrics, if set, gets the node's part of the operator's view: whether
	// it leads, the leader changes it observed, commit and apply latency,
	// its applied index and the group's nodes (RefreshMetrics). Nil:
	// nothing is counted.
	Metrics *metrics.Lottery
}

// Defaults of the snapshot settings: 8192 entries are about 800,000 bets.
const (
	defaultSnapshotThreshold = 8192
	defaultTrailingLogs      = 8192
	defaultSnapshotInterval  = 30 * time.Second
)

// DefaultHeartbeatTimeout is how long a follower waits without hearing
// from the leader before it calls an election (the leader's lease is half
// of it). Failover takes about two to three of it, the election included:
// with Raft's own 1 s the measured p99 was 4.8 s, over the 3 s target;
// 500 ms keeps it near 2 s and is still 50 heartbeats of a LAN round trip,
// so a loaded machine does not call needless elections.
const DefaultHeartbeatTimeout = 500 * time.Millisecond

// Central is what a node tells the central it serves (*central.Central)
// of what the replicated log decided.
type Central interface {
	// AgencyFinished: an agency's "finished" was applied (on every node).
	AgencyFinished(agency uint32)
	// DrawCommitted: a draw entry was applied (on every node; a leader
	// that takes over after the last "finished" proposes one again, so
	// there may be several: the central draws once).
	DrawCommitted()
	// Leading: this node now leads and has applied every entry of the
	// terms before (true), or it stopped leading (false).
	Leading(leads bool)
	// DrawRecovered: the node's files were replaced by a snapshot, whose
	// finished agencies were passed to AgencyFinished. If every agency
	// had finished, the draw entry may be in the part of the log the
	// snapshot replaced: the draw is recovered from the file, as after a
	// restart.
	DrawRecovered()
}

// A node is the ledger of its central, and a cluster's (central.Cluster).
var _ lottery.Ledger = (*Replica)(nil)

// Replica is one node: the central's ledger, replicated.
type Replica struct {
	cfg     Config
	self    Node
	path    string // the bets file
	central Central
	log     *slog.Logger

	storeMu sync.RWMutex
	store   *storage.Store // replaced only by a snapshot restore

	raft      *raft.Raft
	transport *raft.NetworkTransport
	boltStore *raftboltdb.BoltStore
	leading   atomic.Bool

	// pendingMu guards pending and, with leading, makes "still leading?
	// then wait for this proposal" atomic with dropping every proposal
	// when leadership is lost. pending holds the commits of this node's
	// proposals until the FSM applies them (settle) or they are dropped.
	pendingMu sync.Mutex
	pending   map[proposal]*lottery.Commit
	epoch     uint64
	proposed  uint64
	closed    bool
	notify    chan bool
	watched   chan struct{}
	// drawMu makes "all finished, so propose the draw" happen once per
	// leadership, however the last finished and the new term interleave.
	drawMu    sync.Mutex
	drawAsked bool
	// proposedAt is when each proposal still pending was made, for its
	// commit latency (with Metrics only). Guarded by pendingMu.
	proposedAt map[proposal]time.Time
	// observed is closed when the leader observer's goroutine has
	// returned; nil without Metrics.
	observed chan struct{}

	// failed is closed, once, when this node's store could not apply an
	// entry (failErr says why): the node must stop. stopping is closed by
	// Close before Raft shuts down, releasing an apply held by a failure.
	failOnce  sync.Once
	failed    chan struct{}
	failErr   error
	stopping  chan struct{}
	closeOnce sync.Once
}

// New prepares the node over its open store; Start joins the group.
func New(cfg Config, path string, store *storage.Store) (*Replica, error) {
	self, ok := find(cfg.Nodes, cfg.Name)
	if !ok {
		return nil, fmt.Errorf("replica: node %q is not one of the group's", cfg.Name)
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if cfg.BindAddr == "" {
		cfg.BindAddr = self.RaftAddr()
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = defaultSnapshotThreshold
	}
	if cfg.TrailingLogs == 0 {
		cfg.TrailingLogs = defaultTrailingLogs
	}
	if cfg.SnapshotInterval <= 0 {
		cfg.SnapshotInterval = defaultSnapshotInterval
	}
	return &Replica{cfg: cfg, self: self, path: path, store: store, log: cfg.Log,
		pending: make(map[proposal]*lottery.Commit), epoch: rand.Uint64(),
		failed: make(chan struct{}), stopping: make(chan struct{})}, nil
}

// Start opens the Raft state in cfg.Dir (forming the group on the first
// start of every node: they all write the same first configuration) and
// starts taking part, telling c what the log decides from then on.
func (r *Replica) Start(c Central) (err error) {
	r.central = c
	if err := os.MkdirAll(r.cfg.Dir, 0o700); err != nil {
		return err
	}
	// One undo for every step: what was opened is closed, newest first,
	// if a later step fails.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(r.cfg.Dir, "raft.db")})
	if err != nil {
		return fmt.Errorf("replica: raft log: %w", err)
	}
	r.boltStore = bolt
	undo = append(undo, func() { bolt.Close() })
	logger := newRaftLogger(r.log)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(r.cfg.Dir, 2, logger)
	if err != nil {
		return fmt.Errorf("replica: snapshots: %w", err)
	}
	ln, err := net.Listen("tcp", r.cfg.BindAddr)
	if err != nil {
		return fmt.Errorf("replica: raft listener: %w", err)
	}
	r.transport = raft.NewNetworkTransportWithLogger(newStreamLayer(ln, r.cfg.TLS, r.cfg.Nodes, r.cfg.Revoked), 3, 10*time.Second, logger)
	undo = append(undo, func() { r.transport.Close() })
	logs, err := raft.NewLogCache(1024, bolt)
	if err != nil {
		return err
	}
	existing, err := raft.HasExistingState(logs, bolt, snaps)
	if err != nil {
		return err
	}
	r.notify = make(chan bool, 16)
	if r.raft, err = raft.NewRaft(r.raftConfig(logger), fsm{r}, logs, bolt, snaps, r.transport); err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	undo = append(undo, func() {
		r.raft.Shutdown().Error()
		r.raft = nil // Close has nothing left to stop
	})
	if !existing {
		if err := r.bootstrap(); err != nil {
			return err
		}
	}
	r.watched = make(chan struct{})
	go r.watchLeadership()
	go r.watchStore(r.Store())
	r.observeLeaders()
	return nil
}

// raftConfig is the node's Raft configuration.
func (r *Replica) raftConfig(logger hclog.Logger) *raft.Config {
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(r.cfg.Name)
	conf.Logger = logger
	conf.HeartbeatTimeout = r.cfg.HeartbeatTimeout
	conf.ElectionTimeout = r.cfg.HeartbeatTimeout
	conf.LeaderLeaseTimeout = r.cfg.HeartbeatTimeout / 2
	conf.BatchApplyCh = true
	// Raft's largest batch of entries per log write and per AppendEntries
	// (8 MiB of rows at most): one fsync of the log, one round trip and one
	// group commit of the bets file for up to 1024 batches. 128 gave 12 %
	// less at 64 agencies.
	conf.MaxAppendEntries = 1024
	// A restarting node reloads its latest snapshot (the bets file as it
	// was at the snapshot's index) and Raft replays the entries after it:
	// the file is then exactly what the log says, even if it had fallen
	// behind the snapshot (a crash during a restore) or held entries the
	// log applies again. Without a snapshot yet, the log replays from its
	// start over the file kept, as duplicates.
	conf.NoSnapshotRestoreOnStart = false
	conf.SnapshotThreshold = r.cfg.SnapshotThreshold
	conf.TrailingLogs = r.cfg.TrailingLogs
	conf.SnapshotInterval = r.cfg.SnapshotInterval
	conf.NotifyCh = r.notify
	return conf
}

// bootstrap forms the group on a node's first start: every node writes
// the same first configuration, and Raft keeps the first one written.
func (r *Replica) bootstrap() error {
	var servers []raft.Server
	for _, n := range r.cfg.Nodes {
		servers = append(servers, raft.Server{ID: raft.ServerID(n.Name), Address: raft.ServerAddress(n.RaftAddr())})
	}
	if err := r.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("replica: forming the group: %w", err)
	}
	return nil
}

// watchStore fails the node when its store fails by itself: damage its
// background verification found (a failed write shows in an apply). It
// returns when the node stops.
func (r *Replica) watchStore(s *storage.Store) {
	select {
	case <-s.Failed():
		r.fail(s.Err())
	case <-r.stopping:
	}
}

// watchLeadership follows Raft's leadership changes. A new leader first
// applies every entry of the terms before its own (a barrier): only then do
// LastSeq and the finished agencies tell the truth, and only then does it
// take agencies.
func (r *Replica) watchLeadership() {
	defer close(r.watched)
	for leads := range r.notify {
		if !leads {
			r.cfg.Metrics.Leader(false)
			if r.stopLeading(lottery.Errorf(lottery.ENotLeader, "leadership lost before the batch was committed")) {
				r.central.Leading(false)
			}
			continue
		}
		if err := r.raft.Barrier(0).Error(); err != nil {
			continue // lost it already: the false follows
		}
		if r.raft.State() != raft.Leader || r.leading.Swap(true) {
			continue
		}
		r.log.Info(logline.Leader, logline.OK, "nodo", r.cfg.Name, "term", r.raft.CurrentTerm())
		r.drawMu.Lock()
		r.drawAsked = false
		r.drawMu.Unlock()
		r.central.Leading(true)
		r.cfg.Metrics.Leader(true)
		r.proposeDrawIfDue()
	}
}

// BindAddr is where this node listens for the others (Node.RaftAddr is
// where they dial it).
func (r *Replica) BindAddr() string { return r.cfg.BindAddr }

// Leader reports whether this node leads and takes agencies; if not, hint
// is the agencies' address of the node that does, or empty while none is
// known.
func (r *Replica) Leader() (leads bool, hint string) {
	if r.leading.Load() {
		return true, ""
	}
	_, id := r.raft.LeaderWithID()
	if n, ok := find(r.cfg.Nodes, string(id)); ok && n.Name != r.cfg.Name {
		return false, n.Addr
	}
	return false, ""
}

// Append replicates a batch; the commit completes once a majority stored
// the entry and this node applied it, with the store's answer.
func (r *Replica) Append(agency uint32, seq uint64, rows *lottery.Rows) *lottery.Commit {
	e := entry{kind: entryBatch, agency: agency, seq: seq}
	if rows != nil {
		e.count, e.rows = rows.Len(), rows.Bytes()
	}
	return r.apply(e)
}

// MarkFinished replicates an agency's "finished".
func (r *Replica) MarkFinished(agency uint32, lastSeq uint64) *lottery.Commit {
	return r.apply(entry{kind: entryFinished, agency: agency, seq: lastSeq})
}

func (r *Replica) apply(e entry) *lottery.Commit {
	c := lottery.NewCommit()
	r.pendingMu.Lock()
	switch {
	case r.closed:
		r.pendingMu.Unlock()
		c.Settle(lottery.Errorf(lottery.EShuttingDown, "the node is stopping"), false)
		return c
	case !r.leading.Load():
		r.pendingMu.Unlock()
		c.Settle(lottery.Errorf(lottery.ENotLeader, "this node does not lead"), false)
		return c
	}
	r.proposed++
	e.proposal = proposal{r.epoch, r.proposed}
	r.pending[e.proposal] = c
	r.proposedNow(e.proposal)
	r.pendingMu.Unlock()
	// The future is not waited for: the FSM settles c once the entry is
	// committed and applied here, and a lost leadership or a stop settles
	// it as not_leader or shutting_down (the entry may still commit; the
	// agency's resend is then a duplicate).
	r.raft.Apply(e.encode(), 0)
	return c
}

// settle takes the commit waiting for a proposal of this node's, if any.
func (r *Replica) settle(p proposal) *lottery.Commit {
	r.pendingMu.Lock()
	defer r.pendingMu.Unlock()
	c := r.pending[p]
	delete(r.pending, p)
	return c
}

// stopLeading marks the node as not leading and answers every proposal
// still waiting with err; it reports whether the node was leading.
func (r *Replica) stopLeading(err error) bool {
	r.pendingMu.Lock()
	was := r.leading.Swap(false)
	pending := r.pending
	r.pending = make(map[proposal]*lottery.Commit)
	clear(r.proposedAt)
	r.pendingMu.Unlock()
	for _, c := range pending {
		c.Settle(err, false)
	}
	return was
}

// finished is called by the FSM for every applied "finished".
func (r *Replica) finished(agency uint32) {
	r.central.AgencyFinished(agency)
	r.proposeDrawIfDue()
}

// proposeDrawIfDue appends the draw entry, once per leadership, when this
// node leads and every agency has finished. Applying it twice changes
// nothing (the central draws once), so a leader that dies before its draw
// entry commits is simply followed by one that proposes it again.
func (r *Replica) proposeDrawIfDue() {
	if !r.leading.Load() || r.finishedCount() < r.cfg.Agencies {
		return
	}
	r.drawMu.Lock()
	defer r.drawMu.Unlock()
	if r.drawAsked {
		return
	}
	r.drawAsked = true
	// Not waited for: if it fails, the leader after this one proposes it.
	// In its own goroutine: this runs in Raft's FSM goroutine, which must
	// not wait for room in Raft's queue of entries.
	go r.raft.Apply(entry{kind: entryDraw}.encode(), 0)
}

// Snapshot takes a snapshot now and compacts the log behind it, as Raft
// does by itself every SnapshotThreshold entries.
func (r *Replica) Snapshot() error { return r.raft.Snapshot().Error() }

// Store returns the node's store now (a snapshot restore replaces it).
func (r *Replica) Store() *storage.Store {
	r.storeMu.RLock()
	defer r.storeMu.RUnlock()
	return r.store
}

// Ready is closed once the node's store knows what it holds.
func (r *Replica) Ready() <-chan struct{} { return r.Store().Ready() }

// Verified is closed once the node's store has verified its files.
func (r *Replica) Verified() <-chan struct{} { return r.Store().Verified() }

// LastSeq returns the last batch of the agency applied on this node.
func (r *Replica) LastSeq(agency uint32) uint64 { return r.Store().LastSeq(agency) }

// Finished returns the agencies whose "finished" this node applied.
func (r *Replica) Finished() []uint32 { return r.Store().Finished() }

// finishedCount is how many of the group's agencies finished.
func (r *Replica) finishedCount() int {
	n := 0
	for _, a := range r.Finished() {
		if lottery.Counted(a, r.cfg.Agencies) {
			n++
		}
	}
	return n
}

// ReadHashes reads the node's own audit log: the same on every node.
func (r *Replica) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	return r.Store().ReadHashes(indexes)
}

// Tree is the node's audit log's size and root.
func (r *Replica) Tree() (uint64, tlog.Hash) { return r.Store().Tree() }

// Agency is what the node's store holds of an agency.
func (r *Replica) Agency(agency uint32) (int64, [][32]byte) { return r.Store().Agency(agency) }

// ScanWhere reads the node's own bets file.
func (r *Replica) ScanWhere(keep func(agency, number int) bool, fn func(lottery.Row) error) error {
	return r.Store().ScanWhere(keep, fn)
}

// restore swaps the node's files for a snapshot's. No apply runs meanwhile.
func (r *Replica) restore(src io.Reader) error {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	if err := r.store.Close(); err != nil {
		return err
	}
	if err := storage.RestoreSnapshot(r.path, src, r.cfg.Storage); err != nil {
		return err
	}
	store, rec, err := storage.Open(r.path, r.cfg.Storage)
	if err != nil {
		return err
	}
	r.store = store
	r.log.Info(logline.Recover, logline.OK, "nodo", r.cfg.Name, "origen", "snapshot", "apuestas", rec.Bets, "batches", rec.Batches, "agencias_finalizadas", rec.Finished)
	go r.watchStore(store)
	go func() {
		for _, a := range store.Finished() {
			r.central.AgencyFinished(a)
		}
		r.central.DrawRecovered()
	}()
	return nil
}

// Failed is closed when this node's store could not apply an entry (a full
// disk, a failed fsync): the node must stop; Err says why.
func (r *Replica) Failed() <-chan struct{} { return r.failed }

// Err returns why the node failed, or nil.
func (r *Replica) Err() error {
	select {
	case <-r.failed:
		return r.failErr
	default:
		return nil
	}
}

func (r *Replica) fail(err error) {
	r.failOnce.Do(func() {
		r.failErr = err
		r.log.Error(logline.Replica, logline.Failed, "nodo", r.cfg.Name, "error", err)
		close(r.failed)
	})
}

// Close leaves the group: Raft stops (a leader steps down silently; the
// others elect another), then its log and listener are closed. The store
// is the caller's (Store: a snapshot may have replaced it). Calling it
// again does nothing.
func (r *Replica) Close() error {
	var err error
	r.closeOnce.Do(func() { err = r.close() })
	return err
}

func (r *Replica) close() error {
	close(r.stopping)
	if r.raft == nil {
		return nil
	}
	r.pendingMu.Lock()
	r.closed = true
	r.pendingMu.Unlock()
	err := r.raft.Shutdown().Error()
	r.stopLeading(lottery.Errorf(lottery.EShuttingDown, "the node stopped before the batch was committed"))
	close(r.notify)
	<-r.watched
	r.waitObserver()
	// Closing the transport stops its listener and the pooled connections
	// it dialled (CloseStreams); a connection another node opened to this
	// one ends when that node writes to it or closes it.
	r.transport.CloseStreams()
	return errors.Join(err, r.transport.Close(), r.boltStore.Close())
}
