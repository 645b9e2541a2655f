package storage_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"

	"lottery/storage"
)

// errInjected is the error every injected failure returns.
var errInjected = errors.New("injected I/O error")

// errCrashed is what every operation returns once the machine "lost power".
var errCrashed = errors.New("power lost")

// faultFS is a storage.FS over real files that injects failures and
// simulates power loss. Writes and fsyncs are numbered across all files
// from 1; failWrite and failSync pick the one to fail. For power loss it
// tracks, per file, the length known to be durable (the size at its last
// successful fsync) and whether its directory entry is durable (created
// before the last SyncDir); PowerLoss then cuts every real file back to
// what a real disk would be guaranteed to keep, plus possibly a torn
// prefix of what followed, and may delete a file whose entry was not
// durable.
type faultFS struct {
	mu sync.Mutex

	failWrite  int  // fail this write (0: none)
	shortWrite bool // the failed write first writes half its bytes
	failSync   int  // fail this fsync (0: none)
	crashAt    int  // lose power at this operation (write or fsync), 0: never

	writes, syncs, ops int
	syncDirs           []string
	files              map[string]*fileState
	crashed            bool
}

type fileState struct {
	synced       int64 // length known durable
	entryDurable bool  // survives a crash: its directory was synced since creation
	// overwrites are the bytes of the durable length that were written
	// over in place (a journal's commit header) since the last fsync, with
	// what they held before: a power loss may keep the new bytes, the old
	// ones, or a torn mix.
	overwrites []overwrite
}

type overwrite struct {
	off int64
	old []byte
}

func newFaultFS() *faultFS { return &faultFS{files: make(map[string]*fileState)} }

func (fs *faultFS) state(name string) *fileState {
	st, ok := fs.files[name]
	if !ok {
		// A file that existed before this FS saw it is taken as durable.
		st = &fileState{entryDurable: true}
		if fi, err := os.Stat(name); err == nil {
			st.synced = fi.Size()
		}
		fs.files[name] = st
	}
	return st
}

func (fs *faultFS) OpenFile(name string, flag int, perm os.FileMode) (storage.File, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed {
		return nil, errCrashed
	}
	_, statErr := os.Stat(name)
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if errors.Is(statErr, os.ErrNotExist) {
		fs.files[name] = &fileState{}
	} else {
		fs.state(name)
	}
	return &faultFile{fs: fs, name: name, f: f}, nil
}

// SyncDir records the call (there is no real fsync, as in Sync).
func (fs *faultFS) SyncDir(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed {
		return errCrashed
	}
	fs.syncDirs = append(fs.syncDirs, dir)
	for name, st := range fs.files {
		if filepath.Dir(name) == dir {
			st.entryDurable = true
		}
	}
	return nil
}

// Rename renames a real file; the new name's entry is durable only once its
// directory is synced.
func (fs *faultFS) Rename(oldpath, newpath string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed {
		return errCrashed
	}
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	st := fs.state(oldpath)
	delete(fs.files, oldpath)
	fs.files[newpath] = &fileState{synced: st.synced}
	return nil
}

// Remove removes a real file.
func (fs *faultFS) Remove(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed {
		return errCrashed
	}
	delete(fs.files, name)
	return os.Remove(name)
}

// SyncDirs returns the directories synced so far.
func (fs *faultFS) SyncDirs() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.syncDirs...)
}

// tick counts one operation and reports whether power is lost at it.
func (fs *faultFS) tick() bool {
	fs.ops++
	if fs.crashAt > 0 && fs.ops >= fs.crashAt {
		fs.crashed = true
	}
	return fs.crashed
}

// Crash makes every later operation fail, as if the machine had died.
func (fs *faultFS) Crash() {
	fs.mu.Lock()
	fs.crashed = true
	fs.mu.Unlock()
}

// Crashed reports whether power was lost.
func (fs *faultFS) Crashed() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.crashed
}

// PowerLoss applies a crash to the real files: a file whose directory entry
// was never made durable disappears; every other file keeps its durable
// length plus, when torn is not nil, a random prefix of the bytes written
// after it. It returns a description for failure messages.
func (fs *faultFS) PowerLoss(torn *rand.Rand) (string, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.crashed = true
	desc := ""
	for name, st := range fs.files {
		fi, err := os.Stat(name)
		if err != nil {
			continue
		}
		// A file whose directory entry was never synced may vanish, or
		// (the entry reached the disk with other metadata) survive.
		if !st.entryDurable && (torn == nil || torn.IntN(2) == 0) {
			desc += fmt.Sprintf("%s: lost (entry never synced); ", filepath.Base(name))
			if err := os.Remove(name); err != nil {
				return desc, err
			}
			continue
		}
		if err := revertOverwrites(name, st.overwrites, torn); err != nil {
			return desc, err
		}
		if len(st.overwrites) > 0 {
			desc += fmt.Sprintf("%s: %d in-place writes undone or torn; ", filepath.Base(name), len(st.overwrites))
		}
		st.overwrites = nil
		keep := min(st.synced, fi.Size())
		if extra := fi.Size() - keep; extra > 0 && torn != nil {
			keep += torn.Int64N(extra + 1)
		}
		desc += fmt.Sprintf("%s: size %d synced %d kept %d; ", filepath.Base(name), fi.Size(), st.synced, keep)
		if err := os.Truncate(name, keep); err != nil {
			return desc, err
		}
	}
	return desc, nil
}

// revertOverwrites applies a power loss to the in-place writes of a file
// since its last fsync, newest first: each keeps its new bytes, gets its
// old ones back, or keeps a torn prefix of the new ones (torn nil: every
// one is undone, the only state known durable).
func revertOverwrites(name string, ws []overwrite, torn *rand.Rand) error {
	if len(ws) == 0 {
		return nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for i := len(ws) - 1; i >= 0; i-- {
		w := ws[i]
		from := 0 // the first byte that goes back to its old value
		if torn != nil {
			switch torn.IntN(3) {
			case 0:
				continue // the new bytes reached the disk
			case 1:
				from = torn.IntN(len(w.old) + 1)
			}
		}
		if _, err := f.WriteAt(w.old[from:], w.off+int64(from)); err != nil {
			return err
		}
	}
	return nil
}

type faultFile struct {
	fs   *faultFS
	name string
	f    *os.File
}

func (f *faultFile) Read(p []byte) (int, error) { return f.f.Read(p) }

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

func (f *faultFile) Seek(off int64, whence int) (int64, error) { return f.f.Seek(off, whence) }

func (f *faultFile) Stat() (os.FileInfo, error) { return f.f.Stat() }

func (f *faultFile) Close() error { return f.f.Close() }

func (f *faultFile) Write(p []byte) (int, error) {
	fs := f.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed {
		return 0, errCrashed
	}
	if fs.tick() {
		// The bytes reached the page cache, then the power went.
		f.f.Write(p)
		return 0, errCrashed
	}
	fs.writes++
	if fs.writes == fs.failWrite {
		if fs.shortWrite {
			n, _ := f.f.Write(p[:len(p)/2])
			return n, errInjected
		}
		return 0, errInjected
	}
	return f.f.Write(p)
}

// WriteAt writes in place; what it overwrites of the durable length is
// remembered, for PowerLoss to undo.
func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	fs := f.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed {
		return 0, errCrashed
	}
	st := fs.state(f.name)
	if off < st.synced {
		old := make([]byte, min(int64(len(p)), st.synced-off))
		n, _ := f.f.ReadAt(old, off)
		st.overwrites = append(st.overwrites, overwrite{off: off, old: old[:n]})
	}
	if fs.tick() {
		f.f.WriteAt(p, off)
		return 0, errCrashed
	}
	fs.writes++
	if fs.writes == fs.failWrite {
		if fs.shortWrite {
			n, _ := f.f.WriteAt(p[:len(p)/2], off)
			return n, errInjected
		}
		return 0, errInjected
	}
	return f.f.WriteAt(p, off)
}

func (f *faultFile) Sync() error {
	fs := f.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed || fs.tick() {
		return errCrashed
	}
	fs.syncs++
	if fs.syncs == fs.failSync {
		// Like Linux after a failed writeback: the error is reported once,
		// and the dirty data may or may not reach the disk.
		return errInjected
	}
	// The real fsync is skipped: PowerLoss decides what survives from the
	// lengths recorded here, and the tests run many crashes quickly.
	fi, err := f.f.Stat()
	if err != nil {
		return err
	}
	st := fs.state(f.name)
	st.synced, st.overwrites = fi.Size(), nil
	return nil
}

func (f *faultFile) Truncate(size int64) error {
	fs := f.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed {
		return errCrashed
	}
	if err := f.f.Truncate(size); err != nil {
		return err
	}
	// Conservatively, a truncation is durable at once: bytes cut from the
	// durable length are gone.
	st := fs.state(f.name)
	st.synced = min(st.synced, size)
	kept := st.overwrites[:0]
	for _, w := range st.overwrites {
		if w.off < size {
			w.old = w.old[:min(int64(len(w.old)), size-w.off)]
			kept = append(kept, w)
		}
	}
	st.overwrites = kept
	return nil
}

var _ io.ReaderAt = (*faultFile)(nil)
