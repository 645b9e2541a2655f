package replica_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"lottery"
	"lottery/internal/testutil"
	"lottery/logline"
	"lottery/metrics"
	"lottery/pki"
	"lottery/replica"
	"lottery/storage"
)

// node is one in-process central of a test group.
type node struct {
	name     string
	dir      string
	store    *storage.Store
	r        *replica.Replica
	log      *testutil.Buffer
	metrics  *metrics.Lottery // kept across restarts, like a scraper's view
	draws    atomic.Int32
	finished atomic.Int32
	restored atomic.Int32
}

type group struct {
	t     *testing.T
	cfg   replica.Config
	nodes []*node
}

// newGroup starts three nodes on loopback, each with its own certificate
// of a fresh CA, as bin/pki issues them.
func newGroup(t *testing.T, agencies int) *group { return newGroupWith(t, agencies, nil) }

// newGroupWith is newGroup with the group's configuration tweaked.
func newGroupWith(t *testing.T, agencies int, tweak func(*replica.Config)) *group {
	dir := t.TempDir()
	ca, err := pki.NewCA("test CA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "ca.crt"), ca.CertPEM(), 0o600)
	var spec string
	ports := testutil.NodePorts(t, 3, replica.RaftPortOffset)
	g := &group{t: t}
	for i, p := range ports {
		name := "server" + strconv.Itoa(i+1)
		spec += fmt.Sprintf("%s=127.0.0.1:%d,", name, p)
		crt, key, err := ca.IssueCentral(name, []string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name+".crt"), crt, 0o600)
		os.WriteFile(filepath.Join(dir, name+".key"), key, 0o600)
		g.nodes = append(g.nodes, &node{name: name, dir: filepath.Join(dir, name), metrics: metrics.New(agencies)})
	}
	nodes, err := replica.ParseNodes(spec[:len(spec)-1])
	if err != nil {
		t.Fatal(err)
	}
	g.cfg = replica.Config{Nodes: nodes, Agencies: agencies, HeartbeatTimeout: 300 * time.Millisecond}
	if tweak != nil {
		tweak(&g.cfg)
	}
	for _, n := range g.nodes {
		g.start(n)
	}
	t.Cleanup(func() {
		for _, n := range g.nodes {
			g.stop(n)
		}
	})
	return g
}

func (g *group) start(n *node) {
	t := g.t
	os.MkdirAll(n.dir, 0o700)
	store, _, err := storage.Open(filepath.Join(n.dir, "bets.csv"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Dir(n.dir)
	tlsCfg, err := replica.PeerTLS(filepath.Join(base, n.name+".crt"), filepath.Join(base, n.name+".key"), filepath.Join(base, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := g.cfg
	cfg.Name, cfg.Dir, cfg.TLS = n.name, filepath.Join(n.dir, "raft"), tlsCfg
	cfg.Metrics = n.metrics
	n.log = testutil.NewBuffer()
	cfg.Log = logline.New(n.log, slog.LevelInfo)
	r, err := replica.New(cfg, filepath.Join(n.dir, "bets.csv"), store)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(counting{n}); err != nil {
		t.Fatal(err)
	}
	n.store, n.r = store, r
}

// counting is a central that counts what its node tells it.
type counting struct{ n *node }

func (c counting) AgencyFinished(uint32) { c.n.finished.Add(1) }
func (c counting) DrawCommitted()        { c.n.draws.Add(1) }
func (c counting) Leading(bool)          {}
func (c counting) DrawRecovered()        { c.n.restored.Add(1) }

func (g *group) stop(n *node) {
	if n.r == nil {
		return
	}
	n.r.Close()
	n.r.Store().Close()
	n.r = nil
}

// leader waits for a node (among the running ones) to lead.
func (g *group) leader() *node {
	var lead *node
	testutil.WaitFor(g.t, 10*time.Second, "a leader", func() bool {
		for _, n := range g.nodes {
			if n.r != nil {
				if ok, _ := n.r.Leader(); ok {
					lead = n
					return true
				}
			}
		}
		return false
	})
	return lead
}

// follower returns a running node that does not lead.
func (g *group) follower(lead *node) *node {
	for _, n := range g.nodes {
		if n != lead && n.r != nil {
			return n
		}
	}
	g.t.Fatal("no follower running")
	return nil
}

func rows(agency uint32, seq uint64) *lottery.Rows {
	var r lottery.Rows
	for i := range 3 {
		r.AddBet(lottery.Bet{Agency: int(agency), FirstName: "Ana", LastName: "Paz", Document: strconv.Itoa(int(seq)*10 + i), Birthdate: "1999-03-17", Number: 7574 + i})
	}
	return &r
}

func (g *group) upload(lead *node, agency uint32, from, to uint64) {
	for seq := from; seq <= to; seq++ {
		if err := lead.r.Append(agency, seq, rows(agency, seq)).Wait(); err != nil {
			g.t.Fatalf("batch %d of agency %d: %v", seq, agency, err)
		}
	}
}

// identical waits until every running node's bets file equals the leader's.
func (g *group) identical(lead *node) []byte {
	var want []byte
	testutil.WaitFor(g.t, 10*time.Second, "byte-identical bets files", func() bool {
		want, _ = os.ReadFile(filepath.Join(lead.dir, "bets.csv"))
		for _, n := range g.nodes {
			got, _ := os.ReadFile(filepath.Join(n.dir, "bets.csv"))
			if n.r != nil && !bytes.Equal(got, want) {
				return false
			}
		}
		return true
	})
	return want
}

// TestGroup_FailoverAndCatchUp: batches acked by a leader survive its loss;
// the new leader goes on from there; the old one, restarted, catches up;
// the draw entry is applied once on every node; every file is the same.
func TestGroup_FailoverAndCatchUp(t *testing.T) {
	g := newGroup(t, 2)
	lead := g.leader()
	if got := testutil.Lines(lead.log.String()); len(got) == 0 {
		t.Fatal("the leader logged nothing")
	}
	if !bytes.Contains([]byte(lead.log.String()), []byte("action: lider | result: success | nodo: "+lead.name)) {
		t.Fatalf("no lider line in the leader's log:\n%s", lead.log.String())
	}
	g.upload(lead, 1, 1, 20)
	g.upload(lead, 2, 1, 20)

	g.stop(lead)
	old := lead
	lead = g.leader()
	if lead == old {
		t.Fatal("the stopped node still leads")
	}
	if got := lead.r.LastSeq(1); got != 20 {
		t.Fatalf("the new leader has agency 1 at batch %d, want 20", got)
	}
	// A resend of what the old leader acked is a duplicate, not a second copy.
	if c := lead.r.Append(1, 20, rows(1, 20)); c.Wait() != nil || !c.Duplicate {
		t.Fatalf("resent batch 20: err %v, duplicate %v", c.Err, c.Duplicate)
	}
	if c := lead.r.Append(1, 20, rows(1, 99)); lottery.ErrorCode(c.Wait()) != lottery.EConflict {
		t.Fatalf("batch 20 with other bets: %v, want a conflict", c.Err)
	}
	g.upload(lead, 1, 21, 40)
	g.upload(lead, 2, 21, 30)
	for a, last := range map[uint32]uint64{1: 40, 2: 30} {
		if err := lead.r.MarkFinished(a, last).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	g.start(old) // catches up from the log
	want := g.identical(lead)
	if n := bytes.Count(want, []byte("\r\n")); n != (40+30)*3 {
		t.Fatalf("%d rows, want %d", n, 70*3)
	}
	for _, n := range g.nodes {
		testutil.WaitFor(t, 10*time.Second, n.name+" applies the draw", func() bool { return n.draws.Load() >= 1 })
	}
	time.Sleep(200 * time.Millisecond)
	for _, n := range g.nodes {
		if d := n.draws.Load(); d != 1 && n != old {
			t.Errorf("%s applied %d draws, want 1", n.name, d)
		}
	}
}

// TestGroup_NotLeader: a follower refuses to append and names the leader.
func TestGroup_NotLeader(t *testing.T) {
	g := newGroup(t, 1)
	lead := g.leader()
	for _, n := range g.nodes {
		if n == lead {
			continue
		}
		testutil.WaitFor(t, 5*time.Second, "the follower knows the leader", func() bool {
			_, hint := n.r.Leader()
			return hint != ""
		})
		leads, hint := n.r.Leader()
		want := ""
		for _, m := range g.cfg.Nodes {
			if m.Name == lead.name {
				want = m.Addr
			}
		}
		if leads || hint != want {
			t.Errorf("%s: leads %v, hint %q; want false, %q", n.name, leads, hint, want)
		}
		err := n.r.Append(1, 1, rows(1, 1)).Wait()
		var e *lottery.Error
		if !errors.As(err, &e) || e.Code != lottery.ENotLeader {
			t.Errorf("%s: append on a follower: %v, want not_leader", n.name, err)
		}
	}
}

func TestParseNodes(t *testing.T) {
	tests := []struct {
		in   string
		want int
		bad  bool
	}{
		{in: "a=h1:1,b=h2:1,c=h3:1", want: 3},
		{in: "a=h:1,b=h:2,c=h:3,d=h:4,e=h:5", want: 5},
		{in: "a=h:1", bad: true},
		{in: "a=h:1,b=h:2", bad: true},
		{in: "a=h:1,b=h:2,c=h:3,d=h:4", bad: true},
		{in: "a=h:1,a=h:2,c=h:3", bad: true},
		{in: "a=h:1,b=h:1,c=h:3", bad: true},
		{in: "a=h:1,b=h:2,c=h:60000", bad: true},
		{in: "a=h:1,b=h,c=h:3", bad: true},
		{in: "a=h:1,=h:2,c=h:3", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		nodes, err := replica.ParseNodes(tt.in)
		if (err != nil) != tt.bad || len(nodes) != tt.want {
			t.Errorf("ParseNodes(%q) = %d nodes, %v", tt.in, len(nodes), err)
		}
	}
	nodes, _ := replica.ParseNodes("s1=10.0.0.1:12345,s2=10.0.0.2:12345,s3=[::1]:12345")
	if got := nodes[2].RaftAddr(); got != "[::1]:22345" {
		t.Errorf("RaftAddr = %q", got)
	}
}

// TestRaftLog: Raft's own lines follow the log contract.
func TestRaftLog(t *testing.T) {
	g := newGroup(t, 1)
	lead := g.leader()
	g.stop(lead) // the others log failed heartbeats, elections…
	g.leader()
	for _, n := range g.nodes {
		if n == lead {
			continue
		}
		if _, err := testutil.ParseAll(n.log.String()); err != nil {
			t.Errorf("%s: %v", n.name, err)
		}
	}
}

// TestGroup_WipedNodeGetsSnapshot: a node whose disk was wiped, after the
// others compacted their log, catches up from a snapshot (the bets file)
// to the same bytes, and serves the same answers.
func TestGroup_WipedNodeGetsSnapshot(t *testing.T) {
	g := newGroupWith(t, 1, func(c *replica.Config) {
		c.TrailingLogs = 2
	})
	lead := g.leader()
	g.upload(lead, 1, 1, 10)
	wiped := g.follower(lead)
	g.stop(wiped)
	if err := os.RemoveAll(wiped.dir); err != nil {
		t.Fatal(err)
	}
	g.upload(lead, 1, 11, 60)
	if err := lead.r.Snapshot(); err != nil { // and the log is compacted
		t.Fatal(err)
	}
	g.start(wiped)
	testutil.WaitFor(t, 10*time.Second, "the wiped node restores a snapshot", func() bool {
		return strings.Contains(wiped.log.String(), "action: recuperar | result: success | nodo: "+wiped.name+" | origen: snapshot")
	})
	want := g.identical(lead)
	if n := bytes.Count(want, []byte("\r\n")); n != 60*3 {
		t.Fatalf("%d rows, want %d", n, 60*3)
	}
	if got := wiped.r.LastSeq(1); got != 60 {
		t.Errorf("the wiped node has agency 1 at batch %d, want 60", got)
	}
	testutil.WaitFor(t, 5*time.Second, "the Restored hook", func() bool { return wiped.restored.Load() == 1 })
}

// TestGroup_StoreFailureStopsTheNode: a follower whose store cannot apply
// an entry does not count it applied: it fails (and must stop); once
// restarted, Raft replays the entry and its file is the others' again.
func TestGroup_StoreFailureStopsTheNode(t *testing.T) {
	g := newGroup(t, 1)
	lead := g.leader()
	g.upload(lead, 1, 1, 5)
	sick := g.follower(lead)
	sick.r.Store().Close()   // its next entry finds the store closed under it
	g.upload(lead, 1, 6, 10) // the other two are still a majority
	select {
	case <-sick.r.Failed():
	case <-time.After(10 * time.Second):
		t.Fatal("the node whose store failed did not fail")
	}
	if lottery.ErrorCode(sick.r.Err()) != lottery.EShuttingDown {
		t.Fatalf("Err = %v, want the closed store's error", sick.r.Err())
	}
	g.stop(sick) // Close returns although the failed apply was held
	g.start(sick)
	if want := g.identical(lead); bytes.Count(want, []byte("\r\n")) != 10*3 {
		t.Fatalf("%d rows, want %d", bytes.Count(want, []byte("\r\n")), 10*3)
	}
}

// TestGroup_RestartAfterSnapshot: a node restarted after a snapshot
// reloads it and replays the entries after it: its file is the others'.
func TestGroup_RestartAfterSnapshot(t *testing.T) {
	g := newGroupWith(t, 1, func(c *replica.Config) { c.TrailingLogs = 2 })
	lead := g.leader()
	g.upload(lead, 1, 1, 20)
	for _, n := range g.nodes {
		testutil.WaitFor(t, 10*time.Second, n.name+" applies batch 20", func() bool { return n.r.LastSeq(1) == 20 })
		if err := n.r.Snapshot(); err != nil {
			t.Fatal(err)
		}
	}
	g.upload(lead, 1, 21, 30)
	follower := g.follower(lead)
	g.stop(follower)
	g.upload(lead, 1, 31, 40)
	g.start(follower)
	if want := g.identical(lead); bytes.Count(want, []byte("\r\n")) != 40*3 {
		t.Fatalf("%d rows, want %d", bytes.Count(want, []byte("\r\n")), 40*3)
	}
	if !strings.Contains(follower.log.String(), "origen: snapshot") {
		t.Errorf("the restarted node did not reload its snapshot:\n%s", follower.log.String())
	}
}
