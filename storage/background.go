package storage

import (
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/tlog"
)

// What Open does not read before it returns is read by the writer
// goroutine and one verifier goroutine, in this order:
//
//  1. the index (prepare): every journal record, its CRC and its place
//     (base first, each batch its agency's next, finished after its last
//     batch), rebuilding the last sequence, the digests and the finished
//     agencies; the records must add up to the committed header. A 64-byte
//     record costs a CRC and a few map updates: the journal of 10 M bets
//     in batches of 100 is indexed in milliseconds. Until then the writer
//     takes no commit and LastSeq and Finished wait (Ready).
//  2. the audit log's tree (tree.go): the newest group's stored hashes
//     written again (Open computed them), or, when the .tlog file is
//     missing, short or does not give the header's root (a journal older
//     than the audit log, a repair, a deleted file), the whole tree
//     rebuilt from the journal and the rows, which costs a full read of
//     the rows like the verification (the only start that does).
//  3. the cut: only now is the unacknowledged tail Open found cut, so that
//     damage found by the index or the rebuild leaves every byte as it was.
//  4. the verification (verify), while the store takes commits: the rows
//     of every record re-hashed against its digest, every record's chain
//     and every stored hash of the audit log, over what the files held at
//     Open. It reads about as fast as
//     SHA-256 (2 GB/s with SHA-NI): half a second for 10 M bets. The draw
//     waits for it (Verified); damage found stops the store (Failed).
//
// hashicorp/raft-wal verifies only its tail segment at start, PostgreSQL
// checks a page's checksum when it reads it, ZFS scrubs in the background:
// this is the three together (docs/durability.md).

// verifyCheckEvery is how many records the verification reads between two
// looks at Close.
const verifyCheckEvery = 1024

// prepare indexes the journal, finishes the audit log's tree and cuts the
// tail Open found.
func (s *Store) prepare() error {
	st, err := s.index()
	if err != nil {
		return err
	}
	s.batches = st.batches
	s.mu.Lock()
	s.lastSeq, s.finished, s.agencyBets, s.commitment = st.lastSeq, st.finished, st.bets, st.commitment
	s.mu.Unlock()
	finishTree := s.finishTree
	if s.tail.rebuildTree {
		finishTree = s.rebuildTree
	}
	if err := finishTree(); err != nil {
		return err
	}
	return s.cutTail()
}

// index reads every committed record (not the rows) and rebuilds the
// state they commit.
func (s *Store) index() (*journalState, error) {
	c, jpath := s.committed, s.path+journalSuffix
	sc := newScanner(io.NewSectionReader(s.journal, recordsStart, c.journal-recordsStart), jpath,
		scanFrom{off: recordsStart}, nil, s.path, c.bets, false, newJournalState())
	d := sc.scan(c.journal)
	if d == nil {
		d = stateMismatch(jpath, sc, c, s.gen, s.chain)
	}
	if d != nil {
		return nil, s.locate(d)
	}
	return sc.st, nil
}

// locate finds where damage the index noticed starts: a record edited
// with a fixed CRC shows to the index only at a later record, out of
// place; read with its rows and chain, the files show the first record
// that does not prove itself. Only damaged files pay this.
func (s *Store) locate(d *DamageError) *DamageError {
	end := min(d.Offset+journalRecordSize, s.committed.journal)
	if d.File != s.path+journalSuffix || end <= recordsStart {
		return d
	}
	sc := newScanner(io.NewSectionReader(s.journal, recordsStart, end-recordsStart), d.File, scanFrom{off: recordsStart},
		io.NewSectionReader(s.bets, 0, s.committed.bets), s.path, s.committed.bets, true, nil)
	if first := sc.scanTo(end); first != nil && (first.File != d.File || first.Offset < d.Offset) {
		return first
	}
	return d
}

// cutTail cuts what Open found past the committed state: bytes a crash
// left that were never acknowledged.
func (s *Store) cutTail() error {
	t := s.tail
	if t.cutJournal == 0 && t.cutBets == 0 {
		return nil
	}
	if t.cutJournal > 0 {
		if err := s.journal.Truncate(s.committed.journal); err != nil {
			return fmt.Errorf("truncate journal: %w", err)
		}
		if err := s.sync(s.journal); err != nil {
			return fmt.Errorf("sync journal: %w", err)
		}
	}
	if t.cutBets > 0 {
		if err := s.bets.Truncate(s.committed.bets); err != nil {
			return fmt.Errorf("truncate bets file: %w", err)
		}
		if err := s.sync(s.bets); err != nil {
			return fmt.Errorf("sync bets file: %w", err)
		}
	}
	return nil
}

// finishTree writes the stored hashes of the newest group after the
// durable ones (openTree computed them), cutting what followed.
func (s *Store) finishTree() error {
	t := s.tail
	if t.cutTree == 0 && len(t.treePending) == 0 {
		return nil
	}
	durable := s.tree.hashes()
	if err := s.tlog.Truncate(durable * hashSize); err != nil {
		return fmt.Errorf("truncate the audit log: %w", err)
	}
	if _, err := s.tlog.WriteAt(encodeHashes(nil, t.treePending), durable*hashSize); err != nil {
		return fmt.Errorf("write the audit log: %w", err)
	}
	if err := s.sync(s.tlog); err != nil {
		return fmt.Errorf("sync the audit log: %w", err)
	}
	s.tree.publish(t.treePending)
	return nil
}

// verify proves, in the background, every byte the files held at Open:
// the state c, group gen whose last record's chain is chain — the rows
// against their records, the records' chain, and the audit log's stored
// hashes against the tree of those records. Rows stored since were hashed
// by the sessions that sent them. It also learns the full digest of every
// batch stored before Open, for the draw statement's salts.
func (s *Store) verify(c fileState, gen uint64, chain digest) {
	defer close(s.verifyDone)
	jpath := s.path + journalSuffix
	sc := newScanner(io.NewSectionReader(s.journal, recordsStart, c.journal-recordsStart), jpath,
		scanFrom{off: recordsStart}, io.NewSectionReader(s.bets, 0, c.bets), s.path, c.bets, true, nil)
	digests := make(map[uint32][][32]byte)
	var treeDamage *DamageError
	sc.onRecord = func(i int64, r record) {
		if r.kind == kindBatch {
			digests[r.agency] = append(digests[r.agency], r.full)
		}
		if treeDamage == nil {
			treeDamage = s.checkTreeAt(i, leafHash(r, r.full))
		}
	}
	for end := int64(recordsStart); end < c.journal; {
		select {
		case <-s.stop:
			return
		default:
		}
		end = min(end+verifyCheckEvery*journalRecordSize, c.journal)
		scan := sc.scanTo
		if end == c.journal {
			scan = sc.scan
		}
		if d := scan(end); d != nil {
			s.fail(d)
			return
		}
		if treeDamage != nil {
			s.fail(treeDamage)
			return
		}
	}
	if d := stateMismatch(jpath, sc, c, gen, chain); d != nil {
		s.fail(d)
		return
	}
	s.mu.Lock()
	for a, d := range digests {
		s.digests[a] = append(d, s.digests[a]...)
	}
	s.mu.Unlock()
	close(s.verified)
}

// checkTreeAt checks that the stored hashes record i added to the audit
// log are the ones its leaf gives: the tree before it was checked by the
// calls for the records before.
func (s *Store) checkTreeAt(i int64, leaf tlog.Hash) *DamageError {
	want, err := tlog.StoredHashesForRecordHash(i, leaf, s.tree)
	if err == nil {
		first := tlog.StoredHashCount(i)
		indexes := make([]int64, len(want))
		for k := range indexes {
			indexes[k] = first + int64(k)
		}
		var got []tlog.Hash
		if got, err = s.tree.ReadHashes(indexes); err == nil {
			for k := range want {
				if got[k] != want[k] {
					return damagef(s.path+tlogSuffix, (first+int64(k))*hashSize,
						"stored hash %d of the audit log does not match the tree of the journal's records (record %d): repair rebuilds the file", first+int64(k), i)
				}
			}
			return nil
		}
	}
	return damagef(s.path+tlogSuffix, tlog.StoredHashCount(i)*hashSize, "read the audit log's hashes of record %d: %v", i, err)
}
