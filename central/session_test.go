package central_test

import (
	"path/filepath"
	"testing"

	"lottery/central"
	"lottery/internal/testutil"
	"lottery/protocol"
)

// TestSession_PipelinedBeforeDraw sends Hello, Finished and WinnersQuery in
// one write, before the draw: the Welcome and the FinishedAck must arrive
// while the winners query still waits, not after the draw.
func TestSession_PipelinedBeforeDraw(t *testing.T) {
	srv := startServer(t, central.Config{Agencies: 2}, filepath.Join(t.TempDir(), "bets.csv"))
	c := dialRaw(t, srv.addr)
	var b []byte
	for _, m := range []protocol.Message{protocol.Hello{Agency: 1}, protocol.Finished{Agency: 1}, protocol.WinnersQuery{Agency: 1}} {
		b = append(b, testutil.Frame(t, m)...)
	}
	c.write(b)
	if m, ok := c.recv().(protocol.Welcome); !ok {
		t.Fatalf("first answer %#v, want Welcome", m)
	}
	if m, ok := c.recv().(protocol.FinishedAck); !ok {
		t.Fatalf("second answer %#v, want FinishedAck", m)
	}
	other := dialRaw(t, srv.addr)
	other.hello(2)
	other.finish(2, 0)
	if got := c.readWinners(); len(got) != 0 {
		t.Errorf("winners %v, want none", got)
	}
}

// TestSession_LeaveWhileWaiting: a peer that asks for its winners and then
// disconnects must not keep its session (and a connection slot) until the
// draw. With a limit of 2 connections, three such peers in a row must not
// lock the real agencies out.
func TestSession_LeaveWhileWaiting(t *testing.T) {
	srv := startServer(t, central.Config{Agencies: 2, MaxConnections: 2}, filepath.Join(t.TempDir(), "bets.csv"))
	// One after the other: a peer of the same agency arriving while the
	// previous one is still waiting would take its session over instead.
	for i := range 3 {
		c := dialRaw(t, srv.addr)
		c.hello(1)
		c.send(protocol.WinnersQuery{Agency: 1})
		c.conn.Close()
		waitFor(t, "the session of the peer that left to end", func() bool {
			return len(testutil.Find(srv.log.Lines(t), "consulta_ganadores", "fail")) == i+1
		})
	}
	a, b := dialRaw(t, srv.addr), dialRaw(t, srv.addr)
	a.hello(1)
	b.hello(2)
	a.finish(1, 0)
	b.finish(2, 0)
	if got := a.winners(1); len(got) != 0 {
		t.Errorf("winners %v, want none", got)
	}
}
