package storage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// upgradeJournal rewrites an older journal as version 3, once, at Open:
// version 1 (no digests) first becomes version 2, computing each batch's
// digest from the rows it covers, so resends of batches stored before the
// upgrade are still told from conflicts; version 2 (no commit headers) is
// verified whole, as version 2 recovery did, and copied under the headers
// of what it proves. Each step writes and syncs the new journal beside the
// old one and renames it into place: a crash leaves one journal or the
// other, whole.
func (s *Store) upgradeJournal(jpath string) error {
	magic, err := s.readMagic(jpath)
	if err != nil || magic != journalMagicV1 && magic != journalMagicV2 {
		return err
	}
	if magic == journalMagicV1 {
		if err := s.rewriteJournal(jpath, s.upgradeV1); err != nil {
			return fmt.Errorf("upgrade journal to version 2: %w", err)
		}
	}
	if err := s.rewriteJournal(jpath, s.upgradeV2); err != nil {
		var damage *DamageError
		if errors.As(err, &damage) {
			return damage
		}
		return fmt.Errorf("upgrade journal to version 3: %w", err)
	}
	return nil
}

// readMagic returns the journal's first bytes ("" when there is none).
func (s *Store) readMagic(jpath string) (string, error) {
	f, err := s.fs.OpenFile(jpath, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	magic := make([]byte, len(journalMagic))
	n, _ := io.ReadFull(f, magic)
	return string(magic[:n]), nil
}

// rewriteJournal writes a new journal with write (from the old journal and
// the bets file), syncs it and renames it over the old one.
func (s *Store) rewriteJournal(jpath string, write func(out io.Writer, old, bets File, oldSize, betsSize int64) error) error {
	old, err := s.fs.OpenFile(jpath, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer old.Close()
	bets, err := s.fs.OpenFile(s.path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer bets.Close()
	oldSize, err1 := fileSize(old)
	betsSize, err2 := fileSize(bets)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	tmp := jpath + ".upgrade"
	out, err := s.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 64<<10)
	err = write(w, old, bets, oldSize, betsSize)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = s.sync(out)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.fs.Rename(tmp, jpath)
	}
	if err == nil && !s.noSync {
		err = s.fs.SyncDir(filepath.Dir(jpath))
	}
	if err != nil {
		s.fs.Remove(tmp) // best effort: the next upgrade truncates it anyway
	}
	return err
}

// upgradeV1 writes the version 2 journal of a version 1 one, reading the
// rows each record covers from bets. Like recovery, it stops at the first
// torn or garbled record (or one pointing past the bets file); the version
// 2 step then cuts the bets file's uncovered tail.
func (s *Store) upgradeV1(out io.Writer, old, bets File, _, _ int64) error {
	jr := bufio.NewReaderSize(io.NewSectionReader(old, int64(len(journalMagicV1)), 1<<62), 64<<10)
	br := bufio.NewReaderSize(bets, 64<<10)
	io.WriteString(out, journalMagicV2)
	var buf [v1RecordSize]byte
	rows := newRowHasher()
	var pos int64
	var chain digest
	var enc []byte
	var group uint16
	for {
		if _, err := io.ReadFull(jr, buf[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return err
		}
		r, ok := parseRecordV1(buf[:])
		if !ok || r.end < pos {
			return nil
		}
		d, _, err := rows.next(br, r.end-pos)
		if err != nil {
			return nil // the record covers bytes that never became durable
		}
		pos = r.end
		if r.kind != kindFinished {
			r.digest = d
		}
		r.flags = flagGroupEnd // each record was synced on its own or with a group: none is torn now
		r.group = group
		group++
		enc, chain = r.append(enc[:0], chain)
		if _, err := out.Write(enc); err != nil {
			return err
		}
	}
}

// upgradeV2 writes the version 3 journal of a version 2 one: its records
// as they are, under the commit header of the longest verified prefix
// (judgeV2). Damage leaves the old journal as it was.
func (s *Store) upgradeV2(out io.Writer, old, bets File, oldSize, betsSize int64) error {
	v := judgeV2(old, s.path+journalSuffix, oldSize, bets, s.path, betsSize)
	if v.damage != nil {
		return v.damage
	}
	return writeV3(out, old, v)
}

// v2Verdict is what a version 2 journal proves: the longest verified
// prefix of whole groups, and the damage before its tail, if any.
type v2Verdict struct {
	kept   fileState // in the version 2 journal's offsets
	gen    uint64
	chain  digest
	state  *journalState
	damage *DamageError
}

// judgeV2 verifies a version 2 journal whole. It says nothing of its
// committed length, so its tail is judged as version 2 recovery judged it:
// whatever follows the last whole group that verifies is a torn last write
// if it is one group at most and no record of a later group follows;
// anything else is damage.
func judgeV2(old io.ReaderAt, jpath string, oldSize int64, bets io.ReaderAt, bpath string, betsSize int64) v2Verdict {
	const start = int64(len(journalMagicV2))
	end := start + max(oldSize-start, 0)/journalRecordSize*journalRecordSize
	sc := newScanner(io.NewSectionReader(old, start, end-start), jpath, scanFrom{off: start},
		io.NewSectionReader(bets, 0, betsSize), bpath, betsSize, true, newJournalState())
	damage := sc.scan(end)
	sc.rollback()
	k := sc.kept
	v := v2Verdict{kept: fileState{journal: k.journal, bets: k.bets, betCount: k.betCount, batches: k.batches, finished: k.finished},
		gen: uint64(k.groups - 1), chain: k.chain, state: sc.st}
	if damage != nil {
		if later := laterGroup(io.NewSectionReader(old, damage.Offset+journalRecordSize, 1<<62), damage.Offset+journalRecordSize, k.group); later != "" {
			damage.What += "; " + later + ", so this is damage, not a torn last write"
			v.damage = damage
			return v
		}
		if slots := (oldSize - k.journal) / journalRecordSize; slots > maxGroupCommits+1 {
			damage.What += fmt.Sprintf("; %d records follow the last verified group, more than one group commit writes", slots)
			v.damage = damage
			return v
		}
	}
	switch tail := betsSize - k.bets; {
	case k.groups == 0:
		v.damage = damagef(jpath, start, "no whole base record: nothing proves the bets")
	case tail > maxTailBytes:
		v.damage = damagef(jpath, k.journal, "the journal ends here but %s has %d bytes past its last record, more than one group commit writes: the journal is shorter than the data it should describe", bpath, tail)
	}
	return v
}

// writeV3 writes the version 3 journal of the prefix a version 2 journal
// proves.
func writeV3(out io.Writer, old io.ReaderAt, v v2Verdict) error {
	const start = int64(len(journalMagicV2))
	st := v.kept
	st.journal = recordsStart + v.kept.journal - start
	blocks := make([]byte, recordsStart)
	copy(blocks, journalMagic)
	copy(blocks[slotOffset(v.gen):], quiescent(v.gen, st, v.chain).encode())
	if _, err := out.Write(blocks); err != nil {
		return err
	}
	_, err := io.Copy(out, io.NewSectionReader(old, start, v.kept.journal-start))
	return err
}

// laterGroup looks through the rest of a version 2 journal (jr is at
// offset from) for proof that the failure before it is not a torn last
// write: a record of a group at least two after the last one kept (kept),
// or a valid group end with anything after it. A crash tears only the last
// group's write, which ends the journal.
func laterGroup(jr io.Reader, from int64, kept uint16) string {
	var buf [journalRecordSize]byte
	jr = bufio.NewReaderSize(jr, 64<<10)
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
