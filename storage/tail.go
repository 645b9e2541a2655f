package storage

import (
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/tlog"
)

// tailVerdict is what Open learns before it serves, in constant time: the
// committed state of both files (the newest commit header, or the one
// before it when the newest group was torn) and the bytes past it.
type tailVerdict struct {
	committed  fileState
	gen        uint64 // generation of the last group kept
	chain      digest // chain of its last record
	rolledBack bool   // the newest header's group was torn: not kept
	cutJournal int64  // bytes of the journal past the committed state
	cutBets    int64  // bytes of the bets file past it
	// The audit log's tree: its root in the committed state (nil when no
	// header says it), and the leaf hashes of the newest group when it is
	// kept (their stored hashes may not all have reached the disk).
	root       *tlog.Hash
	newest     []tlog.Hash
	newestFrom int64 // the first of them
	// Set by openTree: the stored hashes to write after the durable ones,
	// and the bytes of the .tlog file past those (rewritten by cutTail).
	treePending []tlog.Hash
	cutTree     int64
	rebuildTree bool
}

// checkTail finds the committed state of a version 3 journal (jsize bytes,
// blocks included) and its bets file (bsize bytes) from the newest commit
// header, and verifies the one group a crash can have torn: the newest
// (docs/durability.md). It reads two headers, one group's records and rows
// (4 MiB at most) and one record before them, whatever the files hold.
// Everything before that group is verified later, in the background.
func checkTail(journal io.ReaderAt, jpath string, jsize int64, bets io.ReaderAt, bpath string, bsize int64) (tailVerdict, *DamageError) {
	var tv tailVerdict
	h, older, err := newestHeader(journal, jpath)
	if err != nil {
		return tv, err
	}
	if jsize < h.before.journal {
		return tv, damagef(jpath, jsize, "the journal has %d bytes, but its commit header (group %d) says %d were committed before the last group: it was cut short", jsize, h.gen, h.before.journal)
	}
	if bsize < h.before.bets {
		return tv, damagef(bpath, bsize, "the bets file has %d bytes, but the journal's commit header (group %d) says %d were committed before the last group: it was cut short", bsize, h.gen, h.before.bets)
	}
	prevChain, err := chainBefore(journal, jpath, h)
	if err != nil {
		return tv, err
	}
	tv.committed, tv.gen, tv.chain, tv.root = h.after, h.gen, h.chain, &h.root
	tv.newestFrom = h.after.records()
	if h.before != h.after {
		tv.newestFrom = h.before.records()
		if tv.newest = lastGroupWhole(journal, jpath, jsize, bets, bpath, bsize, h, prevChain); tv.newest == nil {
			// The header reached the disk, the group's records or rows did
			// not all: a crash before its fsync returned, so it was never
			// acked. The header before it, if whole, gives the root.
			tv.committed, tv.gen, tv.chain, tv.rolledBack, tv.root = h.before, h.gen-1, prevChain, true, nil
			if older != nil {
				tv.root = &older.root
			}
		}
	}
	if err := checkLastRows(journal, jpath, bets, bpath, bsize, tv.committed); err != nil {
		return tv, err
	}
	tv.cutJournal, tv.cutBets = jsize-tv.committed.journal, bsize-tv.committed.bets
	// Past the committed state there can only be the records and rows of
	// one group, whose header never reached the disk (or, rolled back, the
	// torn group itself). More is not a crash.
	if tv.cutJournal > (maxGroupCommits+1)*journalRecordSize {
		return tv, damagef(jpath, tv.committed.journal, "%d bytes follow the committed records, more than one group commit writes", tv.cutJournal)
	}
	if tv.cutBets > maxTailBytes {
		return tv, damagef(bpath, tv.committed.bets, "%d bytes follow the committed rows, more than one group commit writes", tv.cutBets)
	}
	return tv, nil
}

// newestHeader reads both header slots and returns the newest that checks
// out, and the one before it if it checks out too. Two valid headers must
// be of consecutive groups.
func newestHeader(journal io.ReaderAt, jpath string) (header, *header, *DamageError) {
	var hs [2]header
	var ok [2]bool
	buf := make([]byte, headerSize)
	for i := range hs {
		if _, err := journal.ReadAt(buf, slotOffset(uint64(i))); err == nil {
			hs[i], ok[i] = parseHeader(buf)
			ok[i] = ok[i] && hs[i].gen%2 == uint64(i)
		}
	}
	switch {
	case ok[0] && ok[1]:
		newer, older := hs[0], hs[1]
		if older.gen > newer.gen {
			newer, older = older, newer
		}
		if newer.gen != older.gen+1 || older.after != newer.before {
			return header{}, nil, damagef(jpath, slotOffset(newer.gen), "the commit headers of groups %d and %d do not follow each other", older.gen, newer.gen)
		}
		return newer, &older, nil
	case ok[0]:
		return hs[0], nil, nil
	case ok[1]:
		return hs[1], nil, nil
	}
	return header{}, nil, damagef(jpath, slotOffset(0), "neither commit header checks out (both torn or overwritten)")
}

// chainBefore reads the record just before the newest group: the last of
// the group before, durable before the newest group was written, so it
// must be whole. Its chain is where the newest group's chain starts. (A
// quiescent header, of a restore, an upgrade or a repair, has no group in
// doubt: that record is the last of its own group.)
func chainBefore(journal io.ReaderAt, jpath string, h header) (digest, *DamageError) {
	if h.before.journal == recordsStart {
		return digest{}, nil // the base record's group: nothing before it
	}
	group := uint16(h.gen - 1)
	if h.before == h.after {
		group = uint16(h.gen)
	}
	off := h.before.journal - journalRecordSize
	buf := make([]byte, journalRecordSize)
	if _, err := journal.ReadAt(buf, off); err != nil {
		return digest{}, damagef(jpath, off, "read the last record before group %d: %v", h.gen, err)
	}
	r, ok := parseRecord(buf)
	switch {
	case !ok:
		return digest{}, damagef(jpath, off, "record %d, the last of group %d, does not parse (CRC mismatch or invalid fields): the journal was overwritten or cut and zero-filled", h.before.records()-1, h.gen-1)
	case r.flags&flagGroupEnd == 0 || r.group != group || r.end != h.before.bets:
		return digest{}, damagef(jpath, off, "record %d is not the end of group %d that the commit header describes (group %d, ends at byte %d, want %d)", h.before.records()-1, group, r.group, r.end, h.before.bets)
	}
	return r.chain, nil
}

// lastGroupWhole returns the leaf hashes of the newest group's records if
// its records and rows are all on disk and prove each other, and add up to
// what its header says; nil if not.
func lastGroupWhole(journal io.ReaderAt, jpath string, jsize int64, bets io.ReaderAt, bpath string, bsize int64, h header, prevChain digest) []tlog.Hash {
	if jsize < h.after.journal || bsize < h.after.bets {
		return nil
	}
	from := scanFrom{off: h.before.journal, index: h.before.records(), prevEnd: h.before.bets, prev: prevChain, expect: uint16(h.gen)}
	sc := newScanner(io.NewSectionReader(journal, h.before.journal, h.after.journal-h.before.journal), jpath, from,
		io.NewSectionReader(bets, h.before.bets, h.after.bets-h.before.bets), bpath, h.after.bets, true, nil)
	leaves := []tlog.Hash{}
	sc.leaves = &leaves
	if sc.scan(h.after.journal) != nil {
		return nil
	}
	whole := sc.kept.chain == h.chain && sc.kept.bets == h.after.bets &&
		sc.count.bets == h.after.betCount-h.before.betCount &&
		sc.count.batches == h.after.batches-h.before.batches &&
		sc.count.finished == h.after.finished-h.before.finished
	if !whole {
		return nil
	}
	return leaves
}

// maxLastRowsWalk bounds how far back checkLastRows looks for the last
// record that covers rows, past finished records and refused batches'
// empty records (a few per agency at the end of a run).
const maxLastRowsWalk = 4096

// checkLastRows verifies the rows that end the committed part of the bets
// file against the last record that covers rows: a row inserted or deleted
// anywhere before shifts them, so a bets file whose length looks like a
// committed one plus a crash's tail, but is not, is refused before any
// byte is cut. (A byte changed in place is found by the background
// verification.)
func checkLastRows(journal io.ReaderAt, jpath string, bets io.ReaderAt, bpath string, bsize int64, c fileState) *DamageError {
	if c.bets == 0 {
		return nil
	}
	// Walk back past the records that end where the rows end: the last
	// one that covers rows, then finished records and empty batches.
	var last, buf [journalRecordSize]byte
	lastOff, start, prevChain := int64(-1), int64(0), digest{}
	for off := c.journal - journalRecordSize; off >= recordsStart; off -= journalRecordSize {
		if c.journal-off > maxLastRowsWalk*journalRecordSize {
			return nil // too many empty records at the end: left to the background verification
		}
		if _, err := journal.ReadAt(buf[:], off); err != nil {
			return damagef(jpath, off, "read: %v", err)
		}
		r, ok := parseRecord(buf[:])
		switch {
		case !ok:
			return damagef(jpath, off, "record %d does not parse (CRC mismatch or invalid fields)", (off-recordsStart)/journalRecordSize)
		case r.end > c.bets:
			return damagef(jpath, off, "record %d ends at byte %d, past the committed rows (%d)", (off-recordsStart)/journalRecordSize, r.end, c.bets)
		case r.end == c.bets:
			last, lastOff = buf, off
			continue
		}
		start, prevChain = r.end, r.chain
		break
	}
	index := (lastOff - recordsStart) / journalRecordSize
	r, _ := parseRecord(last[:])
	d, _, err := newRowHasher().next(io.NewSectionReader(bets, start, c.bets-start), c.bets-start)
	switch {
	case lastOff < 0:
		return damagef(jpath, c.journal-journalRecordSize, "the last record does not end where the committed rows end (byte %d)", c.bets)
	case err != nil || bsize < c.bets:
		return damagef(bpath, start, "read the last committed rows: %v", err)
	case !linked(last[:], prevChain):
		return damagef(jpath, lastOff, "record %d does not chain to the one before it: a record was removed, inserted or rewritten", index)
	case d != r.digest:
		return damagef(bpath, start, "bytes %d to %d do not match the digest of record %d (journal offset %d): a row was inserted, deleted or changed before them", start, c.bets, index, lastOff)
	}
	return nil
}

// quiescent is the header of a state no group is in doubt about: after a
// restore, an upgrade or a repair, before and after are the same.
func quiescent(gen uint64, st fileState, chain digest) header {
	return header{gen: gen, after: st, before: st, chain: chain}
}

// stateMismatch compares what the records add up to with what the commit
// header says: the index's last check.
func stateMismatch(jpath string, sc *scanner, want fileState, gen uint64, chain digest) *DamageError {
	k := sc.kept
	got := fileState{journal: k.journal, bets: k.bets, betCount: k.betCount, batches: k.batches, finished: k.finished}
	switch {
	case got != want:
		return damagef(jpath, k.journal, "the records add up to %s, but the commit header says %s", got, want)
	case k.group != uint16(gen) || k.chain != chain:
		return damagef(jpath, k.journal, "the last record (group %d) is not the one the commit header of group %d names", k.group, gen)
	}
	return nil
}

func (st fileState) String() string {
	return fmt.Sprintf("%d journal bytes, %d bets bytes, %d bets, %d batches, %d finished", st.journal, st.bets, st.betCount, st.batches, st.finished)
}
