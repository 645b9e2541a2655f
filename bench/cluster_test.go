package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testHeartbeat keeps the tests' elections short.
const testHeartbeat = 300 * time.Millisecond

// TestBench_Centrals3: three replicated nodes store every bet, each
// agency gets its winners, and every node's bets file is the same (Run
// fails otherwise); the same Bench runs the single central too.
func TestBench_Centrals3(t *testing.T) {
	const agencies, bets = 2, 500
	b, err := Prepare(Scenario{Agencies: agencies, Bets: bets, Centrals: 3, TLS: true, HeartbeatTimeout: testHeartbeat, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, k := range []int{3, 1} {
		r, err := b.RunCentrals(context.Background(), k, k)
		if err != nil {
			t.Fatalf("%d centrals: %v", k, err)
		}
		checkSane(t, r, agencies, bets)
		if r.Centrals != k {
			t.Errorf("centrals = %d, want %d", r.Centrals, k)
		}
		// Each node stores every batch: at least one group commit each.
		if r.Fsyncs < int64(2*k) {
			t.Errorf("%d centrals: fsyncs = %d, want at least %d", k, r.Fsyncs, 2*k)
		}
	}
	if _, err := b.RunCentrals(context.Background(), 9, 5); err == nil {
		t.Error("5 centrals on a Bench prepared for 3 ran")
	}
}

// TestBench_CentralsPlain: without TLS for the agencies, the nodes still
// speak mutual TLS to each other.
func TestBench_CentralsPlain(t *testing.T) {
	r := runScenario(t, Scenario{Agencies: 1, Bets: 300, Centrals: 3, HeartbeatTimeout: testHeartbeat})
	checkSane(t, r, 1, 300)
}

// TestBench_Failover: two leader kills during uploads; each is timed, the
// killed node comes back and catches up, and at the end every bet is
// stored once, on every node alike, and every agency has its winners.
func TestBench_Failover(t *testing.T) {
	const agencies, bets, kills = 2, 3000, 2
	b, err := Prepare(Scenario{Agencies: agencies, Bets: bets, Centrals: 3, Failover: kills, TLS: true,
		HeartbeatTimeout: testHeartbeat, MaxAmount: 20, Window: 4, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r, err := b.RunFailover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.FailoverMs) != kills || len(r.CommitMs) != kills || len(r.ElectedMs) != kills {
		t.Fatalf("%d failovers, %d commits, %d elections timed; want %d", len(r.FailoverMs), len(r.CommitMs), len(r.ElectedMs), kills)
	}
	for i := range kills {
		if !(r.ElectedMs[i] > 0 && r.CommitMs[i] > 0 && r.CommitMs[i] <= r.FailoverMs[i]) {
			t.Errorf("kill %d: elected %v ms, commit %v ms, ack %v ms: want 0 < commit <= ack, elected > 0", i+1, r.ElectedMs[i], r.CommitMs[i], r.FailoverMs[i])
		}
	}
	if r.FailoverMaxMs < r.FailoverP50Ms || r.FailoverMaxMs <= 0 {
		t.Errorf("p50 %v, max %v", r.FailoverP50Ms, r.FailoverMaxMs)
	}
	if want := int64(agencies * bets * kills); r.StoredBets != want || r.Winners != agencies*kills*DefaultWinners {
		t.Errorf("stored %d, winners %d; want %d, %d", r.StoredBets, r.Winners, want, agencies*kills*DefaultWinners)
	}
}

func TestPrepare_ErrCentrals(t *testing.T) {
	for name, sc := range map[string]Scenario{
		"Two":              {Agencies: 1, Bets: 1, Centrals: 2},
		"Four":             {Agencies: 1, Bets: 1, Centrals: 4},
		"Negative":         {Agencies: 1, Bets: 1, Centrals: -1},
		"ServerBin":        {Agencies: 1, Bets: 1, Centrals: 3, ServerBin: "bin/server"},
		"Preload":          {Agencies: 1, Bets: 1, Centrals: 3, Preload: 10},
		"FailoverNoGroup":  {Agencies: 1, Bets: 1, Failover: 2},
		"FailoverNegative": {Agencies: 1, Bets: 1, Centrals: 3, Failover: -1},
	} {
		t.Run(name, func(t *testing.T) {
			sc.Dir = t.TempDir()
			if _, err := Prepare(sc); err == nil {
				t.Errorf("Prepare(%+v) succeeded", sc)
			}
		})
	}
}

func TestIdenticalFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b, c, d := write("a", "1,2\r\n"), write("b", "1,2\r\n"), write("c", "1,3\r\n"), write("d", "1,2\r\n3,4\r\n")
	if err := identicalFiles([]string{a, b}, time.Millisecond); err != nil {
		t.Errorf("same files: %v", err)
	}
	if err := identicalFiles([]string{a, b, c}, time.Millisecond); err == nil {
		t.Error("same size, other bytes: accepted")
	}
	if err := identicalFiles([]string{a, d}, 50*time.Millisecond); err == nil {
		t.Error("other sizes: accepted")
	}
}
