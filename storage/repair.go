package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"lottery/csvrow"
	"lottery/internal/fsutil"
)

// Report is what Check found in a bets file and its journal, and what
// Repair did about it.
type Report struct {
	BetsSize, JournalSize int64
	// The verified prefix: what Open would keep (Damage == nil) or what
	// Repair keeps (Damage != nil).
	KeepBets, KeepJournal int64
	Bets                  int64
	Batches, Finished     int
	// Damage is the first mismatch before the tail; nil when the files
	// prove each other (an unacknowledged tail aside).
	Damage *DamageError
	// NoJournal: bets without a complete journal (a course-format file to
	// adopt).
	NoJournal bool

	// Set by Repair: the rows adopted into a new journal, and where the
	// removed bytes were moved.
	Adopted                   int64
	BrokenBets, BrokenJournal string
	MovedBets, MovedJournal   int64
	Repaired                  bool

	// TreeDamage: the one damage is in the audit log's hashes (.tlog),
	// which are derived from the journal and the rows: Repair moves the
	// file whole to BrokenTree and the next start rebuilds it.
	TreeDamage bool
	BrokenTree string
}

// Check verifies the bets file at path against its journal without
// changing anything, under the same lock a central takes: the whole files,
// as the central does at start and in the background together.
func Check(path string) (Report, error) {
	in, err := inspect(path)
	if in != nil {
		in.close()
	}
	if err != nil {
		return Report{}, err
	}
	return in.rep, nil
}

// inspection is an open, locked pair of files and what reading them whole
// proved. The lock is held until close, so a central cannot start on the
// files while Repair changes them.
type inspection struct {
	rep     Report
	bets    *os.File // holds the lock
	journal *os.File // nil: none
	check   fullCheck
	v2      *v2Verdict // a version 2 journal's verdict
}

func (in *inspection) close() {
	in.bets.Close()
	if in.journal != nil {
		in.journal.Close()
	}
}

// inspect opens both files read-only, locks the bets file and verifies.
// The caller closes the inspection, which releases the lock.
func inspect(path string) (*inspection, error) {
	bets, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	in := &inspection{bets: bets}
	if err := lock(bets); err != nil {
		bets.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rep := &in.rep
	if rep.BetsSize, err = fileSize(bets); err != nil {
		return in, err
	}
	jpath := path + journalSuffix
	journal, err := os.Open(jpath)
	if errors.Is(err, os.ErrNotExist) {
		rep.NoJournal = rep.BetsSize > 0
		return in, nil
	}
	if err != nil {
		return in, err
	}
	in.journal = journal
	if rep.JournalSize, err = fileSize(journal); err != nil {
		return in, err
	}
	return in, in.judge(path)
}

// judge verifies the open journal as its magic says: a version 3 journal
// whole (checkFiles), a version 2 one as its upgrade would.
func (in *inspection) judge(path string) error {
	rep, journal, bets, jpath := &in.rep, in.journal, in.bets, path+journalSuffix
	magic := make([]byte, min(rep.JournalSize, int64(len(journalMagic))))
	if _, err := io.ReadFull(journal, magic); err != nil {
		return err
	}
	switch {
	case string(magic) == journalMagicV1:
		return fmt.Errorf("%s is a version 1 journal: start the central once to upgrade it, then check", jpath)
	case string(magic) == journalMagicV2 && rep.JournalSize < int64(len(journalMagicV2))+journalRecordSize:
		rep.NoJournal = rep.BetsSize > 0
		return nil
	case string(magic) == journalMagicV2:
		v := judgeV2(journal, jpath, rep.JournalSize, bets, path, rep.BetsSize)
		in.v2 = &v
		rep.Damage, rep.KeepBets, rep.KeepJournal = v.damage, v.kept.bets, v.kept.journal
		rep.Bets, rep.Batches, rep.Finished = v.kept.betCount, int(v.kept.batches), len(v.state.finished)
		return nil
	case string(magic) != journalMagic[:len(magic)]:
		rep.Damage = &DamageError{File: jpath, Offset: 0, What: fmt.Sprintf("not a bets journal (magic %q)", magic)}
		return nil
	case rep.JournalSize < recordsStart+journalRecordSize && (rep.BetsSize == 0 || rep.JournalSize < int64(len(journalMagic))):
		rep.NoJournal = rep.BetsSize > 0
		return nil
	case rep.JournalSize < recordsStart+journalRecordSize:
		// Cut inside its blocks: nothing of it verifies, so nothing of the
		// rows is kept (adopting them would forget their sequences).
		in.check = fullCheck{damage: cutShort(jpath, rep.JournalSize), kept: fileState{journal: recordsStart},
			keptGen: ^uint64(0), state: newJournalState()}
		rep.Damage, rep.KeepJournal = in.check.damage, recordsStart
		return nil
	}
	in.check = checkFiles(journal, jpath, rep.JournalSize, bets, path, rep.BetsSize)
	fc := &in.check
	rep.Damage = fc.damage
	if rep.Damage == nil {
		rep.Damage = fc.checkTree(path+tlogSuffix, jpath)
		rep.TreeDamage = rep.Damage != nil && rep.Damage.File == path+tlogSuffix
	}
	keep := fc.tail.committed
	if fc.damage != nil {
		keep = fc.kept
	}
	rep.KeepBets, rep.KeepJournal = keep.bets, keep.journal
	rep.Bets, rep.Batches, rep.Finished = fc.kept.betCount, int(fc.kept.batches), len(fc.state.finished)
	return nil
}

// Repair makes the bets file and its journal prove each other again, as
// etcd's WAL repair does: it keeps the longest verified prefix of both and
// moves every byte it removes to <file>.broken-<time>, never deleting one;
// the journal's commit headers are rewritten for the prefix kept, and the
// journal as it was is copied whole. A bets file without a journal (the
// course's Python wrote it) is adopted: every complete row is kept, stray
// quotes included, under a new journal whose base record covers them. Run
// it only when asked: Open never does. It holds the lock the central takes
// until it returns.
func Repair(path string, now time.Time) (Report, error) {
	in, err := inspect(path)
	if in != nil {
		defer in.close()
	}
	if err != nil {
		return Report{}, err
	}
	rep := in.rep
	if repairHook != nil {
		repairHook()
	}
	stamp := now.UTC().Format("20060102T150405Z")
	switch {
	case rep.NoJournal:
		return adopt(path, rep, stamp)
	case in.v2 != nil:
		return repairV2(path, in, stamp)
	case rep.Damage != nil && in.check.state == nil:
		return rep, rep.Damage // a journal that is not ours: nothing safe to do
	case rep.TreeDamage:
		return moveTree(path, rep, stamp)
	case in.check.state == nil || rep.KeepBets == rep.BetsSize && rep.KeepJournal == rep.JournalSize:
		return rep, nil // nothing to remove
	}
	gen, chain := in.check.tail.gen, in.check.tail.chain
	keep := in.check.tail.committed
	if rep.Damage != nil {
		gen, chain, keep = in.check.keptGen, in.check.keptChain, in.check.kept
	}
	jpath := path + journalSuffix
	var err1, err2 error
	rep.BrokenBets, rep.MovedBets, err1 = moveTail(path, rep.KeepBets, stamp)
	rep.BrokenJournal, err2 = copyWhole(jpath, stamp)
	rep.MovedJournal = rep.JournalSize - rep.KeepJournal
	if err := errors.Join(err1, err2); err != nil {
		return rep, err
	}
	if keep.journal < recordsStart+journalRecordSize {
		// Not even the base record verifies: a journal over nothing, its
		// header quiescent as after any repair.
		b, chain := newJournal(0, 0)
		copy(b[slotOffset(0):], quiescent(0, fileState{journal: int64(len(b))}, chain).encode())
		if err := fsutil.WriteFileSynced(jpath, b, 0o644); err != nil {
			return rep, err
		}
		rep.KeepJournal, rep.MovedJournal = int64(len(b)), rep.JournalSize // none of its bytes kept
	} else if err := rewriteJournal(jpath, keep, gen, chain); err != nil {
		return rep, err
	}
	// The rewritten headers name no audit log root: the next start
	// rebuilds the tree of the records kept, and the old hashes go aside.
	if rep, err = moveTree(path, rep, stamp); err != nil {
		return rep, err
	}
	if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
		return rep, err
	}
	rep.Repaired = true
	return rep, nil
}

// repairV2 keeps what a version 2 journal proves and makes it version 3:
// the rest of the bets file moved aside, the old journal copied whole.
func repairV2(path string, in *inspection, stamp string) (Report, error) {
	rep := in.rep
	jpath := path + journalSuffix
	var err error
	if rep.BrokenBets, rep.MovedBets, err = moveTail(path, rep.KeepBets, stamp); err != nil {
		return rep, err
	}
	if rep.BrokenJournal, err = copyWhole(jpath, stamp); err != nil {
		return rep, err
	}
	rep.MovedJournal = rep.JournalSize - rep.KeepJournal
	var b bytes.Buffer
	if err := writeV3(&b, in.journal, *in.v2); err != nil {
		return rep, err
	}
	tmp := jpath + ".upgrade"
	if err := fsutil.WriteFileSynced(tmp, b.Bytes(), 0o644); err != nil {
		return rep, err
	}
	if err := os.Rename(tmp, jpath); err != nil {
		return rep, err
	}
	if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
		return rep, err
	}
	rep.KeepJournal, rep.Repaired = int64(b.Len()), true
	return rep, nil
}

// repairHook, set by tests, runs between Repair's verification and its
// first change to the files.
var repairHook func()

// rewriteJournal cuts a journal to the state keep and writes the header of
// that state into its slot and zeros into the other, whose newer header
// would describe what was cut.
func rewriteJournal(jpath string, keep fileState, gen uint64, chain digest) error {
	f, err := os.OpenFile(jpath, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(keep.journal)
	if err == nil {
		_, err = f.WriteAt(quiescent(gen, keep, chain).encode(), slotOffset(gen))
	}
	if err == nil {
		_, err = f.WriteAt(make([]byte, headerSize), slotOffset(gen+1))
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// moveTree renames the audit log's hashes, if there are any, to
// <path>.tlog.broken-<stamp>: the next start writes them again from the
// journal and the rows.
func moveTree(path string, rep Report, stamp string) (Report, error) {
	tpath := path + tlogSuffix
	broken := tpath + ".broken-" + stamp
	switch err := os.Rename(tpath, broken); {
	case errors.Is(err, os.ErrNotExist):
		return rep, nil
	case err != nil:
		return rep, err
	}
	rep.BrokenTree, rep.Repaired = broken, true
	return rep, fsutil.SyncDir(filepath.Dir(path))
}

// copyWhole copies the file at path to <path>.broken-<stamp> and syncs the
// copy.
func copyWhole(path, stamp string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	broken := path + ".broken-" + stamp
	return broken, copyToNew(broken, f)
}

// copyToNew writes what r holds to a new file at path and syncs it.
func copyToNew(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, r)
	if err == nil {
		err = out.Sync()
	}
	return errors.Join(err, out.Close())
}

// moveTail copies the bytes of the file at path from keep on to
// <path>.broken-<stamp>, syncs the copy, then cuts the file at keep.
func moveTail(path string, keep int64, stamp string) (string, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	size, err := fileSize(f)
	if err != nil || size <= keep {
		return "", 0, err
	}
	broken := path + ".broken-" + stamp
	if err := copyToNew(broken, io.NewSectionReader(f, keep, size-keep)); err != nil {
		return "", 0, err
	}
	if err := f.Truncate(keep); err != nil {
		return broken, 0, err
	}
	return broken, size - keep, f.Sync()
}

// adopt writes a journal for a bets file that has none: a base record over
// its complete rows. Bytes after the last complete row are moved aside.
func adopt(path string, rep Report, stamp string) (Report, error) {
	end, rows, err := completeRows(path)
	if err != nil {
		return rep, err
	}
	if rep.BrokenBets, rep.MovedBets, err = moveTail(path, end, stamp); err != nil {
		return rep, err
	}
	f, err := os.Open(path)
	if err != nil {
		return rep, err
	}
	defer f.Close()
	sum, _, err := newRowHasher().nextFull(f, end)
	if err != nil {
		return rep, err
	}
	jpath := path + journalSuffix
	if _, err := os.Stat(jpath); err == nil { // a torn journal: keep its bytes too
		if rep.BrokenJournal, rep.MovedJournal, err = moveTail(jpath, 0, stamp); err != nil {
			return rep, err
		}
	}
	journal, _, _ := newJournalWithDigest(end, uint32(min(rows, 1<<32-1)), sum)
	tmp := jpath + ".adopt"
	if err := fsutil.WriteFileSynced(tmp, journal, 0o644); err != nil {
		return rep, err
	}
	if err := os.Rename(tmp, jpath); err != nil {
		return rep, err
	}
	if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
		return rep, err
	}
	rep.Adopted, rep.Bets, rep.KeepBets, rep.KeepJournal, rep.Repaired = rows, rows, end, int64(len(journal)), true
	rep.NoJournal = false
	return rep, nil
}

// completeRows returns the end of the last complete row of a bets file (one
// that ends with its line feed) and how many rows come before it. Rows are
// found as csv.reader finds them, following quotes; a stray quote inside a
// field (O"Brien) is part of its row.
func completeRows(path string) (end, rows int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := csvrow.NewReader(f, scanBufferSize)
	r.SetMaxRecord(maxRowBytes)
	for {
		_, err := r.ReadRecord()
		if err == io.EOF {
			return end, rows, nil
		}
		if errors.Is(err, csvrow.ErrTooLong) {
			return 0, 0, fmt.Errorf("adopt %s: line %d: %w", path, r.Line(), err)
		}
		if err != nil && !errors.Is(err, csvrow.ErrQuote) {
			return 0, 0, fmt.Errorf("adopt %s: %w", path, err)
		}
		if r.Offset() > end && endsLine(f, r.Offset()) {
			end = r.Offset()
			rows++
		}
	}
}

// endsLine reports whether the byte before off is a line feed: a last row
// without one may be torn.
func endsLine(f io.ReaderAt, off int64) bool {
	var b [1]byte
	_, err := f.ReadAt(b[:], off-1)
	return err == nil && b[0] == '\n'
}
