package metrics_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"lottery"
	"lottery/metrics"
	"lottery/pki"
)

// TestMain fails the package if the sampler goroutine outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// drawTime is a fixed instant: no test reads the wall clock's value.
var drawTime = time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC)

// busy returns a central's instruments after an upload of three agencies
// that touched every metric: the replicated and audited kind.
func busy(t *testing.T) *metrics.Lottery {
	t.Helper()
	l := metrics.New(3)
	l.ConnectionOpened()
	l.ConnectionOpened()
	l.ConnectionOpened()
	l.ConnectionClosed()
	l.AgencyConnected(1)
	l.AgencyConnected(2)
	l.BatchStored(1, 100)
	l.BatchStored(1, 50)
	l.BatchStored(2, 7)
	l.BatchDuplicate(1)
	l.BatchRefused(2, lottery.EInvalidBet)
	l.BatchRefused(2, lottery.EInvalidBet)
	l.BatchRefused(1, lottery.EConflict)
	l.BatchRefused(99, lottery.EUnknownAgency)
	l.AckLatency(2 * time.Millisecond)
	l.AckLatency(3 * time.Millisecond)
	l.Fsync(time.Millisecond)
	l.ConnectionRefused(metrics.ReasonTooManyConnections)
	l.HandshakeFailed(pki.ReasonUnknownCA)
	l.HandshakeFailed(pki.ReasonUnknownCA)
	l.AgencyFinished(1)
	l.AgencyFinished(2)
	l.AgencyFinished(3)
	l.DrawCompleted(drawTime, map[uint32]int{1: 2, 3: 1})
	l.InFlight(4096)
	l.InFlightLimit(8 << 20)
	l.StoreSize(12345, 157)
	l.SetCheckpoint(160, []byte{0xde, 0xad, 0xbe, 0xef})
	l.Leader(true)
	l.LeaderChanged()
	l.RaftCommit(4 * time.Millisecond)
	l.RaftApply(time.Millisecond)
	l.AppliedIndex(42)
	return l
}

func TestLottery_Collect(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(busy(t))
	want := `
# HELP lottery_agencies Agencies the central waits for before the draw (AGENCIES).
# TYPE lottery_agencies gauge
lottery_agencies 3
# HELP lottery_agencies_connected Agencies with at least one authenticated connection open.
# TYPE lottery_agencies_connected gauge
lottery_agencies_connected 2
# HELP lottery_agencies_finished Agencies that said they are done.
# TYPE lottery_agencies_finished gauge
lottery_agencies_finished 3
# HELP lottery_bets_stored_total Bets stored, by agency (agency 0: numbers outside 1..AGENCIES, always refused).
# TYPE lottery_bets_stored_total counter
lottery_bets_stored_total{agency="0"} 0
lottery_bets_stored_total{agency="1"} 150
lottery_bets_stored_total{agency="2"} 7
lottery_bets_stored_total{agency="3"} 0
# HELP lottery_batches_total Batches answered, by agency and result: stored, duplicate, or the refusal code.
# TYPE lottery_batches_total counter
lottery_batches_total{agency="0",result="duplicate"} 0
lottery_batches_total{agency="0",result="stored"} 0
lottery_batches_total{agency="0",result="unknown_agency"} 1
lottery_batches_total{agency="1",result="conflict"} 1
lottery_batches_total{agency="1",result="duplicate"} 1
lottery_batches_total{agency="1",result="stored"} 2
lottery_batches_total{agency="2",result="duplicate"} 0
lottery_batches_total{agency="2",result="invalid_bet"} 2
lottery_batches_total{agency="2",result="stored"} 1
lottery_batches_total{agency="3",result="duplicate"} 0
lottery_batches_total{agency="3",result="stored"} 0
# HELP lottery_connections_open Connections open on the agencies' port, authenticated or not.
# TYPE lottery_connections_open gauge
lottery_connections_open 2
# HELP lottery_draw_completed_timestamp_seconds Unix time of the draw; 0 before it.
# TYPE lottery_draw_completed_timestamp_seconds gauge
lottery_draw_completed_timestamp_seconds 1.7723952e+09
# HELP lottery_winners Winning bets by agency, once the draw is done.
# TYPE lottery_winners gauge
lottery_winners{agency="1"} 2
lottery_winners{agency="2"} 0
lottery_winners{agency="3"} 1
# HELP lottery_inflight_bytes Bytes of the in-flight budget in use: batches read and not answered yet.
# TYPE lottery_inflight_bytes gauge
lottery_inflight_bytes 4096
# HELP lottery_inflight_limit_bytes Size of the in-flight budget (MAX_INFLIGHT_BYTES).
# TYPE lottery_inflight_limit_bytes gauge
lottery_inflight_limit_bytes 8.388608e+06
# HELP lottery_store_bytes Committed size of the bets file.
# TYPE lottery_store_bytes gauge
lottery_store_bytes 12345
# HELP lottery_store_bets Bets in the bets file, recovered ones included.
# TYPE lottery_store_bets gauge
lottery_store_bets 157
# HELP lottery_raft_is_leader 1 while this node leads its Raft group, else 0.
# TYPE lottery_raft_is_leader gauge
lottery_raft_is_leader 1
# HELP lottery_raft_leader_changes_total Changes of the group's leader this node observed.
# TYPE lottery_raft_leader_changes_total counter
lottery_raft_leader_changes_total 1
# HELP lottery_raft_applied_index This node's last applied Raft log index.
# TYPE lottery_raft_applied_index gauge
lottery_raft_applied_index 42
# HELP lottery_audit_tree_size Leaves (acked batches) in the audit log's latest checkpoint.
# TYPE lottery_audit_tree_size gauge
lottery_audit_tree_size 160
`
	names := []string{
		"lottery_agencies", "lottery_agencies_connected", "lottery_agencies_finished",
		"lottery_bets_stored_total", "lottery_batches_total", "lottery_connections_open",
		"lottery_draw_completed_timestamp_seconds", "lottery_winners", "lottery_inflight_bytes",
		"lottery_inflight_limit_bytes", "lottery_store_bytes", "lottery_store_bets",
		"lottery_raft_is_leader", "lottery_raft_leader_changes_total", "lottery_raft_applied_index",
		"lottery_audit_tree_size",
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	counts := map[string]uint64{
		"lottery_batch_ack_seconds":   2,
		"lottery_fsync_seconds":       1,
		"lottery_raft_commit_seconds": 1,
		"lottery_raft_apply_seconds":  1,
	}
	for name, want := range counts {
		if got := histogramCount(t, reg, name); got != want {
			t.Errorf("%s: %d observations, want %d", name, got, want)
		}
	}
}

// histogramCount returns how many observations the histogram called name
// holds.
func histogramCount(t *testing.T, g prometheus.Gatherer, name string) uint64 {
	t.Helper()
	mf := family(t, g, name)
	if mf == nil || mf.GetType() != dto.MetricType_HISTOGRAM || len(mf.Metric) != 1 {
		t.Fatalf("%s: not one histogram: %v", name, mf)
	}
	return mf.Metric[0].GetHistogram().GetSampleCount()
}

// family returns the gathered family called name, nil if absent.
func family(t *testing.T, g prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

// TestLottery_Lint runs Prometheus's own linter (names, units, _total only
// on counters, help texts) over every metric, in the states where
// different ones appear, and over the runtime and process collectors.
func TestLottery_Lint(t *testing.T) {
	tests := []struct {
		name string
		l    *metrics.Lottery
	}{
		{"Fresh", metrics.New(5)},
		{"Busy", busy(t)},
		{"NoAgencies", metrics.New(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems, err := testutil.CollectAndLint(tt.l)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("%s: %s", p.Metric, p.Text)
			}
			reg := metrics.NewRegistry(tt.l)
			problems, err = testutil.GatherAndLint(reg)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("%s: %s", p.Metric, p.Text)
			}
		})
	}
}

func TestNewRegistry_RuntimeAndProcess(t *testing.T) {
	reg := metrics.NewRegistry(metrics.New(1))
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "lottery_agencies"} {
		if family(t, reg, name) == nil {
			t.Errorf("%s missing", name)
		}
	}
	// Each registry is its own: two centrals in one process (tests, the
	// benchmark's nodes) do not collide.
	metrics.NewRegistry(metrics.New(1))
}

// TestLottery_SingleCentral: a central that never called a Raft method
// exports no Raft metrics, and no checkpoint before there is one.
func TestLottery_SingleCentral(t *testing.T) {
	l := metrics.New(2)
	l.BatchStored(1, 3)
	reg := prometheus.NewRegistry()
	reg.MustRegister(l)
	for _, name := range []string{
		"lottery_raft_is_leader", "lottery_raft_leader_changes_total", "lottery_raft_applied_index",
		"lottery_raft_commit_seconds", "lottery_raft_apply_seconds", "lottery_audit_tree_size", "lottery_winners",
	} {
		if family(t, reg, name) != nil {
			t.Errorf("%s exported by a single central before it means anything", name)
		}
	}
	if got := testutil.ToFloat64(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		collectNamed(l, "lottery_draw_completed_timestamp_seconds", ch)
	})); got != 0 {
		t.Errorf("lottery_draw_completed_timestamp_seconds = %v before the draw, want 0", got)
	}
}

// collectNamed sends only the metrics of c whose name is name.
func collectNamed(c prometheus.Collector, name string, out chan<- prometheus.Metric) {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	for m := range ch {
		if strings.Contains(m.Desc().String(), `fqName: "`+name+`"`) {
			out <- m
		}
	}
}

func TestLottery_Gauges(t *testing.T) {
	tests := []struct {
		name   string
		metric string
		do     func(*metrics.Lottery)
		want   float64
	}{
		{"ConnectionsOpen", "lottery_connections_open", func(l *metrics.Lottery) {
			l.ConnectionOpened()
			l.ConnectionOpened()
			l.ConnectionClosed()
		}, 1},
		{"InFlight", "lottery_inflight_bytes", func(l *metrics.Lottery) { l.InFlight(10); l.InFlight(3) }, 3},
		{"StoreBytes", "lottery_store_bytes", func(l *metrics.Lottery) { l.StoreSize(99, 1) }, 99},
		{"Finished", "lottery_agencies_finished", func(l *metrics.Lottery) {
			l.AgencyFinished(1)
			l.AgencyFinished(1) // again: changes nothing
			l.AgencyFinished(0) // outside 1..N: ignored
			l.AgencyFinished(9)
		}, 1},
		{"Connected", "lottery_agencies_connected", func(l *metrics.Lottery) {
			l.AgencyConnected(1)
			l.AgencyConnected(1) // a reconnection overlapping the old one
			l.AgencyConnected(2)
			l.AgencyDisconnected(1)
			l.AgencyDisconnected(2)
		}, 1},
		{"Leader", "lottery_raft_is_leader", func(l *metrics.Lottery) { l.Leader(true); l.Leader(false) }, 0},
		{"Applied", "lottery_raft_applied_index", func(l *metrics.Lottery) { l.AppliedIndex(7) }, 7},
		{"DrawAt", "lottery_draw_completed_timestamp_seconds", func(l *metrics.Lottery) {
			l.DrawCompleted(time.Unix(1000, 500e6), nil)
		}, 1000.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := metrics.New(2)
			tt.do(l)
			got := testutil.ToFloat64(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
				collectNamed(l, tt.metric, ch)
			}))
			if got != tt.want {
				t.Errorf("%s = %v, want %v", tt.metric, got, tt.want)
			}
		})
	}
}

// TestLottery_RefusalCodes: every code the domain defines is its own
// result label; anything else is "other".
func TestLottery_RefusalCodes(t *testing.T) {
	tests := []struct {
		code lottery.Code
		want string
	}{
		{lottery.EInvalidBet, "invalid_bet"},
		{lottery.EConflict, "conflict"},
		{lottery.ESequence, "bad_sequence"},
		{lottery.EWrongAgency, "wrong_agency"},
		{lottery.EStorage, "storage"},
		{lottery.EMalformed, "malformed"},
		{lottery.ENotLeader, "not_leader"},
		{lottery.NoError, metrics.Other},
		{lottery.Code(31), metrics.Other},
		{lottery.Code(32), metrics.Other},
		{lottery.Code(255), metrics.Other},
	}
	for _, tt := range tests {
		t.Run(tt.want+fmt.Sprint(uint8(tt.code)), func(t *testing.T) {
			l := metrics.New(1)
			l.BatchRefused(1, tt.code)
			st := l.Snapshot(1, 1)
			if st.Refusals[tt.want] != 1 || len(st.Refusals) != 1 {
				t.Errorf("refusals %v, want {%s: 1}", st.Refusals, tt.want)
			}
		})
	}
}

func TestLottery_Reasons(t *testing.T) {
	tests := []struct {
		name   string
		count  func(*metrics.Lottery, string)
		metric string
		reason string
		want   string
	}{
		{"ConnKnown", (*metrics.Lottery).ConnectionRefused, "lottery_connections_refused_total",
			metrics.ReasonUnauthenticatedLimit, metrics.ReasonUnauthenticatedLimit},
		{"ConnUnknown", (*metrics.Lottery).ConnectionRefused, "lottery_connections_refused_total",
			"made up by a peer", metrics.Other},
		{"ConnEmpty", (*metrics.Lottery).ConnectionRefused, "lottery_connections_refused_total", "", metrics.Other},
		{"HandshakeUnknown", (*metrics.Lottery).HandshakeFailed, "lottery_handshakes_failed_total", "x", metrics.Other},
	}
	for _, r := range []string{
		pki.ReasonNoCertificate, pki.ReasonUnknownCA, pki.ReasonExpired, pki.ReasonRevoked,
		pki.ReasonNotAnAgency, pki.ReasonBadCert, pki.ReasonTimeout, pki.ReasonProtocol,
	} {
		tests = append(tests, struct {
			name   string
			count  func(*metrics.Lottery, string)
			metric string
			reason string
			want   string
		}{"Handshake_" + r, (*metrics.Lottery).HandshakeFailed, "lottery_handshakes_failed_total", r, r})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := metrics.New(1)
			tt.count(l, tt.reason)
			mf := family(t, registry(l), tt.metric)
			var hits []string
			for _, m := range mf.GetMetric() {
				if m.GetCounter().GetValue() > 0 {
					hits = append(hits, m.GetLabel()[0].GetValue())
				}
			}
			if len(hits) != 1 || hits[0] != tt.want {
				t.Errorf("counted under %v, want [%s]", hits, tt.want)
			}
		})
	}
}

func registry(l *metrics.Lottery) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(l)
	return reg
}

// TestLottery_Cardinality: whatever agencies, codes and reasons peers make
// up, the series stay within what the configuration allows.
func TestLottery_Cardinality(t *testing.T) {
	const agencies = 1000
	l := metrics.New(agencies)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		a := rng.Uint32()
		if rng.IntN(2) == 0 {
			a %= agencies + 10
		}
		switch rng.IntN(4) {
		case 0:
			l.BatchStored(a, rng.IntN(100))
		case 1:
			l.BatchRefused(a, lottery.Code(rng.IntN(256)))
		case 2:
			l.ConnectionRefused(fmt.Sprint(rng.Int()))
		case 3:
			l.HandshakeFailed(fmt.Sprint(rng.Int()))
		}
	}
	l.DrawCompleted(drawTime, map[uint32]int{1: 1, 5000: 3, 0: 2})
	reg := registry(l)
	agencyLabels := map[string]bool{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "agency" {
					agencyLabels[lp.GetValue()] = true
				}
			}
		}
	}
	if len(agencyLabels) != agencies+1 { // 0..1000
		t.Errorf("%d agency labels, want %d", len(agencyLabels), agencies+1)
	}
	if n := len(family(t, reg, "lottery_connections_refused_total").GetMetric()); n > 6 {
		t.Errorf("%d connection refusal reasons", n)
	}
	// Per agency: bets, stored, duplicate, winners and at most the domain's
	// codes plus other.
	if n := testutil.CollectAndCount(l); n > (agencies+1)*(4+21)+40 {
		t.Errorf("%d series", n)
	}
}

// TestLottery_Nil: a central built without metrics calls the same methods.
func TestLottery_Nil(t *testing.T) {
	var l *metrics.Lottery
	l.AgencyConnected(1)
	l.AgencyDisconnected(1)
	l.BatchStored(1, 1)
	l.BatchDuplicate(1)
	l.BatchRefused(1, lottery.EConflict)
	l.AckLatency(time.Second)
	l.Fsync(time.Second)
	l.ConnectionOpened()
	l.ConnectionClosed()
	l.ConnectionRefused("x")
	l.HandshakeFailed("x")
	l.AgencyFinished(1)
	l.DrawCompleted(drawTime, map[uint32]int{1: 1})
	l.InFlight(1)
	l.InFlightLimit(1)
	l.StoreSize(1, 1)
	l.SetCheckpoint(1, nil)
	l.Leader(true)
	l.LeaderChanged()
	l.RaftCommit(time.Second)
	l.RaftApply(time.Second)
	l.AppliedIndex(1)
	l.Nodes(nil)
	l.OnSample(func() {})
	l.Start(0)
	l.Stop()
	if l.Agencies() != 0 {
		t.Error("a nil Lottery has agencies")
	}
	st := l.Snapshot(3, 10)
	if st.Phase != metrics.PhaseReceiving || st.Rows == nil || st.Pages != 1 {
		t.Errorf("nil snapshot %+v", st)
	}
}

// TestLottery_Concurrent hammers every method from several goroutines
// while scrapes and snapshots run (go test -race), and checks the totals.
func TestLottery_Concurrent(t *testing.T) {
	const workers, batches = 8, 2000
	l := metrics.New(workers)
	l.Start(time.Millisecond)
	defer l.Stop()
	reg := metrics.NewRegistry(l)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
				if _, err := reg.Gather(); err != nil {
					t.Error(err)
					return
				}
				l.Snapshot(1, 3)
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := uint32(w + 1)
			l.ConnectionOpened()
			l.AgencyConnected(a)
			for i := range batches {
				l.BatchStored(a, 10)
				l.AckLatency(time.Duration(i) * time.Microsecond)
				if i%100 == 0 {
					l.BatchRefused(a, lottery.EInvalidBet)
					l.Fsync(time.Millisecond)
					l.Nodes([]metrics.NodeStatus{{Name: "n1", Role: "leader"}})
					l.SetCheckpoint(uint64(i), []byte{1})
				}
			}
			l.AgencyFinished(a)
			l.AgencyDisconnected(a)
			l.ConnectionClosed()
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	st := l.Snapshot(1, workers)
	if want := uint64(workers * batches * 10); st.Totals.Bets != want {
		t.Errorf("%d bets, want %d", st.Totals.Bets, want)
	}
	if st.Refusals["invalid_bet"] != workers*batches/100 || st.Finished != workers || st.Connected != 0 || st.Connections != 0 {
		t.Errorf("snapshot %+v", st)
	}
	if got := histogramCount(t, reg, "lottery_batch_ack_seconds"); got != workers*batches {
		t.Errorf("%d acks observed, want %d", got, workers*batches)
	}
}

// TestLottery_HotPathAllocates: the calls a session makes per batch
// allocate nothing.
func TestLottery_HotPathAllocates(t *testing.T) {
	l := metrics.New(5)
	allocs := testing.AllocsPerRun(1000, func() {
		l.BatchStored(3, 100)
		l.BatchDuplicate(3)
		l.BatchRefused(3, lottery.EInvalidBet)
		l.AckLatency(time.Millisecond)
		l.Fsync(time.Millisecond)
		l.InFlight(100)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch, want 0", allocs)
	}
}

func BenchmarkLottery_BatchStored(b *testing.B) {
	l := metrics.New(64)
	b.RunParallel(func(pb *testing.PB) {
		a := uint32(rand.IntN(64) + 1)
		for pb.Next() {
			l.BatchStored(a, 100)
			l.AckLatency(time.Millisecond)
		}
	})
}

func BenchmarkLottery_Collect1000(b *testing.B) {
	l := metrics.New(1000)
	for a := range uint32(1000) {
		l.BatchStored(a+1, 10)
	}
	reg := registry(l)
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLottery_Snapshot1000(b *testing.B) {
	l := metrics.New(1000)
	for a := range uint32(1000) {
		l.BatchStored(a+1, 10)
	}
	for b.Loop() {
		l.Snapshot(7, metrics.DefaultPerPage)
	}
}
