package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"lottery/csvrow"
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
}

// Check verifies the bets file at path against its journal without
// changing anything, under the same lock a central takes.
func Check(path string) (Report, error) {
	rep, _, err := inspect(path)
	return rep, err
}

// inspect opens both files read-only, locks the bets file and verifies.
func inspect(path string) (Report, *verdict, error) {
	var rep Report
	bets, err := os.Open(path)
	if err != nil {
		return rep, nil, err
	}
	defer bets.Close()
	if err := lock(bets); err != nil {
		return rep, nil, fmt.Errorf("%s: %w", path, err)
	}
	if rep.BetsSize, err = fileSize(bets); err != nil {
		return rep, nil, err
	}
	jpath := path + journalSuffix
	journal, err := os.Open(jpath)
	if errors.Is(err, os.ErrNotExist) {
		rep.NoJournal = rep.BetsSize > 0
		return rep, nil, nil
	}
	if err != nil {
		return rep, nil, err
	}
	defer journal.Close()
	if rep.JournalSize, err = fileSize(journal); err != nil {
		return rep, nil, err
	}
	magic := make([]byte, min(rep.JournalSize, int64(len(journalMagic))))
	if _, err := io.ReadFull(journal, magic); err != nil {
		return rep, nil, err
	}
	switch {
	case string(magic) == journalMagicV1:
		return rep, nil, fmt.Errorf("%s is a version 1 journal: start the central once to upgrade it, then check", jpath)
	case string(magic) != journalMagic[:len(magic)]:
		rep.Damage = &DamageError{File: jpath, Offset: 0, What: fmt.Sprintf("not a bets journal (magic %q)", magic)}
		return rep, nil, nil
	case rep.JournalSize < int64(len(journalMagic)+journalRecordSize):
		rep.NoJournal = rep.BetsSize > 0
		return rep, nil, nil
	}
	v := verifyFiles(journal, jpath, rep.JournalSize, bets, path, rep.BetsSize)
	rep.KeepBets, rep.KeepJournal, rep.Damage = v.keepBets, v.keepJournal, v.damage
	rep.Bets, rep.Batches, rep.Finished = v.bets, v.batches, len(v.finished)
	return rep, v, nil
}

// Repair makes the bets file and its journal prove each other again, as
// etcd's WAL repair does: it keeps the longest verified prefix of both and
// moves every byte it removes to <file>.broken-<time>, never deleting one.
// A bets file without a journal (the course's Python wrote it) is adopted:
// every complete row is kept, stray quotes included, under a new journal
// whose base record covers them. Run it only when asked: Open never does.
func Repair(path string, now time.Time) (Report, error) {
	rep, v, err := inspect(path)
	if err != nil {
		return rep, err
	}
	stamp := now.UTC().Format("20060102T150405Z")
	switch {
	case rep.NoJournal:
		return adopt(path, rep, stamp)
	case rep.Damage != nil && v == nil:
		return rep, rep.Damage // a journal that is not ours: nothing safe to do
	case v == nil || rep.KeepBets == rep.BetsSize && rep.KeepJournal == rep.JournalSize:
		return rep, nil // nothing to remove
	}
	var err1, err2 error
	rep.BrokenBets, rep.MovedBets, err1 = moveTail(path, rep.KeepBets, stamp)
	rep.BrokenJournal, rep.MovedJournal, err2 = moveTail(path+journalSuffix, rep.KeepJournal, stamp)
	if err := errors.Join(err1, err2, syncDir(filepath.Dir(path))); err != nil {
		return rep, err
	}
	rep.Repaired = true
	return rep, nil
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
	out, err := os.OpenFile(broken, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", 0, err
	}
	n, err := io.Copy(out, io.NewSectionReader(f, keep, size-keep))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = f.Truncate(keep)
	}
	if err == nil {
		err = f.Sync()
	}
	return broken, n, err
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
	sum, _, err := newRowHasher().next(f, end)
	if err != nil {
		return rep, err
	}
	jpath := path + journalSuffix
	if _, err := os.Stat(jpath); err == nil { // a torn journal: keep its bytes too
		if rep.BrokenJournal, rep.MovedJournal, err = moveTail(jpath, 0, stamp); err != nil {
			return rep, err
		}
	}
	base, _ := record{kind: kindBase, flags: flagGroupEnd, end: end, count: uint32(min(rows, 1<<32-1)), digest: sum}.append([]byte(journalMagic), digest{})
	tmp := jpath + ".adopt"
	if err := writeSynced(tmp, base); err != nil {
		return rep, err
	}
	if err := os.Rename(tmp, jpath); err != nil {
		return rep, err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return rep, err
	}
	rep.Adopted, rep.Bets, rep.KeepBets, rep.KeepJournal, rep.Repaired = rows, rows, end, int64(len(base)), true
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

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

func syncDir(dir string) error { return OS{}.SyncDir(dir) }
