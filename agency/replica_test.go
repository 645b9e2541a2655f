package agency_test

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"lottery/agency"
	"lottery/gendata"
	"lottery/internal/testutil"
	"lottery/logline"
	"lottery/protocol"
)

// TestAgency_FollowsLeader: a replicated central of three nodes, one that
// leads, one that names it in its not_leader answers, one that knows no
// leader. Whatever the order of the list (and even when the leader is not
// in it), the agency ends up at the leader without a pause, uploads
// everything there once, finishes there and gets its winners from it.
func TestAgency_FollowsLeader(t *testing.T) {
	const (
		leader = iota // leads
		hint          // answers not_leader naming the leader
		empty         // answers not_leader naming nobody
	)
	tests := []struct {
		name string
		list []int // the nodes in server.address, in order
	}{
		{"LeaderFirst", []int{leader, hint, empty}},
		{"HintFirst", []int{hint, empty, leader}},
		{"EmptyFirst", []int{empty, hint, leader}},
		{"EmptyThenLeader", []int{empty, leader, hint}},
		{"LeaderNotListed", []int{empty, hint}},
		{"OnlyHint", []int{hint}},
	}
	bets := gendata.Bets(1, 500, 2, seed)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var nodes [3]*fakeCentral
			nodes[leader] = newFake(t, func(f *fakeCentral) { f.winners = []string{"12", "34"} })
			nodes[hint] = newFake(t, func(f *fakeCentral) { f.follow(nodes[leader].addr) })
			nodes[empty] = newFake(t, func(f *fakeCentral) { f.follow("") })
			var list []string
			for _, n := range tt.list {
				list = append(list, nodes[n].addr)
			}
			// A pause would take a minute: the test would time out.
			ctx, cancel := context.WithTimeout(context.Background(), waitShort)
			defer cancel()
			res, err, logs := runAgency(t, ctx, agency.Config{ID: 1, ServerAddress: strings.Join(list, ","),
				DataFile: writeBets(t, bets), MaxAmount: 10, BackoffInitial: time.Minute, BackoffMax: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			l := nodes[leader]
			if got := l.stored(); !slices.Equal(got, bets) {
				t.Fatalf("the leader stored %d bets, want the file's %d in order", len(got), len(bets))
			}
			snap := l.snapshot()
			if snap.duplicates != 0 || snap.connections != 1 {
				t.Errorf("the leader got %d duplicates over %d connections, want none over 1", snap.duplicates, snap.connections)
			}
			if want := []protocol.Finished{{Agency: 1, LastSeq: 50}}; !slices.Equal(snap.finished, want) {
				t.Errorf("the leader got finished %v, want %v", snap.finished, want)
			}
			if res.Sent != len(bets) || !slices.Equal(res.Winners, []string{"12", "34"}) {
				t.Errorf("result %+v, want %d bets sent and the leader's winners", res, len(bets))
			}
			for _, n := range []int{hint, empty} {
				if s := nodes[n].snapshot(); s.frames != 0 || len(s.finished) != 0 || s.queries != 0 {
					t.Errorf("a follower got %d batches, %d finished, %d queries", s.frames, len(s.finished), s.queries)
				}
			}
			lines := logs.Lines(t)
			if c, ok := testutil.FindOne(lines, "conectar", "success"); !ok || c.Get("server_address") != l.addr {
				t.Errorf("conectar success line %q, want server_address: %s", c.Raw, l.addr)
			}
			for _, c := range testutil.Find(lines, "conectar", "in_progress") {
				if c.Get("retry_in") != "0s" {
					t.Errorf("a pause on the way to the leader: %s", c.Raw)
				}
				if strings.Contains(c.Get("error"), "the leader is") && c.Get("lider") != l.addr {
					t.Errorf("a redirection not naming the leader: %s", c.Raw)
				}
			}
		})
	}
}

// TestAgency_LeaderChangesMidUpload: the leader closes the connection in
// the middle of the upload (batch 6 stored, not acked) and another node
// takes over with the batches replicated to it (its last_seq). The agency
// finds the new leader, resends its unacked window from the first unacked
// batch: the new leader acks again those it has, stores the rest from
// last_seq+1. Every bet ends up stored once, nothing is sent again beyond
// the window, and the agency finishes and gets its winners there.
func TestAgency_LeaderChangesMidUpload(t *testing.T) {
	const window = 8
	tests := []struct {
		name       string
		replicated int  // batches of the old leader the new one has
		middle     bool // a node that knows no leader sits between them in the list
		hint       bool // the old leader names the new one
	}{
		{name: "AllReplicated/NextInList", replicated: 6},
		{name: "UnackedNotReplicated/NextInList", replicated: 5},
		{name: "AllReplicated/Hint", replicated: 6, middle: true, hint: true},
		{name: "UnackedNotReplicated/RoundRobin", replicated: 5, middle: true},
	}
	bets := gendata.Bets(1, 600, 2, seed)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := newFake(t, func(f *fakeCentral) { f.winners = []string{"7"}; f.follow("") })
			mid := newFake(t, func(f *fakeCentral) { f.follow("") })
			var old *fakeCentral
			old = newFake(t, func(f *fakeCentral) {
				f.dropAt = 6
				f.onDrop = func() {
					stored := old.storedBatches()
					next.lead(stored[:tt.replicated])
					hint := ""
					if tt.hint {
						hint = next.addr
					}
					old.follow(hint)
				}
			})
			list := []string{old.addr, next.addr}
			if tt.middle {
				list = []string{old.addr, mid.addr, next.addr}
			}
			res, err, logs := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: strings.Join(list, ","),
				DataFile: writeBets(t, bets), MaxAmount: 10, Window: window, BackoffInitial: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if got := next.stored(); !slices.Equal(got, bets) {
				t.Fatalf("the new leader has %d bets, want the file's %d once each, in order", len(got), len(bets))
			}
			snap := next.snapshot()
			if snap.duplicates > window {
				t.Errorf("%d batches sent again, more than the window of %d", snap.duplicates, window)
			}
			if got := snap.duplicates; got < tt.replicated-5 {
				t.Errorf("%d duplicates: batch 6, stored but never acked, was not resent", got)
			}
			if want := []protocol.Finished{{Agency: 1, LastSeq: 60}}; !slices.Equal(snap.finished, want) {
				t.Errorf("the new leader got finished %v, want %v", snap.finished, want)
			}
			if res.Sent != len(bets) || res.Batches != 60 || !slices.Equal(res.Winners, []string{"7"}) {
				t.Errorf("result %+v, want %d bets in 60 batches and the new leader's winners", res, len(bets))
			}
			if s := old.snapshot(); len(s.finished) != 0 {
				t.Errorf("the old leader got finished %v", s.finished)
			}
			lines := logs.Lines(t)
			if l, ok := testutil.FindOne(lines, "conexion_perdida", "in_progress"); !ok || l.Get("server_address") != old.addr {
				t.Errorf("conexion_perdida line %q, want server_address: %s", l.Raw, old.addr)
			}
			conns := testutil.Find(lines, "conectar", "success")
			if len(conns) != 2 || conns[1].Get("server_address") != next.addr {
				t.Errorf("conectar success lines %v, want the old leader then %s", conns, next.addr)
			}
			if l, ok := testutil.FindOne(lines, "reenviar", "success"); !ok {
				t.Errorf("no reenviar line: %q", l.Raw)
			}
		})
	}
}

// TestAgency_LeaderDiesBeforeDraw: the leader goes away while the agency
// waits for the draw; the agency asks the new leader again.
func TestAgency_LeaderDiesBeforeDraw(t *testing.T) {
	bets := gendata.Bets(1, 100, 1, seed)
	next := newFake(t, func(f *fakeCentral) { f.winners = []string{"42"}; f.follow("") })
	old := newFake(t, func(f *fakeCentral) { f.holdWinners = true })
	go func() {
		select {
		case <-old.queried:
		case <-time.After(waitLong):
			return
		}
		next.lead(old.storedBatches())
		old.follow(next.addr)
		old.dropConns()
	}()
	res, err, logs := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: old.addr + "," + next.addr,
		DataFile: writeBets(t, bets), BackoffInitial: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Winners, []string{"42"}) || res.Sent != len(bets) {
		t.Errorf("result %+v, want the new leader's winners", res)
	}
	if s := next.snapshot(); s.queries != 1 || s.frames != 0 {
		t.Errorf("the new leader got %d queries and %d batches, want 1 query and no batch", s.queries, s.frames)
	}
	if l, ok := testutil.FindOne(logs.Lines(t), "consulta_ganadores", "success"); !ok || l.Get("cant_ganadores") != "1" {
		t.Errorf("consulta_ganadores line %q", l.Raw)
	}
}

// TestAgency_RedirectLoop: two confused nodes name each other as the
// leader, in their answer to the Hello or, believing they lead until a
// batch comes, in their answer to the first batch. The agency follows them
// only 2×len(list) times before the central does real work, then backs
// off, takes their answers as failures and goes on round the list, to the
// real leader.
func TestAgency_RedirectLoop(t *testing.T) {
	for _, welcome := range []bool{false, true} {
		t.Run("welcome="+strconv.FormatBool(welcome), func(t *testing.T) {
			l := newFake(t, nil)
			a := newFake(t, func(f *fakeCentral) { f.welcome = welcome })
			b := newFake(t, func(f *fakeCentral) { f.welcome = welcome })
			a.follow(b.addr)
			b.follow(a.addr)
			res, err, logs := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: strings.Join([]string{a.addr, b.addr, l.addr}, ","),
				DataFile: writeBets(t, gendata.Bets(1, 50, 1, seed)), BackoffInitial: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != 50 || len(l.stored()) != 50 || len(a.stored())+len(b.stored()) != 0 {
				t.Errorf("sent %d, the leader stored %d, the others %d and %d; want 50, 50, 0, 0",
					res.Sent, len(l.stored()), len(a.stored()), len(b.stored()))
			}
			lines := logs.Lines(t)
			redirects, pauses := 0, 0
			for _, c := range slices.Concat(testutil.Find(lines, "conectar", "in_progress"), testutil.Find(lines, "conexion_perdida", "in_progress")) {
				if c.Has("lider") {
					redirects++
				}
				if c.Get("retry_in") != "0s" {
					pauses++
				}
			}
			if redirects != 2*3 || pauses != 1 {
				t.Errorf("%d redirections and %d pauses, want 6 and 1", redirects, pauses)
			}
			if c := testutil.Find(lines, "conectar", "success"); len(c) == 0 || c[len(c)-1].Get("server_address") != l.addr {
				t.Errorf("conectar success lines %v, want the last at %s", c, l.addr)
			}
		})
	}
}

// TestAgency_RoundBackoff: with every node down, the pause comes once a
// whole round of the list has failed, and doubles each round.
func TestAgency_RoundBackoff(t *testing.T) {
	var list []string
	for range 3 {
		list = append(list, "127.0.0.1:"+strconv.Itoa(testutil.FreePort(t)))
	}
	logs := testutil.NewBuffer()
	a, err := agency.New(agency.Config{ID: 1, ServerAddress: strings.Join(list, ","),
		BackoffInitial: 20 * time.Millisecond, BackoffMax: time.Minute}, logline.New(logs, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := a.Run(ctx)
		done <- err
	}()
	testutil.WaitFor(t, waitLong, "four rounds", func() bool {
		return len(testutil.Find(testutil.Lines(logs.String()), "conectar", "in_progress")) >= 12
	})
	cancel()
	<-done
	tries := testutil.Find(logs.Lines(t), "conectar", "in_progress")[:12]
	step := 20 * time.Millisecond
	for i, c := range tries {
		if want := list[i%3]; c.Get("server_address") != want {
			t.Errorf("attempt %d at %s, want %s (round robin)", i+1, c.Get("server_address"), want)
		}
		wait, err := time.ParseDuration(c.Get("retry_in"))
		if err != nil {
			t.Fatal(err)
		}
		if i%3 != 2 {
			if wait != 0 {
				t.Errorf("attempt %d: retry_in %v inside a round, want 0", i+1, wait)
			}
			continue
		}
		if wait < step/2-time.Millisecond || wait > step+time.Millisecond {
			t.Errorf("attempt %d: retry_in %v after round %d, want between %v and %v", i+1, wait, i/3+1, step/2, step)
		}
		step *= 2
	}
}
