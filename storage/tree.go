package storage

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"lottery/audit"
)

// The audit log is a Merkle tree whose leaf i is journal record i
// (audit.Leaf: its kind, agency, sequence, count and the full SHA-256 of
// the rows it covers). Its hashes live beside the bets in bets.csv.tlog:
// golang.org/x/mod/sumdb/tlog's stored hashes, 32 bytes each, in their
// StoredHashIndex order (about two per leaf, so 64 bytes per batch). The
// writer appends a group's hashes with the group's other writes and syncs
// them with the same fsyncs; each group's commit header carries the
// tree's root after it, so a start checks in constant time (TreeHash reads
// log₂ n hashes) that the file is the tree the journal describes, and the
// background verification recomputes every hash. Every node of a
// replicated central applies the same records, so every node holds the
// same tree.
const tlogSuffix = ".tlog"

// hashSize is the size of a stored hash.
const hashSize = tlog.HashSize

// Bounds of what a tree keeps in memory: the newest recentHashes (to
// twice as many) stored hashes (the right edge, which appends and the proofs of new batches
// read) and cachedHashes older ones read back from the file (the left
// subtrees every recent proof shares).
const (
	recentHashes = 1 << 14
	cachedHashes = 1 << 12
)

// tree is the store's Merkle tree over its .tlog file. The writer appends
// (pending, then publish once durable); any goroutine reads the hashes of
// the durable tree (ReadHashes), which never change.
type tree struct {
	f File

	mu     sync.RWMutex
	n      int64       // stored hashes durable and readable
	recent []tlog.Hash // the newest stored hashes: recent[i] is index n-len(recent)+i

	cacheMu sync.Mutex
	cache   map[int64]tlog.Hash
	order   []int64 // the cache's keys, oldest first
}

func newTree(f File, n int64) *tree {
	return &tree{f: f, n: n, cache: make(map[int64]tlog.Hash)}
}

// ReadHashes implements tlog.HashReader over the durable tree.
func (t *tree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	t.mu.RLock()
	n, recent := t.n, t.recent
	t.mu.RUnlock()
	first := n - int64(len(recent))
	for i, x := range indexes {
		switch {
		case x < 0 || x >= n:
			return nil, fmt.Errorf("storage: stored hash %d of a tree of %d", x, n)
		case x >= first:
			out[i] = recent[x-first]
		default:
			h, err := t.readOld(x)
			if err != nil {
				return nil, err
			}
			out[i] = h
		}
	}
	return out, nil
}

// readOld reads a stored hash older than the recent window, through the
// cache.
func (t *tree) readOld(x int64) (tlog.Hash, error) {
	t.cacheMu.Lock()
	h, ok := t.cache[x]
	t.cacheMu.Unlock()
	if ok {
		return h, nil
	}
	if _, err := t.f.ReadAt(h[:], x*hashSize); err != nil {
		return h, fmt.Errorf("storage: read stored hash %d: %w", x, err)
	}
	t.cacheMu.Lock()
	defer t.cacheMu.Unlock()
	if len(t.order) >= cachedHashes {
		delete(t.cache, t.order[0])
		t.order = t.order[1:]
	}
	t.cache[x] = h
	t.order = append(t.order, x)
	return h, nil
}

// hashes returns how many stored hashes the durable tree holds.
func (t *tree) hashes() int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.n
}

// grow computes the stored hashes of leaves added after the durable tree
// (the first of them leaf number first), appended to the pending ones
// already computed for this group, without publishing them.
func (t *tree) grow(pending []tlog.Hash, first int64, leaves []tlog.Hash) ([]tlog.Hash, error) {
	for i, h := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(first+int64(i), h, t.withPending(pending))
		if err != nil {
			return nil, err
		}
		pending = append(pending, hs...)
	}
	return pending, nil
}

// rootWith is the root of the tree of size leaves, the durable tree and
// pending hashes after it.
func (t *tree) rootWith(pending []tlog.Hash, size int64) (tlog.Hash, error) {
	return tlog.TreeHash(size, t.withPending(pending))
}

// withPending reads the durable tree's hashes and pending ones after it.
func (t *tree) withPending(pending []tlog.Hash) tlog.HashReader {
	base := t.hashes()
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		var old []int64
		var at []int
		for i, x := range indexes {
			if x >= base {
				if x-base >= int64(len(pending)) {
					return nil, fmt.Errorf("storage: stored hash %d not written yet", x)
				}
				out[i] = pending[x-base]
				continue
			}
			old, at = append(old, x), append(at, i)
		}
		if len(old) > 0 {
			hs, err := t.ReadHashes(old)
			if err != nil {
				return nil, err
			}
			for j, h := range hs {
				out[at[j]] = h
			}
		}
		return out, nil
	})
}

// encode lays stored hashes out as they are written.
func encodeHashes(dst []byte, hs []tlog.Hash) []byte {
	for _, h := range hs {
		dst = append(dst, h[:]...)
	}
	return dst
}

// publish makes pending hashes, now durable after the durable ones, part
// of the tree others read.
func (t *tree) publish(pending []tlog.Hash) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n += int64(len(pending))
	// Appended in place: a reader holds a shorter slice of the same array
	// and never reads past its end. The window is trimmed once it holds
	// twice its size, to a new array (readers keep the old one), so each
	// hash is copied once more at most: trimming at every group copied the
	// whole window each time, 512 KiB per group commit.
	recent := append(t.recent, pending...)
	if len(recent) > 2*recentHashes {
		trimmed := make([]tlog.Hash, recentHashes, 2*recentHashes+len(pending))
		copy(trimmed, recent[len(recent)-recentHashes:])
		recent = trimmed
	}
	t.recent = recent
}

// leafHash is the hash of the leaf of record r, whose rows' full SHA-256
// is rows (unused for a finished record).
func leafHash(r record, rows [32]byte) tlog.Hash {
	l := audit.Leaf{Agency: r.agency, Seq: r.seq, Count: r.count}
	switch r.kind {
	case kindBatch:
		l.Kind, l.Digest = audit.KindBatch, rows
	case kindFinished:
		l.Kind = audit.KindFinished
	case kindBase:
		l.Kind, l.Digest = audit.KindBase, rows
	case kindCommit:
		l = audit.CommitLeaf(r.commitment())
	}
	return l.Hash()
}

// errTreeCut is a .tlog file shorter than the tree the journal commits
// before its newest group.
var errTreeCut = errors.New("the audit log's hashes were cut short")

// readHashesAt reads count stored hashes from index first of a .tlog file.
func readHashesAt(f io.ReaderAt, first, count int64) ([]tlog.Hash, error) {
	buf := make([]byte, count*hashSize)
	if _, err := f.ReadAt(buf, first*hashSize); err != nil {
		return nil, err
	}
	out := make([]tlog.Hash, count)
	for i := range out {
		copy(out[i][:], buf[i*hashSize:])
	}
	return out, nil
}

// openTree opens the audit log's hashes beside the journal and checks
// them against the committed state, reading a bounded amount whatever the
// tree holds: the hashes a crash cannot have torn (those of the tree before
// the newest group, fsynced with that group) must be there; the newest
// group's are computed again from its leaves (Open read its records and
// rows), and the root they give must be the one the commit header names
// (TreeHash reads log₂ n hashes). What differs past the durable hashes is
// rewritten once the journal is indexed (finishTree).
//
// The file is derived from the journal and the rows, which are proven on
// their own: a tree file that is missing, cut or does not give the root
// (or a journal that predates the audit log) is rebuilt from them whole
// before the store takes commits (rebuildTree), not refused.
func (s *Store) openTree(fresh bool) error {
	tpath := s.path + tlogSuffix
	flag := os.O_RDWR
	if fresh {
		flag |= os.O_CREATE
	}
	f, err := s.fs.OpenFile(tpath, flag, 0o644)
	tv := &s.tail
	if errors.Is(err, os.ErrNotExist) {
		// Created only once the files are known good (rebuildTree): a
		// refused start leaves no trace.
		tv.rebuildTree = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("open the audit log: %w", err)
	}
	s.tlog = f
	if fresh {
		return s.startTree()
	}
	tsize, err := fileSize(s.tlog)
	if err != nil {
		return err
	}
	n := tv.committed.records()
	durable := tlog.StoredHashCount(tv.newestFrom)
	if tsize < durable*hashSize || tv.root != nil && *tv.root == (tlog.Hash{}) {
		tv.rebuildTree = true
		s.tree = newTree(s.tlog, 0)
		return nil
	}
	t := newTree(s.tlog, durable)
	pending, err := t.grow(nil, tv.newestFrom, tv.newest)
	if err != nil {
		return fmt.Errorf("the audit log: %w", err)
	}
	root, err := t.rootWith(pending, n)
	if err != nil {
		return fmt.Errorf("the audit log: %w", err)
	}
	if tv.root != nil && root != *tv.root {
		tv.rebuildTree = true
		s.tree = newTree(s.tlog, 0)
		return nil
	}
	s.tree, s.root = t, root
	if tsize == (durable+int64(len(pending)))*hashSize && newestWritten(s.tlog, durable, pending) {
		t.publish(pending) // the usual case, a clean stop: nothing to rewrite
		return nil
	}
	tv.treePending, tv.cutTree = pending, tsize-durable*hashSize
	return nil
}

// newestWritten reports whether the file already holds the newest group's
// stored hashes after the durable ones.
func newestWritten(f io.ReaderAt, durable int64, pending []tlog.Hash) bool {
	got, err := readHashesAt(f, durable, int64(len(pending)))
	return err == nil && slices.Equal(got, pending)
}

// startTree writes the audit log of a new journal: its base record's leaf,
// whose hash is the one stored hash and the root.
func (s *Store) startTree() error {
	leaf := leafHash(record{kind: kindBase}, sha256.Sum256(nil))
	if err := s.tlog.Truncate(0); err != nil {
		return fmt.Errorf("truncate the audit log: %w", err)
	}
	if _, err := s.tlog.WriteAt(leaf[:], 0); err != nil {
		return fmt.Errorf("write the audit log: %w", err)
	}
	if err := s.sync(s.tlog); err != nil {
		return fmt.Errorf("sync the audit log: %w", err)
	}
	s.tree, s.root = newTree(s.tlog, 0), leaf
	s.tree.publish([]tlog.Hash{leaf})
	return nil
}

// rebuildTree writes the audit log of the committed records from scratch,
// every record read with its rows.
func (s *Store) rebuildTree() error {
	c, jpath := s.committed, s.path+journalSuffix
	sc := newScanner(io.NewSectionReader(s.journal, recordsStart, c.journal-recordsStart), jpath, scanFrom{off: recordsStart},
		io.NewSectionReader(s.bets, 0, c.bets), s.path, c.bets, true, nil)
	leaves := []tlog.Hash{}
	sc.leaves = &leaves
	if d := sc.scan(c.journal); d != nil {
		return d
	}
	stored, root, err := treeOf(leaves)
	if err != nil {
		return err
	}
	if r := s.tail.root; r != nil && *r != (tlog.Hash{}) && *r != root {
		// The records verify but are not the tree the header committed.
		return damagef(jpath, slotOffset(s.tail.gen), "the commit header of group %d names an audit log root that is not the tree of its records", s.tail.gen)
	}
	if s.tlog == nil {
		if s.tlog, err = s.fs.OpenFile(s.path+tlogSuffix, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
			return fmt.Errorf("open the audit log: %w", err)
		}
		s.tree = newTree(s.tlog, 0)
	}
	if err := s.tlog.Truncate(0); err != nil {
		return fmt.Errorf("truncate the audit log: %w", err)
	}
	if _, err := s.tlog.WriteAt(encodeHashes(nil, stored), 0); err != nil {
		return fmt.Errorf("write the audit log: %w", err)
	}
	if err := s.sync(s.tlog); err != nil {
		return fmt.Errorf("sync the audit log: %w", err)
	}
	s.tree.publish(stored)
	s.mu.Lock()
	s.root = root
	s.mu.Unlock()
	return nil
}

// treeOf computes the stored hashes and the root of the tree of leaves.
func treeOf(leaves []tlog.Hash) ([]tlog.Hash, tlog.Hash, error) {
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("storage: stored hash %d of %d", x, len(stored))
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	for i, h := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(int64(i), h, r)
		if err != nil {
			return nil, tlog.Hash{}, err
		}
		stored = append(stored, hs...)
	}
	root, err := tlog.TreeHash(int64(len(leaves)), r)
	return stored, root, err
}
