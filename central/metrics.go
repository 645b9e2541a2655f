package central

import (
	"time"

	"lottery"
)

// The central's instruments (Config.Metrics): each event where it happens
// calls one method of metrics.Lottery, an atomic add; these helpers keep
// those calls to one line. With no Metrics every method is a no-op on a nil
// *metrics.Lottery, and the reader does not even read the clock.

// instrument hands the instruments to the parts that count by themselves:
// the in-flight budget and the draw barrier.
func (c *Central) instrument() {
	c.inFlight.metrics = c.cfg.Metrics
	c.draw.metrics = c.cfg.Metrics
	c.cfg.Metrics.InFlightLimit(c.cfg.MaxInFlightBytes)
}

// markRead notes when the reader read its latest frame: a batch's ack
// latency is measured from there (send copies it into the reply).
// Reader-owned.
func (s *session) markRead() {
	if s.c.cfg.Metrics != nil {
		s.readAt = time.Now()
	}
}

// countBatch counts a batch's answer, code (NoError: stored, or a
// duplicate), and its ack latency.
func (s *session) countBatch(r reply, code lottery.Code) {
	m := s.c.cfg.Metrics
	if m == nil {
		return
	}
	switch {
	case code != lottery.NoError:
		m.BatchRefused(r.agency, code)
	case r.commit.Duplicate:
		m.BatchDuplicate(r.agency)
	default:
		m.BatchStored(r.agency, r.count)
	}
	if !r.read.IsZero() {
		m.AckLatency(time.Since(r.read))
	}
}

// refuseBatch counts a batch refused before it reached the ledger (it does
// not decode, or comes before a Hello) and refuses it as fail does, which
// closes the connection.
func (s *session) refuseBatch(code lottery.Code, detail string) bool {
	s.c.cfg.Metrics.BatchRefused(s.who(), code)
	return s.fail(code, detail)
}

// agencyGone counts the end of s's claim on its agency (claim counted it),
// whether or not a newer session has taken its place since. Called with
// c.mu held.
func (c *Central) agencyGone(s *session) {
	if s.claimed != 0 {
		c.cfg.Metrics.AgencyDisconnected(s.claimed)
	}
}

// winnerCounts is what metrics learns of the draw: how many winners each
// agency has, never who they are.
func winnerCounts(winners map[uint32][]string) map[uint32]int {
	counts := make(map[uint32]int, len(winners))
	for a, docs := range winners {
		counts[a] = len(docs)
	}
	return counts
}
