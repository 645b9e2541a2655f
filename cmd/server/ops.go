package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"lottery/admin"
	"lottery/logline"
	"lottery/metrics"
	"lottery/replica"
	"lottery/storage"
)

// The operator's side of the central's process (docs/operations.md): its
// instruments, fed by the store, the central and the node; the admin
// listener that serves them; and what its readiness checks read. With
// ADMIN_ADDRESS=off there is none of it: no metrics are counted at all.

// ops is the process's instruments and admin listener, nil parts when off.
type ops struct {
	log        *slog.Logger
	addr       string // ADMIN_ADDRESS, "" when off
	replicated bool   // a node of a group: the leader and applied checks too
	timeout    time.Duration
	metrics    *metrics.Lottery
	server     *admin.Server

	// store is the single central's store, set by start; node the node of
	// a replicated central, set once its Start returned (joined): before
	// that its Raft state must not be read, and the leader and applied
	// checks fail.
	store *storage.Store
	node  atomic.Pointer[replica.Replica]
}

// newOps prepares the instruments of the central cfg describes and puts
// them in cfg.Central.Metrics, so that the central, the store (OnSync) and
// the node feed them; with the admin listener off it prepares nothing.
func newOps(cfg *Config, log *slog.Logger) *ops {
	o := &ops{log: log, addr: cfg.Admin, replicated: cfg.Cluster != nil, timeout: cfg.ShutdownTimeout}
	if o.addr != "" {
		o.metrics = metrics.New(cfg.Central.Agencies)
		cfg.Central.Metrics = o.metrics
	}
	return o
}

// storageOptions are the store's options for cfg: its fsync setting, and
// the instruments' fsync latency when there are instruments.
func storageOptions(cfg Config) storage.Options {
	opt := storage.Options{NoSync: cfg.NoSync}
	if m := cfg.Central.Metrics; m != nil {
		opt.OnSync = m.Fsync
	}
	return opt
}

// adminLine is ADMIN_ADDRESS as the config line shows it.
func adminLine(cfg Config) string {
	if cfg.Admin == "" {
		return admin.Off
	}
	return cfg.Admin
}

// start starts the admin listener over the open store, before the central
// listens for agencies, so that /livez answers and /readyz says what is
// missing from the first moment, and starts the bets/s sampler. It logs
// `action: admin` (package admin does) and fails when the address cannot
// be listened on.
func (o *ops) start(store *storage.Store) error {
	o.store = store
	if o.addr == "" {
		return nil
	}
	srv, err := admin.New(admin.Config{
		Addr:     o.addr,
		Registry: metrics.NewRegistry(o.metrics),
		Status:   o.metrics.Snapshot,
		Ready:    o.checks(),
		Log:      o.log,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	o.server = srv
	o.metrics.OnSample(o.refresh)
	o.metrics.Start(metrics.DefaultSampleInterval)
	return nil
}

// joined tells the checks and the sampler that the node has joined its
// group: its Raft state may be read from now on.
func (o *ops) joined(node *replica.Replica) { o.node.Store(node) }

// errJoining is the leader and applied checks' failure before the node
// has joined its group.
var errJoining = errors.New("joining the group")

// checks are /readyz's: recovery and store always; leader and applied for
// a node of a replicated central.
func (o *ops) checks() []admin.Check {
	checks := []admin.Check{admin.RecoveryCheck(o.ledger), admin.StoreCheck(o.ledger)}
	if o.replicated {
		checks = append(checks, o.nodeChecks()...)
	}
	return checks
}

// nodeChecks are the checks of a node of a replicated central.
func (o *ops) nodeChecks() []admin.Check {
	onNode := func(check func(*replica.Replica) error) func() error {
		return func() error {
			n := o.node.Load()
			if n == nil {
				return errJoining
			}
			return check(n)
		}
	}
	return []admin.Check{
		{Name: admin.CheckLeader, Check: onNode((*replica.Replica).LeaderKnown)},
		{Name: admin.CheckApplied, Check: onNode((*replica.Replica).CaughtUp)},
	}
}

// ledger is what the recovery and store checks read: the node once it has
// joined (a snapshot may have replaced its store), else the store.
func (o *ops) ledger() admin.Ledger {
	if n := o.node.Load(); n != nil {
		return n
	}
	return o.store
}

// refresh is the sampler's refresh of what is read rather than pushed: the
// store's size, and the node's applied index and view of its group.
func (o *ops) refresh() {
	store := o.store
	if n := o.node.Load(); n != nil {
		store = n.Store()
		n.RefreshMetrics()
	}
	st := store.Stats()
	o.metrics.StoreSize(st.Size, st.Bets)
}

// shutdown stops the sampler and the admin listener, last of all: it logs
// `shutdown | in_progress | resource: admin_listener` (package admin
// does).
func (o *ops) shutdown() {
	if o.server == nil {
		return
	}
	o.metrics.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if err := o.server.Shutdown(ctx); err != nil {
		o.log.Warn(logline.Shutdown, logline.Progress, "resource", "admin_listener", "forced", true, "error", err)
	}
}

// probe is the -health mode: it GETs url (admin.Probe) and exits 0 on 200,
// 1 when the central is not healthy or does not answer, 2 for a URL that
// is not one.
func probe(url string, stdout, stderr io.Writer) int {
	err := admin.Probe(context.Background(), url)
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "server: %s is healthy\n", url)
		return exitOK
	case errors.Is(err, admin.ErrProbeURL):
		fmt.Fprintf(stderr, "server: -health: %v\n%s", err, usage)
		return exitConfig
	}
	fmt.Fprintf(stderr, "server: -health: %v\n", err)
	return exitFailed
}

// flagSet reports whether the flag called name was given.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
