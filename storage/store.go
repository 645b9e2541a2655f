// Package storage keeps the bets: the course's bets file (an append-only
// CSV, see csvrow) plus a small journal beside it that records which batches
// are committed. One writer goroutine owns both files: it gathers the batches
// that arrive while the previous group is being synced, writes each group
// with one write, makes it durable with one fsync per file (group commit),
// and only then completes the group's commits, so an acknowledged batch is
// always on disk. docs/durability.md explains the guarantees.
package storage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"lottery"
	"lottery/csvrow"
)

// ErrClosed is returned for work submitted to a closed store.
var ErrClosed = lottery.Errorf(lottery.EShuttingDown, "storage closed")

// Limits of the writer.
const (
	// queueSize is how many commits may wait for the writer; senders block
	// beyond it, which is the back-pressure on agencies.
	queueSize = 1024
	// maxGroupBytes bounds one group's write so a burst never needs an
	// unbounded buffer.
	maxGroupBytes = 4 << 20
)

// Options configure a Store. The zero value is durable on the real disk.
type Options struct {
	// FS is the file system; nil means the real one.
	FS FS
	// NoSync skips every fsync: faster, but an acknowledged batch can be
	// lost in a power cut. For benchmarks that show what durability costs.
	NoSync bool
}

// Recovery tells what Open found and repaired.
type Recovery struct {
	Bets         int64 // bets in the file after recovery
	Batches      int   // committed batches in the journal
	Finished     int   // agencies that had finished
	CutBetsBytes int64 // uncommitted or torn bytes cut from the bets file
	CutJournal   int64 // torn bytes cut from the journal
	Adopted      bool  // the bets file had no journal and was adopted whole
}

// Commit is a batch or a "finished" mark on its way to disk. Done is closed
// once it is durable or failed; then Err and Duplicate can be read.
type Commit struct {
	done chan struct{}
	// Err is nil once the commit is durable; otherwise a *lottery.Error.
	Err error
	// Duplicate is set when the batch (or finish) was already stored: it
	// was acknowledged before and is not stored again.
	Duplicate bool

	kind   recordKind
	agency uint32
	seq    uint64
	count  int
	rows   []byte
	digest digest
}

// Done is closed when the commit has completed.
func (c *Commit) Done() <-chan struct{} { return c.done }

// Wait blocks until the commit has completed and returns its error.
func (c *Commit) Wait() error { <-c.done; return c.Err }

func (c *Commit) complete(err error) {
	c.Err = err
	c.rows = nil
	close(c.done)
}

// Store is the durable bets file and its journal.
type Store struct {
	fs      FS
	path    string
	bets    File
	journal File
	noSync  bool

	// sendMu lets Close wait for senders to leave before it closes queue.
	sendMu sync.RWMutex
	closed bool
	queue  chan *Commit
	exited chan struct{} // closed when the writer goroutine returns

	// mu guards the committed state below, written only by the writer.
	mu       sync.Mutex
	size     int64             // committed length of the bets file
	bets64   int64             // committed bets
	lastSeq  map[uint32]uint64 // last committed batch per agency
	finished map[uint32]uint64 // agencies finished, with their last batch

	// digests holds, per agency, the first 8 bytes of every batch's digest
	// (index seq-1), to tell a resend from a conflict. Writer-owned; 8
	// bytes a batch (0.8 MB for 10 M bets in batches of 100).
	digests map[uint32][]uint64

	journalSize int64 // writer-owned
	fsyncs      atomic.Int64
	failed      chan struct{} // closed on a failure that stops all writing
	failErr     atomic.Pointer[error]
	closeErr    error
}

// Open opens (creating if needed) the bets file at path and its journal,
// repairs a torn or uncommitted tail, and starts the writer.
func Open(path string, opt Options) (*Store, Recovery, error) {
	fsys := opt.FS
	if fsys == nil {
		fsys = OS{}
	}
	s := &Store{
		fs: fsys, path: path, noSync: opt.NoSync,
		queue: make(chan *Commit, queueSize), exited: make(chan struct{}), failed: make(chan struct{}),
		lastSeq: make(map[uint32]uint64), finished: make(map[uint32]uint64),
		digests: make(map[uint32][]uint64),
	}
	rec, err := s.open()
	if err != nil {
		s.closeFiles()
		return nil, Recovery{}, err
	}
	go s.run()
	return s, rec, nil
}

func (s *Store) open() (Recovery, error) {
	var rec Recovery
	_, statErr := os.Stat(s.path)
	created := errors.Is(statErr, os.ErrNotExist)
	var err error
	if s.bets, err = s.fs.OpenFile(s.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
		return rec, fmt.Errorf("open bets file: %w", err)
	}
	// The lock is on the bets file itself: a second central reaching the
	// same file under another (hard-linked) name is refused too.
	if err := lock(s.bets); err != nil {
		return rec, fmt.Errorf("%s: %w", s.path, err)
	}
	jpath := s.path + journalSuffix
	if err := s.upgradeJournal(jpath); err != nil {
		return rec, err
	}
	if s.journal, err = s.fs.OpenFile(jpath, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
		return rec, fmt.Errorf("open journal: %w", err)
	}
	betsSize, err := fileSize(s.bets)
	if err != nil {
		return rec, err
	}
	jsize, err := fileSize(s.journal)
	if err != nil {
		return rec, err
	}
	// The journal is read as a stream: it grows with the batches stored, and
	// the central's memory must not.
	jr := bufio.NewReaderSize(s.journal, 64<<10)
	head := make([]byte, len(journalMagic)+journalRecordSize) // the magic and the first record
	n, err := io.ReadFull(jr, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return rec, fmt.Errorf("read journal: %w", err)
	}
	magic := head[:min(n, len(journalMagic))]
	// A journal always starts with a base record, written and synced before
	// any batch: one without a complete first record was torn while being
	// created, before it covered any batch of ours.
	started := n == len(head) && string(magic) == journalMagic
	if started {
		_, started = parseRecord(head[len(journalMagic):])
	}
	var fresh []byte // what a new journal starts with
	end := int64(0)
	switch {
	case !started && bytes.HasPrefix([]byte(journalMagic), magic):
		// A new journal, or one torn before its base record was synced.
		rec.CutJournal = jsize
		if betsSize > 0 {
			// A bets file written by someone else (the course's Python),
			// or one whose adoption a crash interrupted: adopt its
			// complete rows as one committed base.
			end, rec.Bets, err = s.adopt(betsSize)
			if err != nil {
				return rec, err
			}
			rec.Adopted = true
		}
		fresh = record{kind: kindBase, end: end, count: uint32(min(rec.Bets, 1<<32-1))}.append([]byte(journalMagic))
	case string(magic) != journalMagic:
		return rec, fmt.Errorf("%s is not a bets journal (bad magic); refusing to touch it", jpath)
	default:
		off := int64(len(journalMagic))
		records := io.MultiReader(bytes.NewReader(head[len(journalMagic):]), jr)
		var buf [journalRecordSize]byte
		for ; ; off += journalRecordSize {
			if _, err := io.ReadFull(records, buf[:]); err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					break
				}
				return rec, fmt.Errorf("read journal: %w", err)
			}
			r, ok := parseRecord(buf[:])
			if !ok || r.end < end || r.end > betsSize {
				break // torn, garbled, or pointing at bytes that never became durable
			}
			if r.kind == kindBatch && r.seq != s.lastSeq[r.agency]+1 {
				break // sequences grow by one: this is garbage that passed the CRC
			}
			switch r.kind {
			case kindBatch:
				s.lastSeq[r.agency] = r.seq
				s.digests[r.agency] = append(s.digests[r.agency], r.digest.prefix())
				rec.Batches++
				rec.Bets += int64(r.count)
			case kindFinished:
				s.finished[r.agency] = r.seq
			case kindBase:
				rec.Bets += int64(r.count)
			}
			end = r.end
		}
		if rec.CutJournal = jsize - off; rec.CutJournal > 0 {
			if err := s.journal.Truncate(off); err != nil {
				return rec, fmt.Errorf("truncate journal: %w", err)
			}
		}
		s.journalSize = off
	}
	if end < betsSize {
		rec.CutBetsBytes = betsSize - end
		if err := s.bets.Truncate(end); err != nil {
			return rec, fmt.Errorf("truncate bets file: %w", err)
		}
	}
	if fresh != nil {
		if rec.CutJournal > 0 {
			if err := s.journal.Truncate(0); err != nil {
				return rec, fmt.Errorf("truncate journal: %w", err)
			}
		}
		if _, err := s.journal.Write(fresh); err != nil {
			return rec, fmt.Errorf("write journal: %w", err)
		}
		s.journalSize = int64(len(fresh))
	}
	if err := s.sync(s.bets); err != nil {
		return rec, fmt.Errorf("sync bets file: %w", err)
	}
	if err := s.sync(s.journal); err != nil {
		return rec, fmt.Errorf("sync journal: %w", err)
	}
	if created || fresh != nil {
		if err := s.fs.SyncDir(filepath.Dir(s.path)); err != nil && !s.noSync {
			return rec, fmt.Errorf("sync directory: %w", err)
		}
	}
	s.size, s.bets64 = end, rec.Bets
	rec.Finished = len(s.finished)
	return rec, nil
}

// adopt finds the end of the last complete row of a bets file that has no
// journal and counts its rows.
func (s *Store) adopt(size int64) (end, rows int64, err error) {
	f, err := s.fs.OpenFile(s.path, os.O_RDONLY, 0)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := csvrow.NewReader(f, scanBufferSize)
	for {
		fields, err := r.Read()
		if err == io.EOF {
			return end, rows, nil
		}
		if err != nil && !errors.Is(err, csvrow.ErrQuote) {
			return 0, 0, fmt.Errorf("adopt bets file: %w", err)
		}
		if r.Offset() > size {
			return end, rows, nil
		}
		if len(fields) > 0 && r.Offset() > end && endsLine(f, r.Offset()) {
			end = r.Offset()
			rows++
		}
	}
}

// endsLine reports whether the byte before off is a line feed: a last row
// without one may be torn.
func endsLine(f File, off int64) bool {
	ra, ok := f.(io.ReaderAt)
	if !ok {
		return true
	}
	var b [1]byte
	_, err := ra.ReadAt(b[:], off-1)
	return err == nil && b[0] == '\n'
}

func fileSize(f File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (s *Store) sync(f File) error {
	if s.noSync {
		return nil
	}
	s.fsyncs.Add(1)
	return f.Sync()
}

// Append submits a batch of count bets, already encoded as bets file rows,
// as batch number seq of the agency. The store owns rows from now on.
// Sequence numbers start at 1 and grow by one per batch: a batch already
// stored with the same rows completes as a Duplicate without being stored
// again, one already stored with other rows fails with EConflict, and one
// after a gap fails with ESequence.
func (s *Store) Append(agency uint32, seq uint64, count int, rows []byte) *Commit {
	// Hashed here, in the caller's goroutine: sessions hash in parallel
	// and the single writer only compares.
	return s.submit(&Commit{kind: kindBatch, agency: agency, seq: seq, count: count, rows: rows, digest: digestOf(rows)})
}

// Finish durably marks the agency finished after its batch lastSeq, which
// must be the last one stored. Finishing twice after the same batch
// completes as a Duplicate; after another batch, it fails with EConflict.
func (s *Store) Finish(agency uint32, lastSeq uint64) *Commit {
	return s.submit(&Commit{kind: kindFinished, agency: agency, seq: lastSeq})
}

func (s *Store) submit(c *Commit) *Commit {
	c.done = make(chan struct{})
	s.sendMu.RLock()
	defer s.sendMu.RUnlock()
	if s.closed {
		c.complete(ErrClosed)
		return c
	}
	s.queue <- c
	return c
}

// LastSeq returns the last batch sequence committed for the agency (0 for
// none).
func (s *Store) LastSeq(agency uint32) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeq[agency]
}

// Finished returns the agencies durably marked finished.
func (s *Store) Finished() []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint32, 0, len(s.finished))
	for a := range s.finished {
		out = append(out, a)
	}
	return out
}

// Stats are counters for logs and benchmarks.
type Stats struct {
	Bets   int64 // committed bets
	Size   int64 // committed bytes of the bets file
	Fsyncs int64 // fsync calls made
}

// Stats returns the current counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Bets: s.bets64, Size: s.size, Fsyncs: s.fsyncs.Load()}
}

// Failed is closed when a failure (a failed fsync, or a write that could not
// be undone) has stopped all writing: the central should stop, and recovery
// at the next Open repairs the files.
func (s *Store) Failed() <-chan struct{} { return s.failed }

// Err returns the failure that closed Failed, or nil.
func (s *Store) Err() error {
	if p := s.failErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Path returns the bets file's path.
func (s *Store) Path() string { return s.path }

// Close lets the writer finish every commit already submitted, then closes
// both files. It is safe to call more than once.
func (s *Store) Close() error {
	s.sendMu.Lock()
	if s.closed {
		s.sendMu.Unlock()
		<-s.exited
		return s.closeErr
	}
	s.closed = true
	close(s.queue)
	s.sendMu.Unlock()
	<-s.exited
	s.closeErr = s.closeFiles()
	return s.closeErr
}

func (s *Store) closeFiles() error {
	var errs []error
	for _, f := range []File{s.bets, s.journal} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// run is the writer goroutine: it takes every commit waiting in the queue
// as one group and commits the group with one write and one fsync per file.
func (s *Store) run() {
	defer close(s.exited)
	w := groupWriter{s: s}
	for c := range s.queue {
		group, size := append(w.group[:0], c), len(c.rows)
	gather:
		for size < maxGroupBytes {
			select {
			case c, ok := <-s.queue:
				if !ok {
					break gather
				}
				group = append(group, c)
				size += len(c.rows)
			default:
				break gather
			}
		}
		w.group = group
		w.commit()
	}
}
