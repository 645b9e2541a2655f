package audit

import (
	"fmt"
	"math"

	"golang.org/x/mod/sumdb/tlog"
)

// MaxProofHashes bounds an inclusion or a consistency proof. tlog's proofs
// have about log₂ n hashes (up to twice that for consistency), so 64
// covers any tree this lottery will hold (2³² leaves and more) and keeps a
// Receipt well under the 8 KiB frame.
const MaxProofHashes = 64

// maxTreeSize is the largest tree tlog can address: it counts in int64.
const maxTreeSize = math.MaxInt64

// Tree is a log held in memory as its stored hashes (tlog's layout, see
// tlog.StoredHashIndex): what Audit recomputes from the files, and what
// tests build. The central keeps its hashes on disk and uses the package
// functions (StoredHashes, ProveInclusion, ProveConsistency) over a
// tlog.HashReader of its own instead. A Tree of n leaves holds just under
// 2n hashes (64 bytes a leaf). Its zero value is an empty tree; it is not
// safe for concurrent use.
type Tree struct {
	hashes []tlog.Hash
	size   int64
}

// Append adds a leaf hash as the next leaf.
func (t *Tree) Append(h tlog.Hash) error {
	hs, err := tlog.StoredHashesForRecordHash(t.size, h, t)
	if err != nil {
		return fmt.Errorf("audit: append leaf %d: %w", t.size, err)
	}
	t.hashes = append(t.hashes, hs...)
	t.size++
	return nil
}

// AppendLeaf adds l as the next leaf.
func (t *Tree) AppendLeaf(l Leaf) error { return t.Append(l.Hash()) }

// Size is the number of leaves.
func (t *Tree) Size() uint64 { return uint64(t.size) }

// ReadHashes makes a Tree a tlog.HashReader.
func (t *Tree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(t.hashes)) {
			return nil, fmt.Errorf("audit: stored hash %d of a tree of %d leaves", x, t.size)
		}
		out[i] = t.hashes[x]
	}
	return out, nil
}

// LeafHash is the hash of leaf i.
func (t *Tree) LeafHash(i uint64) (tlog.Hash, error) {
	if i >= uint64(t.size) {
		return tlog.Hash{}, fmt.Errorf("audit: leaf %d of a tree of %d leaves", i, t.size)
	}
	return t.hashes[tlog.StoredHashIndex(0, int64(i))], nil
}

// Root is the root of the whole tree.
func (t *Tree) Root() tlog.Hash {
	h, err := tlog.TreeHash(t.size, t)
	if err != nil {
		panic("audit: a Tree lacks its own hashes: " + err.Error())
	}
	return h
}

// RootAt is the root the tree had when it held size leaves.
func (t *Tree) RootAt(size uint64) (tlog.Hash, error) {
	if size > uint64(t.size) {
		return tlog.Hash{}, fmt.Errorf("audit: root at size %d of a tree of %d leaves", size, t.size)
	}
	return TreeRoot(t, size)
}

// Checkpoint is the checkpoint of the whole tree under origin, to Sign.
func (t *Tree) Checkpoint(origin string) Checkpoint {
	return Checkpoint{Origin: origin, Size: uint64(t.size), Root: t.Root()}
}

// ProveInclusion proves that leaf is in the tree of size leaves.
func (t *Tree) ProveInclusion(size, leaf uint64) ([]tlog.Hash, error) {
	return ProveInclusion(t, size, leaf)
}

// ProveConsistency proves that the tree of oldSize leaves is a prefix of
// the tree of size leaves.
func (t *Tree) ProveConsistency(oldSize, size uint64) ([]tlog.Hash, error) {
	return ProveConsistency(t, oldSize, size)
}

// StoredHashes returns the hashes to store when leaf becomes the tree's
// next leaf (leaf = the current size), and the stored-hash index the first
// of them goes to (tlog.StoredHashIndex(0, leaf)); the rest follow it. It
// reads up to log₂ n earlier hashes from r. This is how the central grows
// its tree, one journal record at a time: after leaf n-1, r must hold
// tlog.StoredHashCount(n) hashes.
func StoredHashes(r tlog.HashReader, leaf uint64, h tlog.Hash) (at int64, hashes []tlog.Hash, err error) {
	if leaf >= maxTreeSize {
		return 0, nil, malformed("leaf", "index %d beyond what tlog addresses", leaf)
	}
	hashes, err = tlog.StoredHashesForRecordHash(int64(leaf), h, r)
	if err != nil {
		return 0, nil, fmt.Errorf("audit: stored hashes of leaf %d: %w", leaf, err)
	}
	return tlog.StoredHashIndex(0, int64(leaf)), hashes, nil
}

// TreeRoot is the root of the tree of size leaves held by r.
func TreeRoot(r tlog.HashReader, size uint64) (tlog.Hash, error) {
	if size > maxTreeSize {
		return tlog.Hash{}, malformed("tree", "size %d beyond what tlog addresses", size)
	}
	h, err := tlog.TreeHash(int64(size), r)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("audit: root of the tree of %d leaves: %w", size, err)
	}
	return h, nil
}

// ProveInclusion builds the proof that leaf is in the tree of size leaves
// held by r: what the central puts in a Receipt.
func ProveInclusion(r tlog.HashReader, size, leaf uint64) ([]tlog.Hash, error) {
	if leaf >= size || size > maxTreeSize {
		return nil, fmt.Errorf("audit: inclusion of leaf %d in a tree of %d leaves", leaf, size)
	}
	p, err := tlog.ProveRecord(int64(size), int64(leaf), r)
	if err != nil {
		return nil, fmt.Errorf("audit: prove leaf %d in tree %d: %w", leaf, size, err)
	}
	return p, nil
}

// ProveConsistency builds the proof that the tree of oldSize leaves held
// by r is a prefix of its tree of size leaves: what the central puts in a
// Receipt for an agency whose last checkpoint was of oldSize. It is empty
// when oldSize is 0 (anything extends the empty tree) or size.
func ProveConsistency(r tlog.HashReader, oldSize, size uint64) ([]tlog.Hash, error) {
	if oldSize > size || size > maxTreeSize {
		return nil, fmt.Errorf("audit: consistency from size %d to %d", oldSize, size)
	}
	if oldSize == 0 || oldSize == size {
		return nil, nil
	}
	p, err := tlog.ProveTree(int64(size), int64(oldSize), r)
	if err != nil {
		return nil, fmt.Errorf("audit: prove tree %d extends tree %d: %w", size, oldSize, err)
	}
	return p, nil
}

// CheckInclusion checks that h is leaf number leaf of the signed tree.
func CheckInclusion(proof []tlog.Hash, tree Checkpoint, leaf uint64, h tlog.Hash) error {
	what := fmt.Sprintf("inclusion of leaf %d", leaf)
	return checkInclusion(proof, tree, leaf, h, what)
}

func checkInclusion(proof []tlog.Hash, tree Checkpoint, leaf uint64, h tlog.Hash, what string) error {
	where := fmt.Sprintf("leaf %d in tree %d", leaf, tree.Size)
	switch {
	case len(proof) > MaxProofHashes:
		return failf(ErrMalformed, what, where, "a proof of %d hashes (at most %d)", len(proof), MaxProofHashes)
	case leaf >= tree.Size || tree.Size > maxTreeSize:
		return failf(ErrNotIncluded, what, where, "the tree has no leaf %d", leaf)
	}
	if err := tlog.CheckRecord(proof, int64(tree.Size), tree.Root, int64(leaf), h); err != nil {
		return failf(ErrNotIncluded, what, where, "the proof of %d hashes does not lead to root %s", len(proof), tree.Root)
	}
	return nil
}

// CheckConsistency checks that the signed tree next extends the signed
// tree old: ErrShrank if it is smaller, ErrFork if it is of the same size
// with another root, ErrNotConsistent if the proof fails. Any tree extends
// the empty one.
func CheckConsistency(proof []tlog.Hash, old, next Checkpoint) error {
	what := fmt.Sprintf("consistency from size %d to %d", old.Size, next.Size)
	switch {
	case len(proof) > MaxProofHashes:
		return failf(ErrMalformed, what, "", "a proof of %d hashes (at most %d)", len(proof), MaxProofHashes)
	case next.Size < old.Size:
		return failf(ErrShrank, what, "", "the tree had %d leaves, now %d", old.Size, next.Size)
	case old.Size == 0:
		if len(proof) != 0 {
			return failf(ErrMalformed, what, "", "a proof of %d hashes from the empty tree", len(proof))
		}
		return nil
	case next.Size == old.Size:
		if next.Root != old.Root {
			return failf(ErrFork, what, "", "roots %s and %s", old.Root, next.Root)
		}
		if len(proof) != 0 {
			return failf(ErrMalformed, what, "", "a proof of %d hashes between equal trees", len(proof))
		}
		return nil
	case next.Size > maxTreeSize:
		return failf(ErrMalformed, what, "", "size %d beyond what tlog addresses", next.Size)
	}
	if err := tlog.CheckTree(proof, int64(next.Size), next.Root, int64(old.Size), old.Root); err != nil {
		return failf(ErrNotConsistent, what, "", "the proof of %d hashes does not lead from root %s to root %s", len(proof), old.Root, next.Root)
	}
	return nil
}
