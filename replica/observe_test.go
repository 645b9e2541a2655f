package replica_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"lottery/admin"
	"lottery/internal/testutil"
	"lottery/metrics"
)

// waitGroup bounds the waits of these tests on a loaded machine; nothing
// asserts how long anything took.
const waitGroup = 20 * time.Second

// scrape reads a node's metrics as Prometheus would.
func (n *node) scrape(t *testing.T) testutil.Metrics {
	t.Helper()
	return testutil.Scrape(t, metrics.NewRegistry(n.metrics))
}

// TestGroup_Metrics: after an upload to a group of three, exactly the
// leader says it leads, every node observed the leader, the leader timed
// the commit of each batch it proposed and every node its applies, and
// each node lists the group with the leader in it.
func TestGroup_Metrics(t *testing.T) {
	const batches = 20
	g := newGroup(t, 2)
	lead := g.leader()
	g.upload(lead, 1, 1, batches)
	g.identical(lead) // every node applied every batch

	for _, n := range g.nodes {
		t.Run(n.name, func(t *testing.T) {
			testutil.WaitFor(t, waitGroup, n.name+" observes the leader", func() bool {
				v, _ := n.scrape(t).Value("lottery_raft_leader_changes_total")
				return v >= 1
			})
			n.r.RefreshMetrics()
			s := n.scrape(t)
			wantLeads, wantCommits := 0.0, 0.0
			if n == lead {
				wantLeads, wantCommits = 1, batches
			}
			if v, _ := s.Value("lottery_raft_is_leader"); v != wantLeads {
				t.Errorf("is_leader %v, want %v", v, wantLeads)
			}
			if v, _ := s.Value("lottery_raft_commit_seconds"); v != wantCommits {
				t.Errorf("commits timed %v, want %v (the batches this node proposed)", v, wantCommits)
			}
			if v, _ := s.Value("lottery_raft_apply_seconds"); v < 1 {
				t.Errorf("applies timed %v, want some", v)
			}
			if v, _ := s.Value("lottery_raft_applied_index"); v < batches {
				t.Errorf("applied index %v, want at least the %d batches", v, batches)
			}
			st := n.metrics.Snapshot(1, 1)
			var leaders []string
			self := 0
			for _, ns := range st.Nodes {
				if ns.Role == "leader" {
					leaders = append(leaders, ns.Name)
				}
				if ns.Self {
					self++
					if ns.Name != n.name || ns.Applied != st.Applied {
						t.Errorf("self %+v, want %s at applied %d", ns, n.name, st.Applied)
					}
				}
			}
			if !st.Replicated || len(st.Nodes) != 3 || self != 1 || len(leaders) != 1 || leaders[0] != lead.name {
				t.Errorf("the page's nodes %+v, want the three with %s leading", st.Nodes, lead.name)
			}
		})
	}
}

// TestGroup_Readiness: a node's /readyz, with the checks cmd/server gives
// a node, is 200 while the group has a leader, 503 naming "leader" once
// the node is alone (its two peers stopped: no election can succeed), and
// 200 again once a peer is back and an election chose a leader; /livez is
// 200 all along, for losing the quorum is no reason to restart a process.
func TestGroup_Readiness(t *testing.T) {
	g := newGroup(t, 1)
	lead := g.leader()
	g.upload(lead, 1, 1, 5)
	alone := g.follower(lead)
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0", Ready: []admin.Check{
		{Name: "leader", Check: alone.r.LeaderKnown},
		{Name: "applied", Check: alone.r.CaughtUp},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	base := "http://" + srv.Addr().String()
	ready := func(want int, what string) {
		t.Helper()
		testutil.WaitFor(t, waitGroup, what, func() bool {
			code, body := testutil.HTTPGet(t, base+"/readyz?verbose")
			if code == http.StatusServiceUnavailable && !strings.Contains(body, "[-]leader failed: no leader known") {
				t.Fatalf("503 without the leader check named:\n%s", body)
			}
			if live, _ := testutil.HTTPGet(t, base+"/livez"); live != http.StatusOK {
				t.Fatalf("/livez answered %d", live)
			}
			return code == want
		})
	}
	ready(http.StatusOK, "ready in a group with a leader")

	var stopped []*node
	for _, n := range g.nodes {
		if n != alone {
			g.stop(n)
			stopped = append(stopped, n)
		}
	}
	ready(http.StatusServiceUnavailable, "not ready once alone")
	if code, body := testutil.HTTPGet(t, base+"/readyz/leader"); code != http.StatusServiceUnavailable || !strings.Contains(body, "leader failed") {
		t.Errorf("/readyz/leader alone: %d %q", code, body)
	}
	if code, _ := testutil.HTTPGet(t, base+"/readyz/applied"); code != http.StatusOK {
		t.Errorf("/readyz/applied alone: %d, want 200 (it applied all it knows committed)", code)
	}

	g.start(stopped[0]) // two of three: an election succeeds
	ready(http.StatusOK, "ready again after an election")
	if v, _ := alone.scrape(t).Value("lottery_raft_leader_changes_total"); v < 2 {
		t.Errorf("%s observed %v leader changes, want the first leader and the one elected since", alone.name, v)
	}
}
