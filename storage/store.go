// Package storage keeps the bets: the course's bets file (an append-only
// CSV, see csvrow) plus a small journal beside it that records which batches
// are committed. One writer goroutine owns both files: it gathers the batches
// that arrive while the previous group is being synced, writes each group
// with one write, makes it durable with one fsync per file (group commit),
// and only then completes the group's commits, so an acknowledged batch is
// always on disk. docs/durability.md explains the guarantees.
package storage

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"lottery"
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
	// NoSync skips every fsync, of the files and of their directory:
	// faster, but an acknowledged batch can be lost in a power cut. For
	// benchmarks that show what durability costs.
	NoSync bool
	// OnSync, if set, is told how long each group commit's fsyncs took
	// (the bets file's and the journal's, made at once): the operator's
	// fsync latency (metrics.Lottery.Fsync). It runs in the writer
	// goroutine, between a group's fsync and its acks, so it must return
	// at once. Never called with NoSync, which makes no fsync.
	OnSync func(time.Duration)
}

// Recovery tells what Open found and repaired.
type Recovery struct {
	Bets         int64 // bets in the file after recovery
	Batches      int   // committed batches in the journal
	Finished     int   // agencies that had finished
	CutBetsBytes int64 // uncommitted or torn bytes cut from the bets file
	CutJournal   int64 // torn bytes cut from the journal
	// ReadBytes is what Open read of both files before it returned: the
	// headers, the last group and the last rows, whatever the files hold.
	ReadBytes int64
	// RolledBack: the newest group's header was on disk but its records or
	// rows were not all (a crash before its fsync returned): the group was
	// rolled back, its bytes counted in the cuts.
	RolledBack bool
}

// request is a commit on its way through the writer: what to write, and
// the caller's future, completed once the group it is in is durable.
type request struct {
	*lottery.Commit
	kind   recordKind
	agency uint32
	seq    uint64
	count  int
	rows   []byte
	full   [32]byte // SHA-256 of rows: the audit leaf's, truncated in the journal
	// Set by the writer: refused on the request's own merits, or a
	// resend of a batch (or finish) already stored; and its leaf.
	err       error
	duplicate bool
	leaf      int64
}

// complete settles the caller's future; the rows are no longer needed.
func (r *request) complete(err error) {
	r.rows = nil
	r.Settle(err, r.duplicate)
}

// A store is the single central's ledger.
var _ lottery.Ledger = (*Store)(nil)

// Store is the durable bets file and its journal.
type Store struct {
	fs      FS
	path    string
	bets    File
	journal File
	noSync  bool
	onSync  func(time.Duration) // Options.OnSync

	// sendMu lets Close wait for senders to leave before it closes queue.
	sendMu sync.RWMutex
	closed bool
	queue  chan *request
	exited chan struct{} // closed when the writer goroutine returns

	// ready is closed once the journal is indexed (lastSeq, finished and
	// digests rebuilt) and the unacknowledged tail cut: the writer then
	// takes commits. verified is closed once the background verification
	// has proven every byte the files held at Open. stop, closed by Close,
	// ends that verification early; verifyDone is closed when it returns.
	ready      chan struct{}
	verified   chan struct{}
	stop       chan struct{}
	verifyDone chan struct{}
	// tail is what Open found, for the writer to act on once indexed.
	tail tailVerdict

	// mu guards the committed state below, written only by the writer
	// (which reads it without mu).
	mu         sync.Mutex
	committed  fileState         // both files after the last durable group
	gen        uint64            // generation of that group
	chain      digest            // chain of its last record
	lastSeq    map[uint32]uint64 // last committed batch per agency
	finished   map[uint32]finish // agencies finished, with their last batch
	agencyBets map[uint32]int64  // bets committed per agency
	// digests holds, per agency, the full SHA-256 of every batch's rows
	// (index seq-1), for the draw statement's salts: those of the batches
	// stored at Open are filled in by the verification (which reads them
	// whole), before the others stored since.
	digests map[uint32][][32]byte
	root    tlog.Hash // the audit log's root after the last group
	// commitment is the committed mode's record 1, nil without one.
	commitment *[32]byte

	// batches holds, per agency, what tells a resend from a conflict and
	// its leaf (index seq-1). Writer-owned.
	batches map[uint32][]batch

	// tree is the audit log's Merkle tree (bets.csv.tlog).
	tree *tree
	tlog File

	fsyncs    atomic.Int64
	failed    chan struct{} // closed on a failure that stops all writing
	failErr   atomic.Pointer[error]
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the bets file at path and its journal,
// checks the one group a crash can have torn, and starts the writer. It
// reads a bounded amount whatever the files hold: the rest of the journal
// is indexed, and the rest of both files verified, in the background
// (Ready, Verified); damage found there stops the store (Failed, Err) as
// it would have refused Open.
func Open(path string, opt Options) (*Store, Recovery, error) {
	fsys := opt.FS
	if fsys == nil {
		fsys = OS{}
	}
	s := &Store{
		fs: fsys, path: path, noSync: opt.NoSync, onSync: opt.OnSync,
		queue: make(chan *request, queueSize), exited: make(chan struct{}), failed: make(chan struct{}),
		ready: make(chan struct{}), verified: make(chan struct{}), stop: make(chan struct{}), verifyDone: make(chan struct{}),
		lastSeq: make(map[uint32]uint64), finished: make(map[uint32]finish), agencyBets: make(map[uint32]int64),
		digests: make(map[uint32][][32]byte), batches: make(map[uint32][]batch),
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
	jpath := s.path + journalSuffix
	betsSize, jsize, created, err := s.openFiles(jpath)
	if err != nil {
		return rec, err
	}
	fresh := jsize < recordsStart+journalRecordSize
	if fresh && jsize >= int64(len(journalMagic)) && betsSize > 0 {
		// A journal is created whole (blocks, header, base record: one
		// write, one fsync) before any row: one that ends inside its
		// blocks next to rows was cut, and adopting the rows would forget
		// every batch's sequence number.
		return rec, cutShort(jpath, jsize)
	}
	if !fresh {
		journal, bets := &countingReader{r: s.journal}, &countingReader{r: s.bets}
		tv, damage := checkTail(journal, jpath, jsize, bets, s.path, betsSize)
		rec.ReadBytes = journal.n + bets.n
		if damage != nil {
			return rec, damage
		}
		// A rolled-back base group: the journal's creation was torn.
		fresh = tv.committed.journal == recordsStart
		s.tail = tv
	}
	if fresh {
		if err := s.startOver(jpath, betsSize); err != nil {
			return rec, err
		}
		rec.CutJournal = jsize
	}
	if err := s.openTree(fresh); err != nil {
		return rec, err
	}
	if (created || fresh) && !s.noSync {
		if err := s.fs.SyncDir(filepath.Dir(s.path)); err != nil {
			return rec, fmt.Errorf("sync directory: %w", err)
		}
	}
	c := s.tail.committed
	s.committed, s.gen, s.chain = c, s.tail.gen, s.tail.chain
	s.commitment = s.peekCommitment()
	rec.Bets, rec.Batches, rec.Finished = c.betCount, int(c.batches), int(c.finished)
	rec.RolledBack = s.tail.rolledBack
	rec.CutBetsBytes, rec.CutJournal = s.tail.cutBets, max(rec.CutJournal, s.tail.cutJournal)
	return rec, nil
}

// openFiles finishes an interrupted restore, checks that the two files
// exist together, opens and locks the bets file, upgrades an older journal
// and opens it. A refused start must leave no trace: nothing is created
// before the files are known to fit together.
func (s *Store) openFiles(jpath string) (betsSize, jsize int64, created bool, err error) {
	if err := finishRestore(s.fs, s.path); err != nil {
		return 0, 0, false, err
	}
	betsSize, betsExists := s.sizeOf(s.path)
	journalSize, journalExists := s.sizeOf(jpath)
	switch {
	case !betsExists && journalSize > recordsStart+journalRecordSize:
		// More than a base record: it committed rows. (A new store may lose
		// either new file's entry in a crash before its directory sync.)
		return 0, 0, false, &DamageError{File: s.path, Offset: 0, What: fmt.Sprintf("missing, but its journal %s (%d bytes) describes it", jpath, journalSize)}
	case !journalExists && betsSize > 0:
		return 0, 0, false, noJournal(jpath, betsSize)
	}
	if betsSize, created, err = s.openBets(); err != nil {
		return 0, 0, false, err
	}
	if err := s.upgradeJournal(jpath); err != nil {
		return 0, 0, false, err
	}
	jsize, err = s.openJournal(jpath)
	return betsSize, jsize, created, err
}

// startOver writes a new journal in place of none, or of one torn while
// being created, before it could commit anything. Only an empty bets file
// may start over: rows without their journal cannot be told from damage.
func (s *Store) startOver(jpath string, betsSize int64) error {
	if betsSize > 0 {
		return noJournal(jpath, betsSize)
	}
	if err := s.startJournal(); err != nil {
		return err
	}
	if err := s.sync(s.journal); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.ReaderAt
	n int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

// cutShort is the refusal of a version 3 journal that ends inside its
// blocks, next to rows.
func cutShort(jpath string, jsize int64) *DamageError {
	return damagef(jpath, jsize, "the journal has %d bytes and ends inside its header blocks (%d bytes) next to a non-empty bets file: it was cut short", jsize, recordsStart)
}

// noJournal is the refusal of rows that have no journal to prove them.
func noJournal(jpath string, betsSize int64) *DamageError {
	return &DamageError{File: jpath, Offset: 0, What: fmt.Sprintf("no complete journal next to %d bytes of bets: nothing proves them; if this is a course-format file to adopt, run the central with -repair", betsSize)}
}

// sizeOf returns a file's size and whether it exists, without creating it.
func (s *Store) sizeOf(path string) (int64, bool) {
	f, err := s.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, !errors.Is(err, os.ErrNotExist)
	}
	defer f.Close()
	size, err := fileSize(f)
	return size, err == nil
}

// openBets opens (creating) and locks the bets file. The lock is on the
// bets file itself: a second central reaching the same file under another
// (hard-linked) name is refused too.
func (s *Store) openBets() (size int64, created bool, err error) {
	_, exists := s.sizeOf(s.path)
	created = !exists
	if s.bets, err = s.fs.OpenFile(s.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
		return 0, false, fmt.Errorf("open bets file: %w", err)
	}
	if err := lock(s.bets); err != nil {
		return 0, false, fmt.Errorf("%s: %w", s.path, err)
	}
	size, err = fileSize(s.bets)
	return size, created, err
}

// openJournal opens (creating) the journal and checks its magic. It is not
// opened for appending: records go after the committed ones, and headers
// into their slots, at explicit offsets.
func (s *Store) openJournal(jpath string) (int64, error) {
	var err error
	if s.journal, err = s.fs.OpenFile(jpath, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return 0, fmt.Errorf("open journal: %w", err)
	}
	size, err := fileSize(s.journal)
	if err != nil {
		return 0, err
	}
	magic := make([]byte, min(size, int64(len(journalMagic))))
	if _, err := s.journal.ReadAt(magic, 0); err != nil {
		return 0, fmt.Errorf("read journal: %w", err)
	}
	if !strings.HasPrefix(journalMagic, string(magic)) {
		return 0, &DamageError{File: jpath, Offset: 0, What: fmt.Sprintf("not a bets journal (magic %q); refusing to touch it", magic)}
	}
	return size, nil
}

// startJournal writes a new journal: the magic, the header of group 0 and
// a base record covering nothing.
func (s *Store) startJournal() error {
	if err := s.journal.Truncate(0); err != nil {
		return fmt.Errorf("truncate journal: %w", err)
	}
	b, chain := newJournal(0, 0)
	if _, err := s.journal.WriteAt(b, 0); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	s.tail = tailVerdict{committed: fileState{journal: int64(len(b))}, chain: chain}
	return nil
}

// newJournal encodes a whole new journal whose base record covers the
// first end bytes of the bets file (count bets): the magic block, the
// header of group 0 and the record. It returns the base record's chain.
// The audit log of a new journal is its base record's leaf alone: the
// leaf's hash is the tree's root and its one stored hash.
func newJournal(end int64, count uint32) ([]byte, digest) {
	b, chain, _ := newJournalWithDigest(end, count, sha256.Sum256(nil))
	return b, chain
}

// newJournalWithDigest is newJournal for a base record over rows whose
// SHA-256 is full; it also returns the base record's leaf hash.
func newJournalWithDigest(end int64, count uint32, full [32]byte) ([]byte, digest, tlog.Hash) {
	b := make([]byte, recordsStart, recordsStart+journalRecordSize)
	copy(b, journalMagic)
	base := record{kind: kindBase, flags: flagGroupEnd, end: end, count: count, digest: truncate(full)}
	b, chain := base.append(b, digest{})
	leaf := leafHash(base, full)
	h := header{gen: 0, before: fileState{journal: recordsStart},
		after: fileState{journal: int64(len(b)), bets: end, betCount: int64(count)}, chain: chain, root: leaf}
	copy(b[slotOffset(0):], h.encode())
	return b, chain, leaf
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

// Append submits rows (nil: none) as batch number seq of the agency
// (lottery.Ledger); the store owns them from now on.
func (s *Store) Append(agency uint32, seq uint64, rows *lottery.Rows) *lottery.Commit {
	r := &request{kind: kindBatch, agency: agency, seq: seq}
	if rows != nil {
		r.count, r.rows = rows.Len(), rows.Bytes()
	}
	// Hashed here, in the caller's goroutine: sessions hash in parallel
	// and the single writer only compares.
	r.full = sha256.Sum256(r.rows)
	return s.submit(r)
}

// Commit durably stores the committed mode's commitment to the draw's
// secret (audit.Commitment) as record 1, the audit log's leaf 1: only on a
// journal that holds nothing but its base record, and before any batch
// (lottery.ErrSequence otherwise). The same commitment again succeeds as
// a duplicate.
func (s *Store) Commit(commitment [32]byte) *lottery.Commit {
	return s.submit(&request{kind: kindCommit, full: commitment})
}

// Commitment returns the commitment record 1 holds, at once (Open read
// it); ok is false when there is none.
func (s *Store) Commitment() (c [32]byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.commitment == nil {
		return c, false
	}
	return *s.commitment, true
}

// peekCommitment reads the committed record 1, where a commitment can
// only be, so that Commitment answers before the journal is indexed: a
// central started in the other mode is refused before it listens. The
// index checks the record again, in its place among the others.
func (s *Store) peekCommitment() *[32]byte {
	if s.committed.records() < 2 {
		return nil
	}
	b := make([]byte, journalRecordSize)
	if _, err := s.journal.ReadAt(b, recordsStart+journalRecordSize); err != nil {
		return nil
	}
	r, ok := parseRecord(b)
	if !ok || r.kind != kindCommit {
		return nil
	}
	c := r.commitment()
	return &c
}

// MarkFinished durably marks the agency finished after its batch lastSeq
// (lottery.Ledger).
func (s *Store) MarkFinished(agency uint32, lastSeq uint64) *lottery.Commit {
	return s.submit(&request{kind: kindFinished, agency: agency, seq: lastSeq})
}

func (s *Store) submit(r *request) *lottery.Commit {
	r.Commit = lottery.NewCommit()
	s.sendMu.RLock()
	defer s.sendMu.RUnlock()
	if s.closed {
		r.complete(ErrClosed)
		return r.Commit
	}
	s.queue <- r
	return r.Commit
}

// Ready is closed once the store knows what it holds (its journal
// indexed, in the background after Open) and takes commits. LastSeq and
// Finished wait for it. If the index finds damage, Ready is never closed
// and Failed is.
func (s *Store) Ready() <-chan struct{} { return s.ready }

// Verified is closed once the background verification has proven every
// byte the files held at Open (each record's rows against its digest, the
// chain of the records); rows stored since were hashed as they came. If it
// finds damage, Verified is never closed and Failed is. The draw reads the
// file only once it is closed (ScanWhere).
func (s *Store) Verified() <-chan struct{} { return s.verified }

// await waits for ch, or for the store to fail or close: it reports
// whether ch closed.
func (s *Store) await(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-s.failed:
	case <-s.stop:
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// LastSeq returns the last batch sequence committed for the agency (0 for
// none). It waits until the store is Ready (0 if it fails or closes
// first).
func (s *Store) LastSeq(agency uint32) uint64 {
	if !s.await(s.ready) {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeq[agency]
}

// Finished returns the agencies durably marked finished. It waits until
// the store is Ready (none if it fails or closes first).
func (s *Store) Finished() []uint32 {
	if !s.await(s.ready) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint32, 0, len(s.finished))
	for a := range s.finished {
		out = append(out, a)
	}
	return out
}

// ReadHashes reads the audit log's stored hashes (lottery.Ledger): those
// of the tree of every durable record.
func (s *Store) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	if !s.await(s.ready) {
		return nil, ErrClosed
	}
	return s.tree.ReadHashes(indexes)
}

// Tree returns the audit log's size (its records) and root after the last
// durable group.
func (s *Store) Tree() (uint64, tlog.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(s.committed.records()), s.root
}

// Agency returns the bets stored for the agency and the SHA-256 of each of
// its batches' rows, in sequence order. Call it once Verified is closed:
// before, the digests of the batches stored before Open are not known.
func (s *Store) Agency(agency uint32) (int64, [][32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agencyBets[agency], slices.Clone(s.digests[agency])
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
	return Stats{Bets: s.committed.betCount, Size: s.committed.bets, Fsyncs: s.fsyncs.Load()}
}

// Failed is closed when a failure has stopped all writing: a failed fsync,
// a write that could not be undone, or damage found by the background
// index or verification (Err is then a *DamageError). The central should
// stop; the next Open repairs a torn tail, or refuses the damage.
func (s *Store) Failed() <-chan struct{} { return s.failed }

// Err returns the failure that closed Failed, or nil.
func (s *Store) Err() error {
	if p := s.failErr.Load(); p != nil {
		return *p
	}
	return nil
}

// fail records a failure that ends all writing; only the first counts.
func (s *Store) fail(cause error) {
	if s.failErr.CompareAndSwap(nil, &cause) {
		close(s.failed)
	}
}

// Close lets the writer finish every commit already submitted, stops the
// background verification, then closes both files. It is safe to call
// more than once, from any goroutines: every call returns once the files
// are closed, with the same error.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.sendMu.Lock()
		s.closed = true
		close(s.queue)
		s.sendMu.Unlock()
		close(s.stop)
		<-s.exited
		<-s.verifyDone
		s.closeErr = s.closeFiles()
	})
	return s.closeErr
}

func (s *Store) closeFiles() error {
	var errs []error
	for _, f := range []File{s.bets, s.journal, s.tlog} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// run is the writer goroutine: once the journal is indexed, it takes every
// commit waiting in the queue as one group (at most maxGroupCommits and
// about maxGroupBytes) and commits the group with one write and one fsync
// per file.
func (s *Store) run() {
	defer close(s.exited)
	if err := s.prepare(); err != nil {
		close(s.verifyDone)
		s.fail(err)
		for c := range s.queue {
			c.complete(lottery.Errorf(lottery.EStorage, "storage stopped: %v", err))
		}
		return
	}
	close(s.ready)
	go s.verify(s.committed, s.gen, s.chain)
	w := groupWriter{s: s}
	for c := range s.queue {
		group, size := append(w.group[:0], c), len(c.rows)
	gather:
		for size < maxGroupBytes && len(group) < maxGroupCommits {
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
