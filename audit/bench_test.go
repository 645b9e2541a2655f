package audit_test

import (
	"sync"
	"testing"

	"lottery/audit"
)

// bigLeaves is the size of the benchmarks' log: a million records, about
// what 100 million bets in batches of 100 make.
const bigLeaves = 1 << 20

// extraLeaves are the leaves after bigLeaves the Accept benchmarks receive.
const extraLeaves = 1024

var (
	bigOnce sync.Once
	bigTree *audit.Tree
)

// big builds, once, a tree of bigLeaves+extraLeaves leaves of agency 1's
// batches (64 bytes a leaf in memory: about 130 MiB).
func big(b *testing.B) *audit.Tree {
	b.Helper()
	bigOnce.Do(func() {
		bigTree = &audit.Tree{}
		for i := range bigLeaves + extraLeaves {
			l := audit.Leaf{Kind: audit.KindBatch, Agency: 1, Seq: uint64(i + 1), Count: 100}
			if err := bigTree.AppendLeaf(l); err != nil {
				panic(err)
			}
		}
	})
	return bigTree
}

// BenchmarkProveInclusion: what the central does per record acked (the
// proof reads about 20 stored hashes).
func BenchmarkProveInclusion(b *testing.B) {
	tr := big(b)
	size := uint64(bigLeaves)
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		if _, err := audit.ProveInclusion(tr, size, (i*7919)%size); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkProveConsistency: what the central does per receipt that
// carries a new checkpoint, from a size a group commit earlier.
func BenchmarkProveConsistency(b *testing.B) {
	tr := big(b)
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		size := uint64(bigLeaves) + i%extraLeaves
		if _, err := audit.ProveConsistency(tr, size-64, size); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSignCheckpoint: once per group commit.
func BenchmarkSignCheckpoint(b *testing.B) {
	tr := big(b)
	signer, _ := testKey(b, testOrigin, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := audit.NewSignedCheckpoint(tr, testOrigin, bigLeaves, signer); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTree_Append: the auditor rebuilding the log, per leaf.
func BenchmarkTree_Append(b *testing.B) {
	var tr audit.Tree
	h := hashOf("leaf")
	b.ReportAllocs()
	for b.Loop() {
		if err := tr.Append(h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifier_Accept: the agency's check of one receipt in a log of
// a million leaves, each bringing a new checkpoint (a signature to verify,
// a consistency proof and an inclusion proof) or reusing the last one.
func BenchmarkVerifier_Accept(b *testing.B) {
	tr := big(b)
	signer, key := testKey(b, testOrigin, 1)
	leafAt := func(i uint64) audit.Leaf {
		return audit.Leaf{Kind: audit.KindBatch, Agency: 1, Seq: i + 1, Count: 100}
	}
	start, err := audit.NewSignedCheckpoint(tr, testOrigin, bigLeaves, signer)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		step uint64 // leaves per checkpoint
	}{{"NewCheckpoint", 1}, {"SameCheckpoint", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			receipts := make([]audit.Receipt, extraLeaves)
			old := uint64(bigLeaves)
			for k := range receipts {
				size := uint64(bigLeaves) + uint64(k+1)*bc.step
				leaf := size - 1
				if bc.step == 0 {
					size, leaf = bigLeaves, uint64(bigLeaves-1-k)
				}
				cp, err := audit.NewSignedCheckpoint(tr, testOrigin, size, signer)
				if err != nil {
					b.Fatal(err)
				}
				if receipts[k], err = audit.NewReceipt(tr, leaf+1, leaf, cp, old); err != nil {
					b.Fatal(err)
				}
				old = size
			}
			var v *audit.Verifier
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				if k%extraLeaves == 0 {
					v, _ = audit.NewVerifier(key, 1)
					if err := v.Resume(start.Note); err != nil {
						b.Fatal(err)
					}
				}
				r := receipts[k%extraLeaves]
				if _, err := v.Accept(r, leafAt(r.Leaf)); err != nil {
					b.Fatal(err)
				}
				k++
			}
		})
	}
}

// BenchmarkDecodeReceipt: per ack, on the agency.
func BenchmarkDecodeReceipt(b *testing.B) {
	r := sampleReceipts(b)[1]
	enc, _ := r.Encode()
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := audit.DecodeReceipt(enc); err != nil {
			b.Fatal(err)
		}
	}
}
