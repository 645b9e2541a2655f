package replica

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"lottery/metrics"
)

// What the operator sees of a node: its readiness checks and its
// instruments (Config.Metrics). The figures come from Raft's own state and
// observer and from the node's timing of its proposals and applies, not
// from hashicorp/raft's go-metrics bridge, whose names and labels would
// not follow the lottery's (docs/operations.md).

// maxAppliedLag is how far this node's applied index may trail the commit
// index it knows and still be caught up: Raft hands committed entries to
// the state machine in batches of up to MaxAppendEntries (raftConfig), so
// a node taking a busy upload is always about one batch behind; more than
// that, it is catching up.
const maxAppliedLag = 1024

// observerBuffer is how many leader observations wait for the observer
// goroutine: Raft drops observations rather than block on a full channel,
// and leaders change a few times a minute at worst.
const observerBuffer = 16

// errNoLeader is the "leader" check's failure.
var errNoLeader = errors.New("no leader known")

// LeaderKnown is the readiness check "leader": nil once this node knows
// which node leads its group (itself included). It reads Raft's state and
// never asks the network. Call it once Start has returned.
func (r *Replica) LeaderKnown() error {
	if _, id := r.raft.LeaderWithID(); id == "" {
		return errNoLeader
	}
	return nil
}

// CaughtUp is the readiness check "applied": nil when this node has
// applied (or handed its state machine) what it knows the group
// committed, within maxAppliedLag entries. Call it once Start has
// returned.
func (r *Replica) CaughtUp() error {
	commit, applied := r.raft.CommitIndex(), r.raft.AppliedIndex()
	if commit > applied+maxAppliedLag {
		return fmt.Errorf("applied %d of %d committed entries", applied, commit)
	}
	return nil
}

// RefreshMetrics sets the figures that are read rather than pushed: the
// applied index (raft.AppliedIndex) and the group's nodes with their roles
// as this node knows them (Raft's configuration and leader). The central's
// metrics sampler calls it (metrics.Lottery.OnSample), and the leader
// observer at every change. Call it once Start has returned.
func (r *Replica) RefreshMetrics() {
	m := r.cfg.Metrics
	if m == nil {
		return
	}
	applied := r.raft.AppliedIndex()
	m.AppliedIndex(applied)
	_, leader := r.raft.LeaderWithID()
	servers := r.cfg.Nodes
	if f := r.raft.GetConfiguration(); f.Error() == nil && len(f.Configuration().Servers) > 0 {
		servers = nil
		for _, s := range f.Configuration().Servers {
			servers = append(servers, Node{Name: string(s.ID)})
		}
	}
	nodes := make([]metrics.NodeStatus, 0, len(servers))
	for _, s := range servers {
		n := metrics.NodeStatus{Name: s.Name, Role: roleUnknown}
		if known, ok := find(r.cfg.Nodes, s.Name); ok {
			n.Addr = known.Addr
		}
		switch {
		case s.Name == r.cfg.Name:
			n.Self, n.Applied, n.Role = true, applied, roleOf(r.raft.State())
		case raft.ServerID(s.Name) == leader:
			n.Role = roleLeader
		case leader != "":
			n.Role = roleFollower // a node that follows the leader this node follows
		}
		nodes = append(nodes, n)
	}
	m.Nodes(nodes)
}

// Roles of metrics.NodeStatus.
const (
	roleLeader   = "leader"
	roleFollower = "follower"
	roleUnknown  = "unknown"
)

// roleOf names this node's Raft state: leader, follower, candidate, or
// unknown once it has shut down.
func roleOf(s raft.RaftState) string {
	if s == raft.Shutdown {
		return roleUnknown
	}
	return strings.ToLower(s.String())
}

// observeLeaders marks the node replicated in its metrics and follows
// Raft's leader observations until the node stops: each leader this node
// learns of is a change of leader, and the page's nodes are refreshed.
func (r *Replica) observeLeaders() {
	m := r.cfg.Metrics
	if m == nil {
		return
	}
	m.Leader(false)
	ch := make(chan raft.Observation, observerBuffer)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.raft.RegisterObserver(obs)
	r.observed = make(chan struct{})
	go func() {
		defer close(r.observed)
		defer r.raft.DeregisterObserver(obs)
		r.RefreshMetrics()
		for {
			select {
			case o := <-ch:
				if lo := o.Data.(raft.LeaderObservation); lo.LeaderID != "" {
					m.LeaderChanged()
				}
				r.RefreshMetrics()
			case <-r.stopping:
				return
			}
		}
	}()
}

// waitObserver waits for the leader observer's goroutine, if any, once
// stopping is closed.
func (r *Replica) waitObserver() {
	if r.observed != nil {
		<-r.observed
	}
}

// proposedNow notes when proposal p was made, for its commit latency.
// Called with pendingMu held.
func (r *Replica) proposedNow(p proposal) {
	if r.cfg.Metrics == nil {
		return
	}
	if r.proposedAt == nil {
		r.proposedAt = make(map[proposal]time.Time)
	}
	r.proposedAt[p] = time.Now()
}

// committed records the commit latency of proposal p, if this node made
// it: from its proposal to at, when the state machine received it
// committed.
func (r *Replica) committed(p proposal, at time.Time) {
	if r.cfg.Metrics == nil {
		return
	}
	r.pendingMu.Lock()
	proposed, ok := r.proposedAt[p]
	delete(r.proposedAt, p)
	r.pendingMu.Unlock()
	if ok {
		r.cfg.Metrics.RaftCommit(at.Sub(proposed))
	}
}

// applyStart is when the state machine received a batch of entries; the
// zero time without Metrics, so that a node without them does not read the
// clock.
func (r *Replica) applyStart() time.Time {
	if r.cfg.Metrics == nil {
		return time.Time{}
	}
	return time.Now()
}

// appliedSince records how long the state machine took to apply a batch
// received at began (applyStart).
func (r *Replica) appliedSince(began time.Time) {
	if !began.IsZero() {
		r.cfg.Metrics.RaftApply(time.Since(began))
	}
}
