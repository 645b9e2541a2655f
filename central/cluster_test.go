package central_test

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"lottery"
	"lottery/central"
	"lottery/protocol"
	"lottery/storage"
)

// fakeCluster is a node of a group whose leadership the test decides,
// over a real store.
type fakeCluster struct {
	lottery.Ledger
	mu    sync.Mutex
	leads bool
	hint  string
}

// over makes the fake the ledger of a central: a node over store.
func (f *fakeCluster) over(store *storage.Store) lottery.Ledger {
	f.Ledger = store
	return f
}

func (f *fakeCluster) Leader() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leads, f.hint
}

func (f *fakeCluster) set(leads bool, hint string) {
	f.mu.Lock()
	f.leads, f.hint = leads, hint
	f.mu.Unlock()
}

// TestCluster_NotLeader: a node that does not lead refuses an agency's
// Hello with not_leader and the leader's address (empty while none is
// known), stores nothing, and closes.
func TestCluster_NotLeader(t *testing.T) {
	for _, hint := range []string{"server2:12345", ""} {
		cluster := &fakeCluster{hint: hint}
		s := startNode(t, central.Config{Agencies: 1}, filepath.Join(t.TempDir(), "bets.csv"), "127.0.0.1:0", cluster.over)
		c := dialRaw(t, s.addr)
		c.send(protocol.Hello{Agency: 1})
		m := c.recv()
		e, ok := m.(protocol.Error)
		if !ok || e.Code != lottery.ENotLeader || e.Message != hint {
			t.Fatalf("hello to a follower: %#v, want Error{not_leader, %q}", m, hint)
		}
		c.expectClosed()
		if !strings.Contains(s.log.String(), "code: not_leader") {
			t.Errorf("no not_leader line in the log:\n%s", s.log.String())
		}
	}
}

// TestCluster_LosingLeadershipDropsAgencies: a leader that stops leading
// closes its agencies' connections (they reconnect to the new leader),
// and the draw waits for the log's draw entry, not for the last finished.
func TestCluster_LosingLeadershipDropsAgencies(t *testing.T) {
	cluster := &fakeCluster{leads: true}
	s := startNode(t, central.Config{Agencies: 1}, filepath.Join(t.TempDir(), "bets.csv"), "127.0.0.1:0", cluster.over)
	c := dialRaw(t, s.addr)
	c.hello(1)
	c.finish(1, 0)
	s.c.AgencyFinished(1) // the replicated log's "finished", as package replica applies it
	c.send(protocol.WinnersQuery{Agency: 1})
	if _, err := c.next(waitShort / 4); err == nil {
		t.Fatal("winners answered before the draw entry")
	}
	cluster.set(false, "server3:12345")
	s.c.Leading(false)
	c.expectClosed()

	// The draw entry: every node draws, a later one changes nothing.
	s.c.DrawCommitted()
	s.c.DrawCommitted()
	if n := strings.Count(s.log.String(), "action: sorteo | result: success"); n != 1 {
		t.Fatalf("%d sorteo lines, want 1:\n%s", n, s.log.String())
	}
	cluster.set(true, "")
	d := dialRaw(t, s.addr)
	d.hello(1)
	if w := d.winners(1); len(w) != 0 {
		t.Fatalf("winners %v, want none", w)
	}
}

// TestCluster_DrawRecoveredFromSnapshot: a node whose files a snapshot
// replaced, in which every agency had finished, recovers the draw from
// the file (its draw entry may be gone with the replaced log), once.
func TestCluster_DrawRecoveredFromSnapshot(t *testing.T) {
	s := startNode(t, central.Config{Agencies: 2}, filepath.Join(t.TempDir(), "bets.csv"), "127.0.0.1:0", (&fakeCluster{}).over)
	s.c.AgencyFinished(1)
	s.c.DrawRecovered() // one agency missing: no draw
	if strings.Contains(s.log.String(), "sorteo") {
		t.Fatalf("a draw with an agency missing:\n%s", s.log.String())
	}
	s.c.AgencyFinished(2)
	s.c.DrawRecovered()
	s.c.DrawCommitted() // the entry, if it still comes, changes nothing
	if n := strings.Count(s.log.String(), "action: recuperar_sorteo | result: success"); n != 1 || strings.Contains(s.log.String(), "action: sorteo") {
		t.Fatalf("want one recuperar_sorteo line and no sorteo:\n%s", s.log.String())
	}
}
