package storage

import (
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"lottery"
)

// groupWriter is the writer goroutine's state: buffers reused from group
// to group, so committing allocates nothing in the steady state.
type groupWriter struct {
	s          *Store
	group      []*request
	rows       []byte
	journal    []byte
	records    []record          // the group's journal records, encoded once the group is known
	pending    map[uint32]uint64 // last sequence per agency accepted in this group
	fin        map[uint32]int64  // agencies finishing in this group, with their record's leaf
	outcome    []outcome
	commitment *[32]byte   // the commitment stored by this group, if any
	leaves     []tlog.Hash // the group's leaf hashes
	hashes     []tlog.Hash // the stored hashes they add to the tree
	tlogBuf    []byte
}

// outcome is what happens to one commit of the group once it is durable.
type outcome uint8

const (
	stored     outcome = iota // stored by this group
	dupDurable                // already committed before: succeeds whatever happens
	dupInGroup                // a resend of a commit of this same group
	refused                   // refused on its own merits (c.err set)
)

func (w *groupWriter) commit() {
	w.reset()
	end := w.s.committed.bets
	for _, c := range w.group {
		o := w.decide(c, &end)
		c.duplicate = o == dupDurable || o == dupInGroup
		w.outcome = append(w.outcome, o)
	}
	var err error
	if len(w.records) > 0 {
		var h header
		if h, err = w.write(end); err == nil {
			w.publish(h)
		}
	}
	w.complete(err, uint64(w.s.committed.records()))
}

// reset empties the writer's buffers for a new group.
func (w *groupWriter) reset() {
	if w.pending == nil {
		w.pending, w.fin = make(map[uint32]uint64), make(map[uint32]int64)
	}
	clear(w.pending)
	clear(w.fin)
	w.rows, w.journal, w.records, w.outcome = w.rows[:0], w.journal[:0], w.records[:0], w.outcome[:0]
	w.leaves, w.hashes = w.leaves[:0], w.hashes[:0]
	w.commitment = nil
}

// decide settles one commit of the group against the committed state and
// the group's earlier commits: a new batch or finish (its rows and record
// are added, end grows), a duplicate, or a refusal (c.err). The writer is
// the only goroutine that changes lastSeq, finished, digests and the
// committed state, so it reads them here without s.mu.
func (w *groupWriter) decide(c *request, end *int64) outcome {
	s := w.s
	last, inGroup := w.pending[c.agency]
	if !inGroup {
		last = s.lastSeq[c.agency]
	}
	fin, done := s.finished[c.agency]
	finishedAfter := fin.seq
	nextLeaf := s.committed.records() + int64(len(w.records))
	refuse := func(code lottery.Code, format string, args ...any) outcome {
		c.err = lottery.Errorf(code, format, args...)
		return refused
	}
	if c.kind == kindCommit {
		return w.decideCommitment(c, *end, nextLeaf)
	}
	if c.kind == kindBatch {
		switch {
		case c.seq == 0: // not a duplicate of anything: never ack it
			return refuse(lottery.ESequence, "batch 0: sequences start at 1")
		case c.seq <= last && !s.sameDigest(c):
			return refuse(lottery.EConflict, "batch %d is already stored with other bets", c.seq)
		case c.seq <= last && inGroup && c.seq > s.lastSeq[c.agency]:
			c.leaf = s.batches[c.agency][c.seq-1].leaf
			return dupInGroup
		case c.seq <= last:
			c.leaf = s.batches[c.agency][c.seq-1].leaf
			return dupDurable
		case done || w.finishing(c.agency):
			return refuse(lottery.ESequence, "batch %d after the agency finished", c.seq)
		case c.seq != last+1:
			return refuse(lottery.ESequence, "batch %d after batch %d", c.seq, last)
		}
		w.rows = append(w.rows, c.rows...)
		*end += int64(len(c.rows))
		w.records = append(w.records, record{kind: kindBatch, agency: c.agency, seq: c.seq, end: *end, count: uint32(c.count),
			digest: truncate(c.full), full: c.full})
		w.pending[c.agency] = c.seq
		c.leaf = nextLeaf
		s.batches[c.agency] = append(s.batches[c.agency], batch{prefix: truncate(c.full).prefix(), leaf: nextLeaf})
		return stored
	}
	switch {
	case done && finishedAfter != c.seq:
		return refuse(lottery.EConflict, "finished after batch %d, but it had finished after batch %d", c.seq, finishedAfter)
	case done:
		c.leaf = fin.leaf
		return dupDurable
	}
	if leaf, finishing := w.fin[c.agency]; finishing {
		if c.seq != last {
			return refuse(lottery.EConflict, "finished after batch %d, but it finishes after batch %d", c.seq, last)
		}
		c.leaf = leaf
		return dupInGroup
	}
	if c.seq != last {
		return refuse(lottery.ESequence, "finished after batch %d, but the last stored is %d", c.seq, last)
	}
	w.records = append(w.records, record{kind: kindFinished, agency: c.agency, seq: c.seq, end: *end})
	w.fin[c.agency] = nextLeaf
	c.leaf = nextLeaf
	return stored
}

// decideCommitment settles the committed mode's commitment: record 1, so
// only a journal that holds its base record and nothing else takes it; the
// same commitment again is a duplicate, another one a conflict.
func (w *groupWriter) decideCommitment(c *request, end, nextLeaf int64) outcome {
	s := w.s
	switch {
	case s.commitment != nil && *s.commitment == c.full:
		c.leaf = 1
		return dupDurable
	case s.commitment != nil:
		c.err = lottery.Errorf(lottery.EConflict, "the journal already holds another commitment")
		return refused
	case nextLeaf != 1:
		c.err = lottery.Errorf(lottery.ESequence, "a commitment is record 1, before any batch; the journal has %d records", nextLeaf)
		return refused
	}
	w.records = append(w.records, commitRecord(c.full, end))
	c.leaf = nextLeaf
	w.commitment = &c.full
	return stored
}

// finishing reports whether the agency finishes in this group.
func (w *groupWriter) finishing(agency uint32) bool {
	_, ok := w.fin[agency]
	return ok
}

// write encodes the group's records, grows the audit log's tree by their
// leaves and encodes its commit header, and makes rows, records, hashes and
// header durable; it returns the header (the group commits the bets file
// up to end). On failure it forgets the batches not stored.
func (w *groupWriter) write(end int64) (header, error) {
	s := w.s
	chain := w.encode()
	root, err := w.grow()
	if err != nil {
		for a := range w.pending {
			s.batches[a] = s.batches[a][:s.lastSeq[a]]
		}
		return header{}, w.stop(fmt.Errorf("grow the audit log: %w", err))
	}
	next := s.committed
	next.journal += int64(len(w.journal))
	next.bets = end
	for i, c := range w.group {
		switch {
		case w.outcome[i] != stored:
		case c.kind == kindBatch:
			next.betCount += int64(c.count)
			next.batches++
		case c.kind == kindFinished:
			next.finished++
		}
	}
	h := header{gen: s.gen + 1, after: next, before: s.committed, chain: chain, root: root}
	if err := w.persist(h); err != nil {
		for a := range w.pending {
			s.batches[a] = s.batches[a][:s.lastSeq[a]]
		}
		return header{}, err
	}
	return h, nil
}

// grow computes the leaf hashes of the group's records and the stored
// hashes they add to the tree, and returns the tree's root after them.
func (w *groupWriter) grow() (tlog.Hash, error) {
	s := w.s
	for _, r := range w.records {
		w.leaves = append(w.leaves, leafHash(r, r.full))
	}
	first := s.committed.records()
	var err error
	if w.hashes, err = s.tree.grow(w.hashes[:0], first, w.leaves); err != nil {
		return tlog.Hash{}, err
	}
	return s.tree.rootWith(w.hashes, first+int64(len(w.leaves)))
}

// publish makes the durable group's state visible to the other goroutines.
func (w *groupWriter) publish(h header) {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for a, seq := range w.pending {
		s.lastSeq[a] = seq
	}
	for a, leaf := range w.fin {
		s.finished[a] = finish{seq: s.lastSeq[a], leaf: leaf}
	}
	for i, c := range w.group {
		if w.outcome[i] == stored && c.kind == kindBatch {
			s.agencyBets[c.agency] += int64(c.count)
			s.digests[c.agency] = append(s.digests[c.agency], c.full)
		}
	}
	if w.commitment != nil {
		s.commitment = w.commitment
	}
	s.committed, s.gen, s.chain, s.root = h.after, h.gen, h.chain, h.root
	s.tree.publish(w.hashes)
}

// complete answers every commit of the group: only now may a session ack.
// A commit stored (or already stored) learns its leaf and the size of the
// tree that holds it now.
func (w *groupWriter) complete(err error, size uint64) {
	for i, c := range w.group {
		switch o := w.outcome[i]; {
		case o == refused:
			c.complete(c.err)
		case o == dupDurable || err == nil:
			c.Leaf, c.TreeSize = uint64(c.leaf), size
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
		r.group = uint16(w.s.gen + 1)
		w.journal, chain = r.append(w.journal, chain)
	}
	return chain
}

// persist writes the group's rows, journal records and commit header h,
// and makes them durable. On failure it undoes what it can and returns an
// EStorage error; a failure it cannot undo stops the store (see
// Store.Failed).
func (w *groupWriter) persist(h header) error {
	s := w.s
	if err := s.Err(); err != nil {
		return lottery.Errorf(lottery.EStorage, "storage stopped: %v", err)
	}
	if len(w.rows) > 0 {
		if _, err := s.bets.Write(w.rows); err != nil {
			return w.undo(fmt.Errorf("write bets file: %w", err))
		}
	}
	if _, err := s.journal.WriteAt(w.journal, s.committed.journal); err != nil {
		return w.undo(fmt.Errorf("write journal: %w", err))
	}
	if _, err := s.journal.WriteAt(h.encode(), slotOffset(h.gen)); err != nil {
		return w.undo(fmt.Errorf("write journal header: %w", err))
	}
	w.tlogBuf = encodeHashes(w.tlogBuf[:0], w.hashes)
	if _, err := s.tlog.WriteAt(w.tlogBuf, s.tree.hashes()*hashSize); err != nil {
		return w.undo(fmt.Errorf("write the audit log: %w", err))
	}
	// The three files are synced at once, the header with the records: a
	// crash in between can leave any of them durable without the others,
	// but only for this group, the last one, which is not acknowledged
	// yet; recovery checks the newest group's records, rows and hashes
	// against its header and rolls it back whole (docs/durability.md).
	var rowsErr, treeErr error
	began := s.syncStart()
	var synced sync.WaitGroup
	if len(w.rows) > 0 {
		synced.Go(func() { rowsErr = s.sync(s.bets) })
	}
	synced.Go(func() { treeErr = s.sync(s.tlog) })
	journalErr := s.sync(s.journal)
	synced.Wait()
	s.synced(began)
	// After a failed fsync the kernel may have dropped the dirty pages and
	// a retry could wrongly succeed: never write again.
	switch {
	case rowsErr != nil:
		return w.stop(fmt.Errorf("fsync bets file: %w", rowsErr))
	case journalErr != nil:
		return w.stop(fmt.Errorf("fsync journal: %w", journalErr))
	case treeErr != nil:
		return w.stop(fmt.Errorf("fsync the audit log: %w", treeErr))
	}
	return nil
}

// undo cuts both files back to their committed length after a failed write
// (a full disk, say), so the next group starts from a clean tail.
func (w *groupWriter) undo(cause error) error {
	s := w.s
	if err := s.bets.Truncate(s.committed.bets); err != nil {
		return w.stop(fmt.Errorf("%v; then undo bets file: %w", cause, err))
	}
	if err := s.journal.Truncate(s.committed.journal); err != nil {
		return w.stop(fmt.Errorf("%v; then undo journal: %w", cause, err))
	}
	if err := s.tlog.Truncate(s.tree.hashes() * hashSize); err != nil {
		return w.stop(fmt.Errorf("%v; then undo the audit log: %w", cause, err))
	}
	return lottery.Errorf(lottery.EStorage, "%v (batch not stored)", cause)
}

// stop records a failure that ends all writing.
func (w *groupWriter) stop(cause error) error {
	w.s.fail(cause)
	return lottery.Errorf(lottery.EStorage, "%v (storage stopped)", cause)
}

// sameDigest reports whether c's rows are those of the batch already stored
// (or accepted in this group) under its sequence number.
func (s *Store) sameDigest(c *request) bool {
	b := s.batches[c.agency]
	return c.seq <= uint64(len(b)) && b[c.seq-1].prefix == truncate(c.full).prefix()
}
