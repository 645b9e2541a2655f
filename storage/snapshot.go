package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// A snapshot is the store's two files as they were after one group: both
// only ever grow, so their committed prefixes stay valid while the store
// goes on writing, and copying them needs no lock. A replicated central
// sends one to a node that is too far behind to catch up from the log (a
// node whose disk was wiped). On the wire: the magic, the two lengths, then
// the bets file's bytes and the journal's.
const snapshotMagic = "LOTSNAP1"

// maxSnapshotFile bounds what a received snapshot may claim, so a corrupt
// header cannot make the receiver write without end (1 TiB).
const maxSnapshotFile = 1 << 40

// Snapshot is the committed state of a store at one instant.
type Snapshot struct {
	fs          FS
	path        string
	bets        int64 // committed length of the bets file
	journal     int64 // committed length of the journal
	storedBets  int64
	lastBatches int
}

// Snapshot returns the store's committed state now. Writing it (WriteTo)
// may run while the store takes more batches.
func (s *Store) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Snapshot{fs: s.fs, path: s.path, bets: s.size, journal: s.committedJournal, storedBets: s.storedBets}
}

// Bets returns how many bets the snapshot holds.
func (p Snapshot) Bets() int64 { return p.storedBets }

// WriteTo writes the snapshot: the header, then the committed prefix of the
// bets file and of the journal, read through their own handles.
func (p Snapshot) WriteTo(w io.Writer) (int64, error) {
	hdr := make([]byte, 0, len(snapshotMagic)+16)
	hdr = append(hdr, snapshotMagic...)
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(p.bets))
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(p.journal))
	n, err := w.Write(hdr)
	total := int64(n)
	if err != nil {
		return total, err
	}
	for _, part := range []struct {
		path string
		size int64
	}{{p.path, p.bets}, {p.path + journalSuffix, p.journal}} {
		m, err := copyPrefix(w, p.fs, part.path, part.size)
		total += m
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func copyPrefix(w io.Writer, fsys FS, path string, size int64) (int64, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err == nil && n < size {
		err = fmt.Errorf("%s: %w: %d bytes of %d", path, io.ErrUnexpectedEOF, n, size)
	}
	return n, err
}

// ErrBadSnapshot means a received snapshot is not one WriteTo wrote.
var ErrBadSnapshot = errors.New("storage: not a bets snapshot")

// RestoreSnapshot replaces the bets file at path and its journal with a
// snapshot read from r. The store on path must be closed. Both files are
// written beside their targets, fsynced, and renamed over them; Open then
// verifies them as after any restart, so a snapshot that does not verify
// is refused there and never served.
func RestoreSnapshot(path string, r io.Reader, opt Options) error {
	fsys := opt.FS
	if fsys == nil {
		fsys = OS{}
	}
	hdr := make([]byte, len(snapshotMagic)+16)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return fmt.Errorf("%w: header: %v", ErrBadSnapshot, err)
	}
	if string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		return fmt.Errorf("%w: bad magic", ErrBadSnapshot)
	}
	sizes := [2]uint64{binary.BigEndian.Uint64(hdr[8:]), binary.BigEndian.Uint64(hdr[16:])}
	targets := [2]string{path, path + journalSuffix}
	for i, target := range targets {
		if sizes[i] > maxSnapshotFile {
			return fmt.Errorf("%w: a file of %d bytes", ErrBadSnapshot, sizes[i])
		}
		if err := copySynced(fsys, target+".restore", io.LimitReader(r, int64(sizes[i])), int64(sizes[i]), opt.NoSync); err != nil {
			for _, t := range targets {
				os.Remove(t + ".restore") // best effort: a later restore truncates it anyway
			}
			return err
		}
	}
	// The journal goes first: a crash between the renames leaves the new
	// journal over the old bets file, which Open refuses as damage rather
	// than serving a mix.
	for _, i := range []int{1, 0} {
		if err := fsys.Rename(targets[i]+".restore", targets[i]); err != nil {
			return err
		}
	}
	if opt.NoSync {
		return nil
	}
	return fsys.SyncDir(filepath.Dir(path))
}

func copySynced(fsys FS, path string, r io.Reader, size int64, noSync bool) error {
	f, err := fsys.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
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
