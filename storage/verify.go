package storage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// ErrDamaged matches every *DamageError (errors.Is).
var ErrDamaged = errors.New("storage: the bets file and its journal do not match")

// DamageError says where the bets file and its journal stop proving each
// other before the tail. Open refuses to start on it and changes nothing;
// Repair keeps the longest verified prefix.
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

// Limits of the tail, the only part recovery may cut: one group commit,
// because a group is written only after the previous one was synced.
const (
	// maxGroupCommits bounds the commits (hence the journal records) of
	// one group.
	maxGroupCommits = queueSize
	// maxTailBytes bounds the bets file's bytes past the last committed
	// record: one group's rows, which may exceed maxGroupBytes by the last
	// batch added to it (a frame's bets as rows, far below 1 MiB).
	maxTailBytes = maxGroupBytes + 1<<20
)

// verdict is what verifying a bets file against its journal found: the
// longest verified prefix of both files (complete groups whose records
// chain, whose rows hash to their digests and whose sequences follow), the
// committed state it describes, and the damage found before the tail, if
// any.
type verdict struct {
	keepJournal int64  // bytes of the journal proven (magic included)
	keepBets    int64  // bytes of the bets file proven
	chain       digest // chain of the last record kept
	group       uint16 // number of the last group kept
	records     int    // records kept

	lastSeq  map[uint32]uint64
	digests  map[uint32][]uint64
	finished map[uint32]uint64
	bets     int64
	batches  int

	journalSize, betsSize int64
	damage                *DamageError
}

// undo is what one record of the open group changed, to roll it back when
// the group turns out to be the unacknowledged tail.
type undo struct {
	r       record
	prevSeq uint64
}

// verifyFiles checks the journal (read from just after its magic) against
// the bets file (read from its start). Both are streamed: memory grows with
// the number of batches (8 bytes each), not with the bets.
func verifyFiles(journal io.Reader, journalPath string, journalSize int64, bets io.Reader, betsPath string, betsSize int64) *verdict {
	v := &verdict{
		keepJournal: int64(len(journalMagic)), journalSize: journalSize, betsSize: betsSize,
		lastSeq: make(map[uint32]uint64), digests: make(map[uint32][]uint64), finished: make(map[uint32]uint64),
	}
	jr := bufio.NewReaderSize(journal, 64<<10)
	br := bufio.NewReaderSize(bets, scanBufferSize)
	damage := func(file string, off int64, format string, args ...any) *DamageError {
		return &DamageError{File: file, Offset: off, What: fmt.Sprintf(format, args...)}
	}
	var (
		buf      [journalRecordSize]byte
		off      = int64(len(journalMagic))
		prev     digest // chain of the last record read
		prevEnd  int64  // end of the last record read
		group    []undo // the open group's records
		groupBad *DamageError
		sealed   *DamageError // a complete group whose rows did not match: damage unless it is the last
		fail     *DamageError // the first record that does not parse, link or follow
		expect   uint16       // the group number the next record must carry
		rows     = newRowHasher()
	)
	rollback := func() {
		for i := len(group) - 1; i >= 0; i-- {
			u := group[i]
			switch u.r.kind {
			case kindBatch:
				v.lastSeq[u.r.agency] = u.prevSeq
				v.digests[u.r.agency] = v.digests[u.r.agency][:u.prevSeq]
				v.bets -= int64(u.r.count)
				v.batches--
			case kindFinished:
				delete(v.finished, u.r.agency)
			case kindBase:
				v.bets -= int64(u.r.count)
			}
		}
		group = group[:0]
	}
	for i := 0; ; i++ {
		if _, err := io.ReadFull(jr, buf[:]); err != nil {
			break // the end, or a torn last record: part of the tail
		}
		if sealed != nil {
			v.damage = sealed // a group after it: it was not the tail
			return v
		}
		r, ok := parseRecord(buf[:])
		last := v.lastSeq[r.agency]
		switch {
		case !ok:
			fail = damage(journalPath, off, "record %d does not parse (CRC mismatch or invalid fields)", i)
		case !linked(buf[:], prev):
			fail = damage(journalPath, off, "record %d does not chain to the one before it: a record was removed, inserted or rewritten", i)
		case (i == 0) != (r.kind == kindBase):
			fail = damage(journalPath, off, "record %d: only the first record is a base record", i)
		case r.group != expect:
			fail = damage(journalPath, off, "record %d is in group %d, expected group %d", i, r.group, expect)
		case r.end < prevEnd:
			fail = damage(journalPath, off, "record %d ends at %d, before the previous record's end %d", i, r.end, prevEnd)
		case r.kind == kindBatch && r.seq != last+1:
			fail = damage(journalPath, off, "record %d is batch %d of agency %d, after its batch %d", i, r.seq, r.agency, last)
		case r.kind == kindFinished && (r.end != prevEnd || r.seq != last):
			fail = damage(journalPath, off, "record %d: agency %d finished after batch %d, but its last is %d", i, r.agency, r.seq, last)
		}
		if fail != nil {
			break
		}
		if r.kind != kindFinished {
			switch d, n, err := rows.next(br, r.end-prevEnd); {
			case r.end > betsSize:
				groupBad = cmpOr(groupBad, damage(betsPath, min(prevEnd, betsSize), "record %d (journal offset %d) covers bytes %d to %d, but the file has %d", i, off, prevEnd, r.end, betsSize))
			case err != nil:
				groupBad = cmpOr(groupBad, damage(betsPath, prevEnd+n, "read: %v", err))
			case d != r.digest:
				groupBad = cmpOr(groupBad, damage(betsPath, prevEnd, "bytes %d to %d do not match the digest of record %d (journal offset %d)", prevEnd, r.end, i, off))
			}
		}
		group = append(group, undo{r: r, prevSeq: last})
		switch r.kind {
		case kindBatch:
			v.lastSeq[r.agency] = r.seq
			v.digests[r.agency] = append(v.digests[r.agency], r.digest.prefix())
			v.bets += int64(r.count)
			v.batches++
		case kindFinished:
			v.finished[r.agency] = r.seq
		case kindBase:
			v.bets += int64(r.count)
		}
		prev, prevEnd, off = r.chain, r.end, off+journalRecordSize
		if len(group) > maxGroupCommits+1 {
			fail = damage(journalPath, off, "a group of more than %d records", maxGroupCommits)
			break
		}
		if r.flags&flagGroupEnd == 0 {
			continue
		}
		expect = r.group + 1
		if groupBad != nil {
			sealed, groupBad = groupBad, nil
			rollback()
			continue
		}
		v.records += len(group)
		group = group[:0]
		v.keepJournal, v.keepBets, v.chain, v.group = off, r.end, r.chain, r.group
	}
	// Whatever follows the last verified group is the tail — one group at
	// most. A record that parses further on means the failure was not a
	// torn write but damage.
	rollback()
	if fail != nil {
		if later := laterGroup(jr, fail.Offset+journalRecordSize, v.group); later != "" {
			fail.What += "; " + later + ", so this is damage, not a torn last write"
			v.damage = fail
			return v
		}
		if slots := (journalSize - v.keepJournal) / journalRecordSize; slots > maxGroupCommits+1 {
			fail.What += fmt.Sprintf("; %d records follow the last verified group, more than one group commit writes", slots)
			v.damage = fail
			return v
		}
	}
	if tail := betsSize - v.keepBets; tail > maxTailBytes {
		v.damage = damage(journalPath, v.keepJournal, "the journal ends here but %s has %d bytes past its last record, more than one group commit writes: the journal is shorter than the data it should describe", betsPath, tail)
	}
	return v
}

// cmpOr returns a if it is set, else b.
func cmpOr(a, b *DamageError) *DamageError {
	if a != nil {
		return a
	}
	return b
}

// laterGroup looks through the rest of the journal (jr is at offset from)
// for proof that the failure before it is not a torn last write: a record
// of a group at least two after the last one kept (kept), or a valid group
// end with anything after it. A crash tears only the last group's write,
// which ends the journal.
func laterGroup(jr io.Reader, from int64, kept uint16) string {
	var buf [journalRecordSize]byte
	end := int64(-1)
	for off := from; ; off += journalRecordSize {
		n, err := io.ReadFull(jr, buf[:])
		if end >= 0 && n > 0 {
			return fmt.Sprintf("a complete group ends at offset %d and more follows", end)
		}
		if err != nil {
			return ""
		}
		r, ok := parseRecord(buf[:])
		if !ok {
			continue
		}
		if d := r.group - kept; d >= 2 && d < 1<<15 {
			return fmt.Sprintf("the record at offset %d belongs to group %d, at least two groups after the last whole one (%d)", off, r.group, kept)
		}
		if r.flags&flagGroupEnd != 0 {
			end = off
		}
	}
}
