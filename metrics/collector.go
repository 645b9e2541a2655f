package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Label names.
const (
	labelAgency = "agency"
	labelResult = "result"
	labelReason = "reason"
)

// Descriptions of the metrics the Collector builds at scrape time from the
// atomics; the histograms describe themselves.
var (
	descAgencies = prometheus.NewDesc("lottery_agencies",
		"Agencies the central waits for before the draw (AGENCIES).", nil, nil)
	descAgenciesConnected = prometheus.NewDesc("lottery_agencies_connected",
		"Agencies with at least one authenticated connection open.", nil, nil)
	descAgenciesFinished = prometheus.NewDesc("lottery_agencies_finished",
		"Agencies that said they are done.", nil, nil)
	descBetsStored = prometheus.NewDesc("lottery_bets_stored_total",
		"Bets stored, by agency (agency 0: numbers outside 1..AGENCIES, always refused).",
		[]string{labelAgency}, nil)
	descBatches = prometheus.NewDesc("lottery_batches_total",
		"Batches answered, by agency and result: stored, duplicate, or the refusal code.",
		[]string{labelAgency, labelResult}, nil)
	descConnsOpen = prometheus.NewDesc("lottery_connections_open",
		"Connections open on the agencies' port, authenticated or not.", nil, nil)
	descConnsRefused = prometheus.NewDesc("lottery_connections_refused_total",
		"Connections refused or evicted before they were served, by reason.",
		[]string{labelReason}, nil)
	descHandshakesFailed = prometheus.NewDesc("lottery_handshakes_failed_total",
		"TLS handshakes that failed, by reason.", []string{labelReason}, nil)
	descDrawCompleted = prometheus.NewDesc("lottery_draw_completed_timestamp_seconds",
		"Unix time of the draw; 0 before it.", nil, nil)
	descWinners = prometheus.NewDesc("lottery_winners",
		"Winning bets by agency, once the draw is done.", []string{labelAgency}, nil)
	descInFlight = prometheus.NewDesc("lottery_inflight_bytes",
		"Bytes of the in-flight budget in use: batches read and not answered yet.", nil, nil)
	descInFlightLimit = prometheus.NewDesc("lottery_inflight_limit_bytes",
		"Size of the in-flight budget (MAX_INFLIGHT_BYTES).", nil, nil)
	descStoreBytes = prometheus.NewDesc("lottery_store_bytes",
		"Committed size of the bets file.", nil, nil)
	descStoreBets = prometheus.NewDesc("lottery_store_bets",
		"Bets in the bets file, recovered ones included.", nil, nil)
	descIsLeader = prometheus.NewDesc("lottery_raft_is_leader",
		"1 while this node leads its Raft group, else 0.", nil, nil)
	descLeaderChanges = prometheus.NewDesc("lottery_raft_leader_changes_total",
		"Changes of the group's leader this node observed.", nil, nil)
	descApplied = prometheus.NewDesc("lottery_raft_applied_index",
		"This node's last applied Raft log index.", nil, nil)
	descAuditTreeSize = prometheus.NewDesc("lottery_audit_tree_size",
		"Leaves (acked batches) in the audit log's latest checkpoint.", nil, nil)
)

// NewRegistry returns a registry of its own (never the global one, so tests
// and several centrals in one process each have theirs) holding the Go
// runtime and process collectors and the given collectors.
func NewRegistry(cs ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cs...)
	return reg
}

// Describe implements prometheus.Collector.
func (l *Lottery) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descAgencies, descAgenciesConnected, descAgenciesFinished, descBetsStored, descBatches,
		descConnsOpen, descConnsRefused, descHandshakesFailed, descDrawCompleted, descWinners,
		descInFlight, descInFlightLimit, descStoreBytes, descStoreBets,
		descIsLeader, descLeaderChanges, descApplied, descAuditTreeSize,
	} {
		ch <- d
	}
	l.ackSeconds.Describe(ch)
	l.fsyncSeconds.Describe(ch)
	l.raft.commitSeconds.Describe(ch)
	l.raft.applySeconds.Describe(ch)
}

// Collect implements prometheus.Collector: it reads the atomics now. A
// scrape is not a consistent snapshot across counters (a batch may be
// counted in one and not yet in another), as with any Prometheus client.
func (l *Lottery) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	l.collectAgencies(ch)
	gauge(descAgencies, float64(l.Agencies()))
	gauge(descConnsOpen, float64(l.connsOpen.Load()))
	for i, reason := range connReasons {
		counter(descConnsRefused, l.connsRefused[i].Load(), reason)
	}
	for i, reason := range handshakeReasons {
		counter(descHandshakesFailed, l.handshakesFailed[i].Load(), reason)
	}
	var drawn float64
	if at := l.drawnAt.Load(); at != 0 {
		drawn = float64(at) / 1e9
	}
	gauge(descDrawCompleted, drawn)
	gauge(descInFlight, float64(l.inFlight.Load()))
	gauge(descInFlightLimit, float64(l.inFlightCap.Load()))
	gauge(descStoreBytes, float64(l.storeBytes.Load()))
	gauge(descStoreBets, float64(l.storeBets.Load()))
	if c := l.latestCheckpoint(); c != nil {
		gauge(descAuditTreeSize, float64(c.Size))
	}
	l.ackSeconds.Collect(ch)
	l.fsyncSeconds.Collect(ch)
	if l.raft.replicated.Load() {
		var leads float64
		if l.raft.leader.Load() {
			leads = 1
		}
		gauge(descIsLeader, leads)
		counter(descLeaderChanges, l.raft.leaderChanges.Load())
		gauge(descApplied, float64(l.raft.applied.Load()))
		l.raft.commitSeconds.Collect(ch)
		l.raft.applySeconds.Collect(ch)
	}
}

// collectAgencies sends the per-agency series. Every configured agency has
// its bets and its stored and duplicate batches from the start (at 0), so
// rate() sees the first batch; a refusal code appears once it happened,
// since codes × agencies zero series would be mostly noise. Agency 0 (the
// numbers outside 1..N) appears once something was counted there.
func (l *Lottery) collectAgencies(ch chan<- prometheus.Metric) {
	drawn := l.drawnAt.Load() != 0
	var connected, finished int
	for i := range l.agencies {
		s := &l.agencies[i]
		if i != unknownAgency {
			if s.sessions.Load() > 0 {
				connected++
			}
			if s.finished.Load() {
				finished++
			}
		}
		bets, stored, dups := s.bets.Load(), s.stored.Load(), s.duplicates.Load()
		if i == unknownAgency && bets+stored+dups+s.refused.Load() == 0 {
			continue
		}
		label := strconv.Itoa(i)
		ch <- prometheus.MustNewConstMetric(descBetsStored, prometheus.CounterValue, float64(bets), label)
		ch <- prometheus.MustNewConstMetric(descBatches, prometheus.CounterValue, float64(stored), label, ResultStored)
		ch <- prometheus.MustNewConstMetric(descBatches, prometheus.CounterValue, float64(dups), label, ResultDuplicate)
		for c := range s.codes {
			if n := s.codes[c].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(descBatches, prometheus.CounterValue, float64(n), label, codeNames[c])
			}
		}
		if drawn && i != unknownAgency {
			ch <- prometheus.MustNewConstMetric(descWinners, prometheus.GaugeValue, float64(s.winners.Load()), label)
		}
	}
	ch <- prometheus.MustNewConstMetric(descAgenciesConnected, prometheus.GaugeValue, float64(connected))
	ch <- prometheus.MustNewConstMetric(descAgenciesFinished, prometheus.GaugeValue, float64(finished))
}
