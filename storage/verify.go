package storage

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/tlog"
)

// ErrDamaged matches every *DamageError (errors.Is).
var ErrDamaged = errors.New("storage: the bets file and its journal do not match")

// DamageError says where the bets file and its journal stop proving each
// other. Open refuses to start on it and changes nothing; found later, by
// the background verification, it stops the store the same way; Repair
// keeps the longest verified prefix.
type DamageError struct {
	File   string // the path of the file where the mismatch is
	Offset int64  // the byte of File where it starts
	What   string // what did not match
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("%s, offset %d: %s", e.File, e.Offset, e.What)
}

// Is makes errors.Is(err, ErrDamaged) true.
func (e *DamageError) Is(target error) bool { return target == ErrDamaged }

func damagef(file string, off int64, format string, args ...any) *DamageError {
	return &DamageError{File: file, Offset: off, What: fmt.Sprintf(format, args...)}
}

// Limits of one group commit: the unacknowledged tail a crash can leave is
// one group at most, because a group is written only once the previous one
// is durable.
const (
	// maxGroupCommits bounds the commits, hence the journal records, of one
	// group: the writer gathers no more (Store.run).
	maxGroupCommits = queueSize
	// maxTailBytes bounds one group's rows, which may exceed maxGroupBytes
	// by the last batch added to it (a frame's bets as rows, far below
	// 1 MiB).
	maxTailBytes = maxGroupBytes + 1<<20
)

// journalState is what the records read so far commit: the central's
// memory of the journal, rebuilt at every start.
type journalState struct {
	lastSeq  map[uint32]uint64  // last batch per agency
	batches  map[uint32][]batch // per agency, batch seq at index seq-1
	finished map[uint32]finish  // agencies finished
	bets     map[uint32]int64   // bets stored per agency
	// commitment is the committed mode's record 1 (nil: none).
	commitment *[32]byte
}

// batch is what the store keeps in memory of a stored batch: enough of its
// digest to tell a resend from a conflict (8 bytes: 0.8 MB for 10 M bets
// in batches of 100), and its leaf in the audit log, for a resend's
// receipt.
type batch struct {
	prefix uint64
	leaf   int64
}

// finish is an agency's finished record: after which batch, and its leaf.
type finish struct {
	seq  uint64
	leaf int64
}

func newJournalState() *journalState {
	return &journalState{lastSeq: make(map[uint32]uint64), batches: make(map[uint32][]batch),
		finished: make(map[uint32]finish), bets: make(map[uint32]int64)}
}

// scanner reads journal records in order and checks that they form a
// journal, and, when rows is set, that the bets file's bytes each record
// covers hash to its digest and that every record chains to the one before
// (both cost a SHA-256: the background verification's part). It applies a
// group's records only once the group's end mark is read and every record
// of it checked out, like raft-wal applying a committed batch: so what it
// keeps is always whole groups.
type scanner struct {
	jr       *bufio.Reader // the journal from off on
	jpath    string
	br       *bufio.Reader // the bets file from prevEnd on (rows only)
	bpath    string
	betsSize int64
	rows     bool
	st       *journalState // nil: do not rebuild the state (order unchecked)
	// leaves, when not nil, collects the audit log's leaf hash of every
	// record read (rows only: a leaf needs the rows' full digest).
	leaves *[]tlog.Hash
	// onRecord, when set, sees every record read, its full digest set
	// when rows are read (the verification keeps each batch's).
	onRecord func(index int64, r record)

	off     int64  // journal offset of the next record
	index   int64  // its number (the base record is 0)
	prev    digest // chain of the last record read
	prevEnd int64  // bets end of the last record read
	expect  uint16 // the group the next record must belong to
	group   []undo // the open group's records
	hasher  *rowHasher

	// What is proven: the end of the last whole group read.
	kept struct {
		journal, bets int64
		chain         digest
		group         uint16
		groups        int64 // whole groups read
		records       int64
		betCount      int64
		batches       int64
		finished      int64
	}
	// count is the running totals of every record read, kept included.
	count struct{ bets, batches, finished int64 }
}

// undo is what one record of the open group changed, to roll it back when
// the group turns out to be incomplete.
type undo struct {
	r       record
	prevSeq uint64
}

// scanFrom is where a scan starts: the record at off, number index, after a
// record whose chain is prev and whose rows end at prevEnd, in group expect.
type scanFrom struct {
	off, index, prevEnd int64
	prev                digest
	expect              uint16
}

func newScanner(journal io.Reader, jpath string, from scanFrom, bets io.Reader, bpath string, betsSize int64, rows bool, st *journalState) *scanner {
	sc := &scanner{jr: bufio.NewReaderSize(journal, 64<<10), jpath: jpath, bpath: bpath, betsSize: betsSize, rows: rows, st: st,
		off: from.off, index: from.index, prev: from.prev, prevEnd: from.prevEnd, expect: from.expect, hasher: newRowHasher()}
	if rows {
		sc.br = bufio.NewReaderSize(bets, scanBufferSize)
	}
	sc.kept.journal, sc.kept.bets, sc.kept.chain = from.off, from.prevEnd, from.prev
	sc.kept.group = from.expect - 1
	return sc
}

// scan reads records up to the journal offset end and returns the first
// failure, or nil if every record up to end checked out and end closes a
// group. It stops at the failure: what is kept is the end of the last
// whole group before it.
func (sc *scanner) scan(end int64) *DamageError {
	if d := sc.scanTo(end); d != nil {
		return d
	}
	if len(sc.group) > 0 {
		return damagef(sc.jpath, sc.off, "the group of record %d has no end mark before offset %d", sc.index-1, end)
	}
	return nil
}

// scanTo is scan up to end, which may fall inside a group.
func (sc *scanner) scanTo(end int64) *DamageError {
	var buf [journalRecordSize]byte
	for sc.off < end {
		if _, err := io.ReadFull(sc.jr, buf[:]); err != nil {
			return damagef(sc.jpath, sc.off, "record %d: the journal ends inside it (%v)", sc.index, err)
		}
		r, err := sc.check(buf[:])
		if err != nil {
			return err
		}
		if sc.rows && r.coversRows() {
			if err := sc.checkRows(&r); err != nil {
				return err
			}
		}
		if sc.leaves != nil {
			*sc.leaves = append(*sc.leaves, leafHash(r, r.full))
		}
		if sc.onRecord != nil {
			sc.onRecord(sc.index, r)
		}
		sc.apply(r)
		sc.closeGroup(r)
	}
	return nil
}

// check parses one record and checks that it follows the ones before: its
// CRC, its chain (rows only), its group number, its end and, when the state
// is rebuilt, its sequence number.
func (sc *scanner) check(b []byte) (record, *DamageError) {
	r, ok := parseRecord(b)
	switch {
	case !ok:
		return r, damagef(sc.jpath, sc.off, "record %d does not parse (CRC mismatch or invalid fields)", sc.index)
	case sc.rows && !linked(b, sc.prev):
		return r, damagef(sc.jpath, sc.off, "record %d does not chain to the one before it: a record was removed, inserted or rewritten", sc.index)
	case (sc.index == 0) != (r.kind == kindBase):
		return r, damagef(sc.jpath, sc.off, "record %d: only the first record is a base record", sc.index)
	case r.group != sc.expect:
		return r, damagef(sc.jpath, sc.off, "record %d is in group %d, expected group %d", sc.index, r.group, sc.expect)
	case r.end < sc.prevEnd:
		return r, damagef(sc.jpath, sc.off, "record %d ends at %d, before the previous record's end %d", sc.index, r.end, sc.prevEnd)
	case !r.coversRows() && r.end != sc.prevEnd:
		return r, damagef(sc.jpath, sc.off, "record %d: a %s record covers bytes %d to %d", sc.index, r.kind, sc.prevEnd, r.end)
	case (r.kind == kindCommit) && sc.index != 1:
		return r, damagef(sc.jpath, sc.off, "record %d: a commitment is record 1, right after the base, or nowhere", sc.index)
	case len(sc.group) >= maxGroupCommits+1:
		return r, damagef(sc.jpath, sc.off, "record %d: a group of more than %d records", sc.index, maxGroupCommits+1)
	}
	if sc.st == nil {
		return r, nil
	}
	last := sc.st.lastSeq[r.agency]
	switch {
	case r.kind == kindBatch && r.seq != last+1:
		return r, damagef(sc.jpath, sc.off, "record %d is batch %d of agency %d, after its batch %d", sc.index, r.seq, r.agency, last)
	case r.kind == kindFinished && r.seq != last:
		return r, damagef(sc.jpath, sc.off, "record %d: agency %d finished after batch %d, but its last is %d", sc.index, r.agency, r.seq, last)
	case r.kind == kindFinished && sc.finishedBefore(r.agency):
		return r, damagef(sc.jpath, sc.off, "record %d: agency %d finished twice", sc.index, r.agency)
	case r.kind == kindBatch && sc.finishedBefore(r.agency):
		return r, damagef(sc.jpath, sc.off, "record %d is batch %d of agency %d, after it finished", sc.index, r.seq, r.agency)
	}
	return r, nil
}

func (sc *scanner) finishedBefore(agency uint32) bool {
	_, done := sc.st.finished[agency]
	return done
}

// checkRows hashes the rows a record covers and compares the digest; it
// keeps the whole SHA-256 in r.full.
func (sc *scanner) checkRows(r *record) *DamageError {
	if r.end > sc.betsSize {
		return damagef(sc.bpath, min(sc.prevEnd, sc.betsSize), "record %d (journal offset %d) covers bytes %d to %d, but the file has %d", sc.index, sc.off, sc.prevEnd, r.end, sc.betsSize)
	}
	full, n, err := sc.hasher.nextFull(sc.br, r.end-sc.prevEnd)
	switch {
	case err != nil:
		return damagef(sc.bpath, sc.prevEnd+n, "read: %v", err)
	case truncate(full) != r.digest:
		return damagef(sc.bpath, sc.prevEnd, "bytes %d to %d do not match the digest of record %d (journal offset %d)", sc.prevEnd, r.end, sc.index, sc.off)
	}
	r.full = full
	return nil
}

// apply adds one checked record to the open group and the state.
func (sc *scanner) apply(r record) {
	var prevSeq uint64
	switch r.kind {
	case kindBatch:
		sc.count.bets += int64(r.count)
		sc.count.batches++
	case kindFinished:
		sc.count.finished++
	case kindBase:
		sc.count.bets += int64(r.count)
	}
	if st := sc.st; st != nil {
		prevSeq = st.lastSeq[r.agency]
		switch r.kind {
		case kindBatch:
			st.lastSeq[r.agency] = r.seq
			st.batches[r.agency] = append(st.batches[r.agency], batch{prefix: r.digest.prefix(), leaf: sc.index})
			st.bets[r.agency] += int64(r.count)
		case kindFinished:
			st.finished[r.agency] = finish{seq: r.seq, leaf: sc.index}
		case kindCommit:
			c := r.commitment()
			st.commitment = &c
		}
	}
	sc.group = append(sc.group, undo{r: r, prevSeq: prevSeq})
	sc.prev, sc.prevEnd = r.chain, r.end
	sc.off += journalRecordSize
	sc.index++
}

// closeGroup keeps the open group when r ends it.
func (sc *scanner) closeGroup(r record) {
	if r.flags&flagGroupEnd == 0 {
		return
	}
	sc.expect = r.group + 1
	sc.group = sc.group[:0]
	k := &sc.kept
	k.journal, k.bets, k.chain, k.group = sc.off, r.end, r.chain, r.group
	k.groups++
	k.records = sc.index
	k.betCount, k.batches, k.finished = sc.count.bets, sc.count.batches, sc.count.finished
}

// rollback undoes the open group's records in the state: they are not
// kept.
func (sc *scanner) rollback() {
	if st := sc.st; st != nil {
		for i := len(sc.group) - 1; i >= 0; i-- {
			u := sc.group[i]
			switch u.r.kind {
			case kindBatch:
				st.lastSeq[u.r.agency] = u.prevSeq
				st.batches[u.r.agency] = st.batches[u.r.agency][:u.prevSeq]
				st.bets[u.r.agency] -= int64(u.r.count)
			case kindFinished:
				delete(st.finished, u.r.agency)
			case kindCommit:
				st.commitment = nil
			}
		}
	}
	sc.group = sc.group[:0]
	sc.count.bets, sc.count.batches, sc.count.finished = sc.kept.betCount, sc.kept.batches, sc.kept.finished
}
