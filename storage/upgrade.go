package storage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// upgradeJournal rewrites a version 1 journal (no digests) as version 2,
// computing each batch's digest from the rows it covers in the bets file, so
// resends of batches stored before the upgrade are still told from
// conflicts. The new journal is written and synced beside the old one and
// renamed into place: a crash leaves one journal or the other, whole. Like
// recovery, it stops at the first torn or garbled record (or one pointing
// past the bets file); Open then cuts the bets file's uncovered tail.
func (s *Store) upgradeJournal(jpath string) error {
	old, err := s.fs.OpenFile(jpath, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	defer old.Close()
	jr := bufio.NewReaderSize(old, 64<<10)
	magic := make([]byte, len(journalMagicV1))
	if _, err := io.ReadFull(jr, magic); err != nil || string(magic) != journalMagicV1 {
		return nil // not version 1: Open reads it as it is
	}
	bets, err := s.fs.OpenFile(s.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("upgrade journal: %w", err)
	}
	defer bets.Close()
	tmp := jpath + ".upgrade"
	out, err := s.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("upgrade journal: %w", err)
	}
	err = copyUpgraded(out, jr, bufio.NewReaderSize(bets, 64<<10))
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
		return fmt.Errorf("upgrade journal to version 2: %w", err)
	}
	return nil
}

// copyUpgraded writes the version 2 journal of the version 1 records in jr,
// reading the rows each one covers from bets.
func copyUpgraded(out io.Writer, jr, bets io.Reader) error {
	w := bufio.NewWriterSize(out, 64<<10)
	w.WriteString(journalMagic)
	var buf [v1RecordSize]byte
	rows := newRowHasher()
	var pos int64
	var chain digest
	var enc []byte
	var group uint16
	for {
		if _, err := io.ReadFull(jr, buf[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return err
		}
		r, ok := parseRecordV1(buf[:])
		if !ok || r.end < pos {
			break
		}
		d, _, err := rows.next(bets, r.end-pos)
		if err != nil {
			break // the record covers bytes that never became durable
		}
		pos = r.end
		if r.kind != kindFinished {
			r.digest = d
		}
		r.flags = flagGroupEnd // each record was synced on its own or with a group: none is torn now
		r.group = group
		group++
		enc, chain = r.append(enc[:0], chain)
		w.Write(enc)
	}
	return w.Flush()
}
