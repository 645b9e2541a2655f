package storage

import (
	"bytes"
	"errors"
	"io"
	"os"

	"golang.org/x/mod/sumdb/tlog"
)

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
	// leaves are the audit log's leaf hashes of the committed records,
	// when damage is nil.
	leaves []tlog.Hash
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
	sc.leaves = &fc.leaves
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

// checkTree compares the audit log's hashes at tpath with the tree of the
// committed records, as a start and its background verification would: a
// header root that is not the records' tree is damage of the journal; a
// stored hash that differs is damage of the .tlog file, which -repair
// moves aside for the next start to rebuild. A file that is missing or
// shorter than the tree is no damage: a start rebuilds it, as it does
// after a repair or for a journal older than the audit log.
func (fc *fullCheck) checkTree(tpath, jpath string) *DamageError {
	stored, root, err := treeOf(fc.leaves)
	if err != nil {
		return damagef(tpath, 0, "the audit log of the records: %v", err)
	}
	if r := fc.tail.root; r != nil && *r != (tlog.Hash{}) && *r != root {
		return damagef(jpath, slotOffset(fc.tail.gen), "the commit header of group %d names an audit log root that is not the tree of its records", fc.tail.gen)
	}
	f, err := os.Open(tpath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return damagef(tpath, 0, "open: %v", err)
	}
	defer f.Close()
	want := encodeHashes(nil, stored)
	got := make([]byte, len(want))
	n, err := io.ReadFull(f, got)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return damagef(tpath, int64(n), "read: %v", err)
	}
	if i := firstDiff(got[:n], want[:n]); i >= 0 {
		x := int64(i / hashSize)
		return damagef(tpath, x*hashSize, "stored hash %d of the audit log does not match the tree of the journal's records: repair rebuilds the file", x)
	}
	return nil
}

// firstDiff is the index of the first byte where a and b (of one length)
// differ, -1 if none.
func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}
