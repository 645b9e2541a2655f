package central

import (
	"slices"
	"sync"

	"lottery"
	"lottery/metrics"
)

// Draw is the barrier between uploading and the draw: a guarded set of the
// agencies that finished, and a channel closed once the winners are known.
// Winners queries wait on that channel, so nobody is answered before the
// draw, not even partially.
type Draw struct {
	agencies int

	mu       sync.Mutex      // guards finished, winners and the statement
	finished map[uint32]bool // agencies that said they are done
	winners  map[uint32][]string
	err      error // why the draw has no result, if it failed
	// statement is the signed draw statement (nil without a log) and the
	// size of the tree it names.
	statement     []byte
	statementSize uint64

	ready chan struct{} // closed once, when winners is final

	metrics *metrics.Lottery // told every agency that finished
}

// NewDraw returns a barrier waiting for agencies 1..agencies.
func NewDraw(agencies int) *Draw {
	return &Draw{agencies: agencies, finished: make(map[uint32]bool), ready: make(chan struct{})}
}

// Arrive counts the agency as finished. It returns true exactly once: to
// the caller whose agency completed the set, who must then run the draw
// and Publish it. Arriving twice changes nothing, and so does an agency
// outside 1..agencies (a store's, from a run with more agencies).
func (d *Draw) Arrive(agency uint32) (last bool) {
	if !lottery.Counted(agency, d.agencies) {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.finished[agency] {
		return false
	}
	d.finished[agency] = true
	d.metrics.AgencyFinished(agency)
	return len(d.finished) == d.agencies
}

// Complete reports whether every agency has finished.
func (d *Draw) Complete() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.finished) >= d.agencies
}

// Pending returns how many agencies the draw still waits for.
func (d *Draw) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.agencies - len(d.finished)
}

// Publish makes the draw's outcome final and wakes every waiting query: the
// winners and the signed statement (nil: none), or the error that made the
// draw impossible.
func (d *Draw) Publish(winners map[uint32][]string, statement []byte, size uint64, err error) {
	d.mu.Lock()
	d.winners, d.err = winners, err
	d.statement, d.statementSize = statement, size
	d.mu.Unlock()
	close(d.ready)
}

// Statement returns the signed draw statement and the size of the tree it
// names, once Ready is closed; false when there is none.
func (d *Draw) Statement() ([]byte, uint64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.statement, d.statementSize, d.statement != nil
}

// Ready is closed once the draw has been published.
func (d *Draw) Ready() <-chan struct{} { return d.ready }

// Winners returns the agency's winning documents, in the order they were
// stored, or why the draw failed. Call it once Ready is closed: before the
// draw there is no answer, not even a partial one.
func (d *Draw) Winners(agency uint32) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	return slices.Clip(d.winners[agency]), nil
}

// FindWinners streams the stored bets once (load_bets + has_won) and groups the
// winners' documents by agency. Memory grows with the winners, not with the
// bets.
func FindWinners(store scanner) (map[uint32][]string, error) {
	return FindWinnersOf(store, lottery.WinningNumber)
}

type scanner interface {
	ScanWhere(keep func(agency, number int) bool, fn func(lottery.Row) error) error
}

// FindWinnersOf is FindWinners for a number other than the course's: the
// committed mode's, drawn from the secret and the final tree.
func FindWinnersOf(store scanner, drawn int) (map[uint32][]string, error) {
	winners := make(map[uint32][]string)
	wins := func(_, number int) bool { return number == drawn }
	err := store.ScanWhere(wins, func(r lottery.Row) error {
		winners[uint32(r.Agency)] = append(winners[uint32(r.Agency)], string(r.Document))
		return nil
	})
	return winners, err
}
