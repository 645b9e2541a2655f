package storage

import (
	"io"
	"os"

	"lottery/internal/fsutil"
)

// File is exactly what the store uses of an open file: reading it at
// offsets (the tail check, the background index and verification, the
// draw), appending rows to the bets file, writing journal records and
// commit headers at their offsets, syncing, cutting back, its size,
// closing. *os.File implements it; tests wrap it to inject failed writes
// and fsyncs and to drop unsynced data as a power cut would (raft-wal's vfs
// is the model).
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Closer
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
}

// FS opens files and makes directory entries durable.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// SyncDir fsyncs a directory, so a file created in it survives a crash.
	SyncDir(dir string) error
	// Rename replaces newpath with oldpath atomically (journal upgrade,
	// snapshot restore).
	Rename(oldpath, newpath string) error
	// Remove deletes a file (a finished restore's marker).
	Remove(name string) error
}

// OS is the real file system.
type OS struct{}

// OpenFile implements FS with os.OpenFile.
func (OS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	return os.OpenFile(name, flag, perm)
}

// Rename implements FS with os.Rename.
func (OS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove implements FS with os.Remove.
func (OS) Remove(name string) error { return os.Remove(name) }

// SyncDir implements FS.
func (OS) SyncDir(dir string) error { return fsutil.SyncDir(dir) }
