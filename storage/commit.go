package storage

import (
	"fmt"

	"lottery"
)

// groupWriter is the writer goroutine's state: buffers reused from group
// to group, so committing allocates nothing in the steady state.
type groupWriter struct {
	s       *Store
	group   []*Commit
	rows    []byte
	journal []byte
	records []record          // the group's journal records, encoded once the group is known
	pending map[uint32]uint64 // last sequence per agency accepted in this group
	fin     map[uint32]bool   // agencies finishing in this group
	outcome []outcome
}

// outcome is what happens to one commit of the group once it is durable.
type outcome uint8

const (
	write      outcome = iota // stored by this group
	dupDurable                // already committed before: succeeds whatever happens
	dupInGroup                // a resend of a commit of this same group
	rejected                  // refused on its own merits (c.Err set)
)

func (w *groupWriter) commit() {
	s := w.s
	if w.pending == nil {
		w.pending, w.fin = make(map[uint32]uint64), make(map[uint32]bool)
	}
	clear(w.pending)
	clear(w.fin)
	w.rows, w.journal, w.records, w.outcome = w.rows[:0], w.journal[:0], w.records[:0], w.outcome[:0]
	end := s.size
	// The writer is the only goroutine that changes lastSeq, finished and
	// size, so it reads them here without s.mu.
	for _, c := range w.group {
		last, inGroup := w.pending[c.agency]
		if !inGroup {
			last = s.lastSeq[c.agency]
		}
		_, done := s.finished[c.agency]
		var o outcome
		switch {
		case c.kind == kindBatch && c.seq == 0: // not a duplicate of anything: never ack it
			o, c.Err = rejected, lottery.Errorf(lottery.ESequence, "batch 0: sequences start at 1")
		case c.kind == kindBatch && c.seq <= last && !s.sameDigest(c):
			o, c.Err = rejected, lottery.Errorf(lottery.EConflict, "batch %d is already stored with other bets", c.seq)
		case c.kind == kindBatch && c.seq <= last:
			o = dupDurable
			if inGroup && c.seq > s.lastSeq[c.agency] {
				o = dupInGroup
			}
		case c.kind == kindBatch && (done || w.fin[c.agency]):
			o, c.Err = rejected, lottery.Errorf(lottery.ESequence, "batch %d after the agency finished", c.seq)
		case c.kind == kindBatch && c.seq != last+1:
			o, c.Err = rejected, lottery.Errorf(lottery.ESequence, "batch %d after batch %d", c.seq, last)
		case c.kind == kindBatch:
			w.rows = append(w.rows, c.rows...)
			end += int64(len(c.rows))
			w.records = append(w.records, record{kind: kindBatch, agency: c.agency, seq: c.seq, end: end, count: uint32(c.count), digest: c.digest})
			w.pending[c.agency] = c.seq
			s.digests[c.agency] = append(s.digests[c.agency], c.digest.prefix())
		case done && s.finished[c.agency] != c.seq:
			o, c.Err = rejected, lottery.Errorf(lottery.EConflict, "finished after batch %d, but it had finished after batch %d", c.seq, s.finished[c.agency])
		case done:
			o = dupDurable
		case w.fin[c.agency] && c.seq != last:
			o, c.Err = rejected, lottery.Errorf(lottery.EConflict, "finished after batch %d, but it finishes after batch %d", c.seq, last)
		case w.fin[c.agency]:
			o = dupInGroup
		case c.seq != last:
			o, c.Err = rejected, lottery.Errorf(lottery.ESequence, "finished after batch %d, but the last stored is %d", c.seq, last)
		default:
			w.records = append(w.records, record{kind: kindFinished, agency: c.agency, seq: c.seq, end: end})
			w.fin[c.agency] = true
		}
		c.Duplicate = o == dupDurable || o == dupInGroup
		w.outcome = append(w.outcome, o)
	}
	var err error
	records := len(w.records)
	if records > 0 {
		chain := w.encode()
		if err = w.persist(); err == nil {
			s.chain = chain
			s.group++
		}
	}
	if err != nil {
		for a := range w.pending { // forget the digests of batches not stored
			s.digests[a] = s.digests[a][:s.lastSeq[a]]
		}
	}
	if err == nil && records > 0 {
		s.mu.Lock()
		for a, seq := range w.pending {
			s.lastSeq[a] = seq
		}
		for a := range w.fin {
			s.finished[a] = s.lastSeq[a]
		}
		for i, c := range w.group {
			if w.outcome[i] == write && c.kind == kindBatch {
				s.bets64 += int64(c.count)
			}
		}
		s.size = end
		s.mu.Unlock()
	}
	for i, c := range w.group {
		switch o := w.outcome[i]; {
		case o == rejected:
			c.complete(c.Err)
		case o == dupDurable || err == nil:
			c.complete(nil)
		default:
			c.complete(err)
		}
	}
	clear(w.group) // drop references to completed commits
}

// encode writes the group's records into w.journal, chained to the last
// committed one, the last marked as the end of the group, and returns the
// chain of that last record.
func (w *groupWriter) encode() digest {
	chain := w.s.chain
	w.records[len(w.records)-1].flags |= flagGroupEnd
	for _, r := range w.records {
		r.group = w.s.group + 1
		w.journal, chain = r.append(w.journal, chain)
	}
	return chain
}

// persist writes the group's rows and journal records and makes them
// durable. On failure it undoes what it can and returns an EStorage error;
// a failure it cannot undo stops the store (see Store.Failed).
func (w *groupWriter) persist() error {
	s := w.s
	if err := s.Err(); err != nil {
		return lottery.Errorf(lottery.EStorage, "storage stopped: %v", err)
	}
	if len(w.rows) > 0 {
		if _, err := s.bets.Write(w.rows); err != nil {
			return w.undo(fmt.Errorf("write bets file: %w", err))
		}
	}
	if _, err := s.journal.Write(w.journal); err != nil {
		return w.undo(fmt.Errorf("write journal: %w", err))
	}
	// Both files are synced at once: a crash in between can leave the
	// journal's records durable without their rows, but only for this
	// group, the last one, which is not acknowledged yet; recovery checks
	// every record's rows against its digest and cuts that group whole.
	var rowsErr error
	synced := make(chan struct{})
	if len(w.rows) > 0 {
		go func() { defer close(synced); rowsErr = s.sync(s.bets) }()
	} else {
		close(synced)
	}
	journalErr := s.sync(s.journal)
	<-synced
	// After a failed fsync the kernel may have dropped the dirty pages and
	// a retry could wrongly succeed: never write again.
	if rowsErr != nil {
		return w.stop(fmt.Errorf("fsync bets file: %w", rowsErr))
	}
	if journalErr != nil {
		return w.stop(fmt.Errorf("fsync journal: %w", journalErr))
	}
	s.journalSize += int64(len(w.journal))
	return nil
}

// undo cuts both files back to their committed length after a failed write
// (a full disk, say), so the next group starts from a clean tail.
func (w *groupWriter) undo(cause error) error {
	s := w.s
	if err := s.bets.Truncate(s.size); err != nil {
		return w.stop(fmt.Errorf("%v; then undo bets file: %w", cause, err))
	}
	if err := s.journal.Truncate(s.journalSize); err != nil {
		return w.stop(fmt.Errorf("%v; then undo journal: %w", cause, err))
	}
	return lottery.Errorf(lottery.EStorage, "%v (batch not stored)", cause)
}

// stop records a failure that ends all writing.
func (w *groupWriter) stop(cause error) error {
	s := w.s
	if s.failErr.CompareAndSwap(nil, &cause) {
		close(s.failed)
	}
	return lottery.Errorf(lottery.EStorage, "%v (storage stopped)", cause)
}

// sameDigest reports whether c's rows are those of the batch already stored
// (or accepted in this group) under its sequence number.
func (s *Store) sameDigest(c *Commit) bool {
	d := s.digests[c.agency]
	return c.seq <= uint64(len(d)) && d[c.seq-1] == c.digest.prefix()
}
