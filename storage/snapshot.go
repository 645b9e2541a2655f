package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// A snapshot is the store's committed state at one instant: the bets file
// and the journal's records both only ever grow, so their committed
// prefixes stay valid while the store goes on writing, and copying them
// needs no lock. A replicated central sends one to a node that is too far
// behind to catch up from the log (a node whose disk was wiped). On the
// wire: the magic, the state (generation, the five lengths and counts, the
// last record's chain), then the bets file's bytes and the journal's
// records. The receiver writes the commit header itself.
const (
	snapshotMagic = "LOTSNAP2"
	// snapshotMagicV1 is the format of version 2 journals: the raw
	// prefixes of both files. Restored as it is, then upgraded by Open.
	snapshotMagicV1 = "LOTSNAP1"
	snapshotHeader  = len(snapshotMagic) + 8 + 5*8 + digestSize
)

// maxSnapshotFile bounds what a received snapshot may claim, so a corrupt
// header cannot make the receiver write without end (1 TiB).
const maxSnapshotFile = 1 << 40

// Snapshot is the committed state of a store at one instant.
type Snapshot struct {
	fs    FS
	path  string
	state fileState
	gen   uint64
	chain digest
}

// Snapshot returns the store's committed state now. Writing it (WriteTo)
// may run while the store takes more batches.
func (s *Store) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Snapshot{fs: s.fs, path: s.path, state: s.committed, gen: s.gen, chain: s.chain}
}

// Bets returns how many bets the snapshot holds.
func (p Snapshot) Bets() int64 { return p.state.betCount }

// WriteTo writes the snapshot: the header, then the committed prefix of the
// bets file and the journal's committed records, read through their own
// handles.
func (p Snapshot) WriteTo(w io.Writer) (int64, error) {
	hdr := make([]byte, 0, snapshotHeader)
	hdr = append(hdr, snapshotMagic...)
	hdr = binary.BigEndian.AppendUint64(hdr, p.gen)
	st := p.state
	for _, v := range []int64{st.journal, st.bets, st.betCount, st.batches, st.finished} {
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(v))
	}
	hdr = append(hdr, p.chain[:]...)
	n, err := w.Write(hdr)
	total := int64(n)
	if err != nil {
		return total, err
	}
	for _, part := range []struct {
		path      string
		from, end int64
	}{{p.path, 0, st.bets}, {p.path + journalSuffix, recordsStart, st.journal}} {
		m, err := copyRange(w, p.fs, part.path, part.from, part.end)
		total += m
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func copyRange(w io.Writer, fsys FS, path string, from, end int64) (int64, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.Copy(w, io.NewSectionReader(f, from, end-from))
	if err == nil && n < end-from {
		err = fmt.Errorf("%s: %w: %d bytes of %d", path, io.ErrUnexpectedEOF, n, end-from)
	}
	return n, err
}

// ErrBadSnapshot means a received snapshot is not one WriteTo wrote, or
// does not verify.
var ErrBadSnapshot = errors.New("storage: not a bets snapshot")

// restoreMarker is created once both files of a restore are durable beside
// their targets: from then on the restore is committed, and a crash in the
// middle of the renames is finished by the next Open (finishRestore).
const restoreMarker = ".restoring"

// restoreSuffix names the files of a restore, written beside their
// targets.
const restoreSuffix = ".restore"

// RestoreSnapshot replaces the bets file at path and its journal with a
// snapshot read from r. The store on path must be closed. Both files are
// written beside their targets and fsynced, verified whole (a snapshot
// that does not prove itself is refused and the old files stay), and only
// then put in place: a marker file commits the restore, the two renames
// follow, and a crash between them is finished by the next Open.
func RestoreSnapshot(path string, r io.Reader, opt Options) error {
	fsys := opt.FS
	if fsys == nil {
		fsys = OS{}
	}
	targets := [2]string{path + journalSuffix, path}
	err := writeRestore(fsys, path, r, opt.NoSync)
	if err != nil {
		for _, t := range targets {
			fsys.Remove(t + restoreSuffix) // best effort: a later restore truncates it anyway
		}
		return err
	}
	dir := filepath.Dir(path)
	syncDir := func() error {
		if opt.NoSync {
			return nil
		}
		return fsys.SyncDir(dir)
	}
	if err := syncDir(); err != nil {
		return err
	}
	marker, err := fsys.OpenFile(path+restoreMarker, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := marker.Close(); err != nil {
		return err
	}
	if err := syncDir(); err != nil {
		return err
	}
	return finishRestore(fsys, path)
}

// writeRestore writes the snapshot in r beside both targets, synced, and
// verifies it.
func writeRestore(fsys FS, path string, r io.Reader, noSync bool) error {
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(r, magic); err != nil {
		return fmt.Errorf("%w: header: %v", ErrBadSnapshot, err)
	}
	switch string(magic) {
	case snapshotMagicV1:
		return writeRestoreV1(fsys, path, r, noSync)
	case snapshotMagic:
	default:
		return fmt.Errorf("%w: bad magic", ErrBadSnapshot)
	}
	hdr := make([]byte, snapshotHeader-len(snapshotMagic))
	if _, err := io.ReadFull(r, hdr); err != nil {
		return fmt.Errorf("%w: header: %v", ErrBadSnapshot, err)
	}
	gen := binary.BigEndian.Uint64(hdr)
	var v [5]int64
	for i := range v {
		v[i] = int64(binary.BigEndian.Uint64(hdr[8+8*i:]))
	}
	st := fileState{journal: v[0], bets: v[1], betCount: v[2], batches: v[3], finished: v[4]}
	var chain digest
	copy(chain[:], hdr[48:])
	if !st.valid() || st.journal < recordsStart+journalRecordSize || st.bets > maxSnapshotFile || st.journal > maxSnapshotFile {
		return fmt.Errorf("%w: a state of %s", ErrBadSnapshot, st)
	}
	blocks := make([]byte, recordsStart)
	copy(blocks, journalMagic)
	copy(blocks[slotOffset(gen):], quiescent(gen, st, chain).encode())
	betsTmp, journalTmp := path+restoreSuffix, path+journalSuffix+restoreSuffix
	if err := copySynced(fsys, betsTmp, nil, r, st.bets, noSync); err != nil {
		return err
	}
	if err := copySynced(fsys, journalTmp, blocks, r, st.journal-recordsStart, noSync); err != nil {
		return err
	}
	return verifyRestore(fsys, betsTmp, journalTmp, path)
}

// writeRestoreV1 writes a snapshot of the old format as it is: two raw
// prefixes (Open upgrades the journal).
func writeRestoreV1(fsys FS, path string, r io.Reader, noSync bool) error {
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return fmt.Errorf("%w: header: %v", ErrBadSnapshot, err)
	}
	for i, target := range []string{path, path + journalSuffix} {
		size := binary.BigEndian.Uint64(hdr[8*i:])
		if size > maxSnapshotFile {
			return fmt.Errorf("%w: a file of %d bytes", ErrBadSnapshot, size)
		}
		if err := copySynced(fsys, target+restoreSuffix, nil, r, int64(size), noSync); err != nil {
			return err
		}
	}
	return nil
}

// verifyRestore checks a restored pair whole before it replaces the
// files at path.
func verifyRestore(fsys FS, betsTmp, journalTmp, path string) error {
	var files [2]File
	var sizes [2]int64
	for i, name := range []string{journalTmp, betsTmp} {
		f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		if sizes[i], err = fileSize(f); err != nil {
			return err
		}
		files[i] = f
	}
	fc := checkFiles(files[0], path+journalSuffix, sizes[0], files[1], path, sizes[1])
	if fc.damage != nil {
		return fmt.Errorf("%w: %v", ErrBadSnapshot, fc.damage)
	}
	return nil
}

// finishRestore completes a committed restore: each file still beside its
// target is renamed into place, then the marker goes. Without a marker, a
// restore that did not commit leaves its files behind: they are removed.
func finishRestore(fsys FS, path string) error {
	targets := [2]string{path + journalSuffix, path}
	f, err := fsys.OpenFile(path+restoreMarker, os.O_RDONLY, 0)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		for _, t := range targets {
			fsys.Remove(t + restoreSuffix) // best effort: an uncommitted restore
		}
		return nil
	}
	f.Close()
	for _, t := range targets {
		err := fsys.Rename(t+restoreSuffix, t)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("finish the restore of %s: %w", t, err)
		}
	}
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return err
	}
	if err := fsys.Remove(path + restoreMarker); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(path))
}

// copySynced writes head then size bytes of r to a new file at path, and
// syncs it.
func copySynced(fsys FS, path string, head []byte, r io.Reader, size int64, noSync bool) error {
	f, err := fsys.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(head)
	var n int64
	if err == nil {
		n, err = io.Copy(f, io.LimitReader(r, size))
	}
	if err == nil && n < size {
		err = fmt.Errorf("%w: %s: %d bytes of %d", ErrBadSnapshot, path, n, size)
	}
	if err == nil && !noSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
