package storage

import "io"

// fullCheck is what reading both files whole proves: Check and Repair,
// and a snapshot before it replaces a node's files.
type fullCheck struct {
	tail   tailVerdict  // the committed state, when damage is nil
	damage *DamageError // the first damage, nil if there is none
	// The longest verified prefix: the whole groups from the start whose
	// records and rows check out (what Repair keeps).
	kept      fileState
	keptGen   uint64
	keptChain digest
	state     *journalState // what the kept records commit
}

// checkFiles verifies a version 3 journal and its bets file from their
// first bytes: the commit header and the tail as Open does, then every
// record and every row, as the background verification does.
func checkFiles(journal io.ReaderAt, jpath string, jsize int64, bets io.ReaderAt, bpath string, bsize int64) fullCheck {
	var fc fullCheck
	tv, damage := checkTail(journal, jpath, jsize, bets, bpath, bsize)
	// On damage, read as far as the records go: the prefix that verifies
	// is what Repair keeps.
	end := recordsStart + (jsize-recordsStart)/journalRecordSize*journalRecordSize
	if damage == nil {
		end = tv.committed.journal
	}
	sc := newScanner(io.NewSectionReader(journal, recordsStart, max(end-recordsStart, 0)), jpath, scanFrom{off: recordsStart},
		io.NewSectionReader(bets, 0, bsize), bpath, bsize, true, newJournalState())
	if d := sc.scan(end); damage == nil {
		damage = d
	}
	if damage == nil {
		damage = stateMismatch(jpath, sc, tv.committed, tv.gen, tv.chain)
	}
	sc.rollback()
	k := sc.kept
	fc.tail, fc.damage, fc.state = tv, damage, sc.st
	fc.kept = fileState{journal: k.journal, bets: k.bets, betCount: k.betCount, batches: k.batches, finished: k.finished}
	fc.keptGen, fc.keptChain = uint64(k.groups-1), k.chain
	return fc
}
