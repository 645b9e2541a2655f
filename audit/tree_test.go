package audit_test

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"lottery/audit"
)

// leafHashes are n distinct leaf hashes.
func leafHashes(n int) []tlog.Hash {
	hs := make([]tlog.Hash, n)
	for i := range hs {
		hs[i] = audit.BatchLeaf(1, uint64(i+1), 1, []byte(fmt.Sprint(i))).Hash()
	}
	return hs
}

func treeOf(t testing.TB, hs []tlog.Hash) *audit.Tree {
	t.Helper()
	var tr audit.Tree
	for _, h := range hs {
		if err := tr.Append(h); err != nil {
			t.Fatal(err)
		}
	}
	return &tr
}

// hashStore is the central's side: hashes kept by stored index, grown with
// StoredHashes, read through a tlog.HashReaderFunc.
type hashStore map[int64]tlog.Hash

func (s hashStore) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			h, ok := s[x]
			if !ok {
				return nil, fmt.Errorf("no stored hash %d", x)
			}
			out[i] = h
		}
		return out, nil
	})
}

// TestTree_AgreesWithStoredHashes: a Tree and a central's store grown with
// StoredHashes hold the same hashes, the same roots and the same proofs,
// and every proof checks, for every size and leaf up to 40.
func TestTree_AgreesWithStoredHashes(t *testing.T) {
	const n = 40
	hs := leafHashes(n)
	var tr audit.Tree
	store := hashStore{}
	for i, h := range hs {
		at, add, err := audit.StoredHashes(store.reader(), uint64(i), h)
		if err != nil {
			t.Fatal(err)
		}
		if at != tlog.StoredHashIndex(0, int64(i)) {
			t.Fatalf("leaf %d stored at %d", i, at)
		}
		for j, x := range add {
			store[at+int64(j)] = x
		}
		if int64(len(store)) != tlog.StoredHashCount(int64(i+1)) {
			t.Fatalf("after leaf %d the store holds %d hashes, want %d", i, len(store), tlog.StoredHashCount(int64(i+1)))
		}
		if err := tr.Append(h); err != nil {
			t.Fatal(err)
		}
	}
	if tr.Size() != n {
		t.Fatalf("size %d", tr.Size())
	}
	for size := uint64(1); size <= n; size++ {
		root, err := tr.RootAt(size)
		if err != nil {
			t.Fatal(err)
		}
		if r2, err := audit.TreeRoot(store.reader(), size); err != nil || r2 != root {
			t.Fatalf("root at %d: tree %s, store %s (%v)", size, root, r2, err)
		}
		cp := audit.Checkpoint{Origin: testOrigin, Size: size, Root: root}
		for leaf := uint64(0); leaf < size; leaf++ {
			p, err := tr.ProveInclusion(size, leaf)
			if err != nil {
				t.Fatal(err)
			}
			if err := audit.CheckInclusion(p, cp, leaf, hs[leaf]); err != nil {
				t.Fatalf("leaf %d in %d: %v", leaf, size, err)
			}
			if leaf > 0 {
				if err := audit.CheckInclusion(p, cp, leaf, hs[leaf-1]); !errors.Is(err, audit.ErrNotIncluded) {
					t.Fatalf("leaf %d's proof took leaf %d's hash: %v", leaf, leaf-1, err)
				}
			}
		}
		for old := uint64(0); old <= size; old++ {
			p, err := audit.ProveConsistency(store.reader(), old, size)
			if err != nil {
				t.Fatal(err)
			}
			oldRoot, _ := tr.RootAt(old)
			oldCP := audit.Checkpoint{Origin: testOrigin, Size: old, Root: oldRoot}
			if err := audit.CheckConsistency(p, oldCP, cp); err != nil {
				t.Fatalf("%d to %d: %v", old, size, err)
			}
		}
	}
	if tr.Root() != mustRoot(t, &tr, n) {
		t.Error("Root is not RootAt(Size)")
	}
	if h, err := tr.LeafHash(7); err != nil || h != hs[7] {
		t.Errorf("LeafHash(7) = %s, %v", h, err)
	}
}

func mustRoot(t *testing.T, tr *audit.Tree, size uint64) tlog.Hash {
	t.Helper()
	r, err := tr.RootAt(size)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTree_EmptyRoot(t *testing.T) {
	var tr audit.Tree
	if got, want := tr.Root(), tlog.Hash(sha256Empty()); got != want {
		t.Errorf("empty root %s, want SHA-256 of nothing %s", got, want)
	}
}

func sha256Empty() [32]byte { return hashOfBytes(nil) }

func TestTree_Err(t *testing.T) {
	tr := treeOf(t, leafHashes(5))
	tests := []struct {
		name string
		err  error
	}{
		{"ErrLeafHashBeyond", func() error { _, err := tr.LeafHash(5); return err }()},
		{"ErrRootBeyond", func() error { _, err := tr.RootAt(6); return err }()},
		{"ErrProveLeafBeyond", func() error { _, err := tr.ProveInclusion(5, 5); return err }()},
		{"ErrProveTreeBeyond", func() error { _, err := tr.ProveInclusion(6, 1); return err }()},
		{"ErrConsistencyBackwards", func() error { _, err := tr.ProveConsistency(4, 3); return err }()},
		{"ErrConsistencyBeyond", func() error { _, err := tr.ProveConsistency(3, 6); return err }()},
		{"ErrReadHashesBeyond", func() error { _, err := tr.ReadHashes([]int64{1000}); return err }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestCheckConsistency_Err: every way a later tree can fail to extend an
// earlier one has its sentinel.
func TestCheckConsistency_Err(t *testing.T) {
	hs := leafHashes(20)
	tr := treeOf(t, hs)
	cp := func(size uint64) audit.Checkpoint {
		return audit.Checkpoint{Origin: testOrigin, Size: size, Root: mustRoot(t, tr, size)}
	}
	other := treeOf(t, append(append([]tlog.Hash(nil), hs[:9]...), hashOf("another leaf 9")))
	for range 10 {
		other.Append(hashOf("more"))
	}
	otherCP := func(size uint64) audit.Checkpoint {
		return audit.Checkpoint{Origin: testOrigin, Size: size, Root: mustRoot(t, other, size)}
	}
	proof := func(old, size uint64) []tlog.Hash {
		p, err := tr.ProveConsistency(old, size)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	otherProof, _ := other.ProveConsistency(10, 20)
	tests := []struct {
		name      string
		proof     []tlog.Hash
		old, next audit.Checkpoint
		want      error
	}{
		{"ErrShrank", nil, cp(10), cp(9), audit.ErrShrank},
		{"ErrForkSameSize", nil, cp(10), otherCP(10), audit.ErrFork},
		{"ErrNotConsistentOtherHistory", otherProof, cp(10), otherCP(20), audit.ErrNotConsistent},
		{"ErrNotConsistentHonestProofOtherTree", proof(8, 20), cp(8), otherCP(20), audit.ErrNotConsistent},
		{"ErrNotConsistentTruncatedProof", proof(8, 20)[1:], cp(8), cp(20), audit.ErrNotConsistent},
		{"ErrNotConsistentNoProof", nil, cp(8), cp(20), audit.ErrNotConsistent},
		{"ErrMalformedProofBetweenEqualTrees", proof(8, 20), cp(20), cp(20), audit.ErrMalformed},
		{"ErrMalformedProofFromEmpty", proof(8, 20), audit.Checkpoint{}, cp(20), audit.ErrMalformed},
		{"ErrMalformedHugeProof", make([]tlog.Hash, audit.MaxProofHashes+1), cp(8), cp(20), audit.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := audit.CheckConsistency(tt.proof, tt.old, tt.next)
			if !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheckInclusion_Err(t *testing.T) {
	hs := leafHashes(10)
	tr := treeOf(t, hs)
	cp := audit.Checkpoint{Origin: testOrigin, Size: 10, Root: tr.Root()}
	p, _ := tr.ProveInclusion(10, 3)
	tests := []struct {
		name  string
		proof []tlog.Hash
		cp    audit.Checkpoint
		leaf  uint64
		h     tlog.Hash
		want  error
	}{
		{"ErrOtherLeaf", p, cp, 3, hs[4], audit.ErrNotIncluded},
		{"ErrOtherIndex", p, cp, 4, hs[3], audit.ErrNotIncluded},
		{"ErrOtherRoot", p, audit.Checkpoint{Size: 10, Root: hashOf("x")}, 3, hs[3], audit.ErrNotIncluded},
		{"ErrBeyond", p, cp, 10, hs[3], audit.ErrNotIncluded},
		{"ErrShortProof", p[1:], cp, 3, hs[3], audit.ErrNotIncluded},
		{"ErrHugeProof", make([]tlog.Hash, audit.MaxProofHashes+1), cp, 3, hs[3], audit.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := audit.CheckInclusion(tt.proof, tt.cp, tt.leaf, tt.h); !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
}
