package storage_test

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"lottery"
	"lottery/audit"
	"lottery/storage"
)

// treeFromFiles recomputes the audit log's tree from the files alone, as
// bin/audit does: the journal's records as leaves, each with its rows.
func treeFromFiles(t *testing.T, path string) (*audit.Tree, []audit.LocatedLeaf) {
	t.Helper()
	l, err := storage.OpenLeaves(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	leaves, err := l.Leaves()
	if err != nil {
		t.Fatal(err)
	}
	var tree audit.Tree
	for _, x := range leaves {
		if err := tree.AppendLeaf(x.Leaf); err != nil {
			t.Fatal(err)
		}
	}
	return &tree, leaves
}

// TestStore_Tree: the store's tree is the tree of its records, leaf i
// record i, each batch's leaf binding its rows; a restart keeps it in
// constant time, and a start without bets.csv.tlog rebuilds the same one.
func TestStore_Tree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s, _ := openStore(t, path, nil)
	appendOK(t, s, 1, 1, 5)
	appendOK(t, s, 2, 1, 3)
	if err := s.MarkFinished(2, 3).Wait(); err != nil {
		t.Fatal(err)
	}
	size, root := s.Tree()
	closeStore(t, s)
	if size != 1+5+3+1 {
		t.Errorf("a tree of %d leaves, want 10 (base, 8 batches, a finished)", size)
	}
	want, leaves := treeFromFiles(t, path)
	if want.Size() != size || want.Root() != root {
		t.Fatalf("the store's tree is %d leaves, root %v; the files give %d, %v", size, root, want.Size(), want.Root())
	}
	if l := leaves[1].Leaf; l.Kind != audit.KindBatch || l.Agency != 1 || l.Seq != 1 || l.Digest != sha256.Sum256(batchRows(1, 1)) {
		t.Errorf("leaf 1 is %+v, want agency 1's batch 1 over the SHA-256 of its rows", l)
	}
	tlogBytes, err := os.ReadFile(path + ".tlog")
	if err != nil {
		t.Fatal(err)
	}
	if n := int64(len(tlogBytes)) / tlog.HashSize; n != tlog.StoredHashCount(int64(size)) {
		t.Errorf("bets.csv.tlog holds %d hashes, want %d for %d leaves", n, tlog.StoredHashCount(int64(size)), size)
	}
	for _, remove := range []bool{false, true} {
		if remove {
			if err := os.Remove(path + ".tlog"); err != nil {
				t.Fatal(err)
			}
		}
		s, _ = openStore(t, path, nil)
		gotSize, gotRoot := s.Tree()
		proof, err := tlog.ProveRecord(int64(gotSize), 4, s)
		closeStore(t, s)
		if gotSize != size || gotRoot != root || err != nil {
			t.Fatalf(".tlog removed %v: after a restart %d leaves, root %v (proof: %v); want %d, %v", remove, gotSize, gotRoot, err, size, root)
		}
		if err := tlog.CheckRecord(proof, int64(size), root, 4, leaves[4].Leaf.Hash()); err != nil {
			t.Errorf(".tlog removed %v: leaf 4's inclusion proof: %v", remove, err)
		}
		if b, _ := os.ReadFile(path + ".tlog"); string(b) != string(tlogBytes) {
			t.Errorf(".tlog removed %v: bets.csv.tlog is not the same bytes after the restart", remove)
		}
	}
}

// TestStore_Commitment: the committed mode's commitment is record 1, leaf 1
// of the tree (audit.CommitLeaf); it survives a restart, the same one again
// is a duplicate, and neither another one nor one after a batch is taken.
func TestStore_Commitment(t *testing.T) {
	commitment := audit.Commitment([]byte("a secret of the draw, 32 bytes!!"))
	path := filepath.Join(t.TempDir(), "bets.csv")
	s, _ := openStore(t, path, nil)
	if _, ok := s.Commitment(); ok {
		t.Fatal("a new store holds a commitment")
	}
	c := s.Commit(commitment)
	if err := c.Wait(); err != nil || c.Duplicate || c.Leaf != 1 {
		t.Fatalf("Commit: %v, duplicate %v, leaf %d; want stored at leaf 1", err, c.Duplicate, c.Leaf)
	}
	appendOK(t, s, 1, 1, 2)
	if c := s.Commit(commitment); c.Wait() != nil || !c.Duplicate {
		t.Errorf("the same commitment again: %v, duplicate %v; want a duplicate", c.Err, c.Duplicate)
	}
	other := audit.Commitment([]byte("another secret, of another draw!"))
	if err := s.Commit(other).Wait(); lottery.ErrorCode(err) != lottery.EConflict {
		t.Errorf("another commitment: %v, want a conflict", err)
	}
	closeStore(t, s)

	s, _ = openStore(t, path, nil)
	got, ok := s.Commitment()
	closeStore(t, s)
	if !ok || got != commitment {
		t.Fatalf("after a restart: commitment %x, %v; want %x", got, ok, commitment)
	}
	_, leaves := treeFromFiles(t, path)
	if l := leaves[1].Leaf; l != audit.CommitLeaf(commitment) || leaves[1].BetsStart != leaves[1].BetsEnd {
		t.Errorf("leaf 1 is %+v covering bytes %d–%d, want the commitment, covering none", l, leaves[1].BetsStart, leaves[1].BetsEnd)
	}
	if report, err := storage.Check(path); err != nil || report.Damage != nil {
		t.Errorf("-check of a journal with a commitment: %v, %v", err, report.Damage)
	}

	late := filepath.Join(t.TempDir(), "bets.csv")
	s, _ = openStore(t, late, nil)
	appendOK(t, s, 1, 1, 1)
	if err := s.Commit(commitment).Wait(); lottery.ErrorCode(err) != lottery.ESequence {
		t.Errorf("a commitment after a batch: %v, want a sequence error", err)
	}
	closeStore(t, s)
}
