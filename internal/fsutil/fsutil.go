// Package fsutil writes files that must survive a crash: the data is synced
// before the file is closed, and the directory is synced separately (SyncDir)
// so that a new name is durable too. storage and pki both need this, and one
// copy keeps them from drifting apart.
package fsutil

import (
	"errors"
	"os"
	"path/filepath"
)

// WriteFileSynced writes data to path, creating it with perm (before the
// umask) or truncating it, and syncs it before closing, so that the data is
// on disk when it returns. A new name is durable only after SyncDir of its
// directory.
func WriteFileSynced(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// CreateSynced creates path holding data with exactly perm (a chmod, not
// subject to the umask) and never replaces a file: the data goes to a synced
// temporary file beside path, which is hard-linked to path and removed. If
// path exists by then the link fails with an error matching fs.ErrExist and
// path is left as it was; a reader never sees path half written. As with
// WriteFileSynced, the name is durable only after SyncDir.
func CreateSynced(path string, data []byte, perm os.FileMode) error {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := fillSynced(tmp, data, perm); err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}

// fillSynced sets f's mode, writes data, syncs and closes f.
func fillSynced(f *os.File, data []byte, perm os.FileMode) error {
	err := f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// SyncDir syncs the directory dir, which makes the names created, renamed or
// removed in it durable: syncing a file does not sync its name.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
