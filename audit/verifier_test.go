package audit_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"lottery/audit"
)

// central is the central's side of a log, for verifier tests.
type central struct {
	t      testing.TB
	tree   audit.Tree
	signer note.Signer
}

func newCentral(t testing.TB, signer note.Signer) *central {
	c := &central{t: t, signer: signer}
	c.add(audit.BaseLeaf(0, nil))
	return c
}

func (c *central) add(l audit.Leaf) uint64 {
	c.t.Helper()
	i := c.tree.Size()
	if err := c.tree.AppendLeaf(l); err != nil {
		c.t.Fatal(err)
	}
	return i
}

func (c *central) sign() audit.SignedCheckpoint {
	c.t.Helper()
	cp, err := audit.NewSignedCheckpoint(&c.tree, testOrigin, c.tree.Size(), c.signer)
	if err != nil {
		c.t.Fatal(err)
	}
	return cp
}

func (c *central) receipt(seq, leaf uint64, cp audit.SignedCheckpoint, old uint64) audit.Receipt {
	c.t.Helper()
	r, err := audit.NewReceipt(&c.tree, seq, leaf, cp, old)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// batch is agency 1's batch seq, as both sides hash it.
func batch(seq uint64) audit.Leaf {
	return audit.BatchLeaf(1, seq, 2, []byte(strings.Repeat("1,Ana,Paz,01234567,1990-05-17,7574\r\n", int(seq))))
}

func newTestVerifier(t testing.TB, key note.Verifier) *audit.Verifier {
	t.Helper()
	v, err := audit.NewVerifier(key, 1)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifier_AcceptOK(t *testing.T) {
	signer, key := testKey(t, testOrigin, 1)
	c := newCentral(t, signer)
	v := newTestVerifier(t, key)
	for seq := uint64(1); seq <= 6; seq++ {
		leaf := c.add(batch(seq))
		c.add(audit.BatchLeaf(2, seq, 1, []byte("another agency's")))
		cp := c.sign()
		s, err := v.Accept(c.receipt(seq, leaf, cp, v.Size()), batch(seq))
		if err != nil {
			t.Fatalf("batch %d: %v", seq, err)
		}
		want := audit.Stored{Kind: audit.KindBatch, Seq: seq, Count: 2, Leaf: leaf, TreeSize: cp.Size, LeafHash: batch(seq).Hash(), Checkpoint: cp.Note}
		if !storedEqual(s, want) {
			t.Errorf("batch %d stored %+v, want %+v", seq, s, want)
		}
		if v.Size() != cp.Size {
			t.Errorf("verifier at size %d, want %d", v.Size(), cp.Size)
		}
	}
	// A second record of the same group commit: the same checkpoint, left
	// out of its receipt.
	leaf := c.add(audit.FinishedLeaf(1, 6))
	cp := c.sign()
	if _, err := v.Accept(c.receipt(6, leaf, cp, v.Size()), audit.FinishedLeaf(1, 6)); err != nil {
		t.Fatal(err)
	}
	s, err := v.Accept(c.receipt(6, leaf, cp, v.Size()), audit.FinishedLeaf(1, 6))
	if err != nil || s.Checkpoint != nil || s.TreeSize != cp.Size {
		t.Errorf("a receipt reusing the checkpoint: stored %+v, %v", s, err)
	}
	if last, ok := v.Last(); !ok || !bytes.Equal(last.Note, cp.Note) || v.Err() != nil {
		t.Errorf("last %+v %v, err %v", last.Checkpoint, ok, v.Err())
	}
}

func storedEqual(a, b audit.Stored) bool {
	return a.Kind == b.Kind && a.Seq == b.Seq && a.Count == b.Count && a.Leaf == b.Leaf &&
		a.TreeSize == b.TreeSize && a.LeafHash == b.LeafHash && bytes.Equal(a.Checkpoint, b.Checkpoint)
}

// TestVerifier_AcceptErr: every way a receipt can lie is caught with its
// sentinel and a message naming what and where; the verifier then refuses
// even an honest receipt.
func TestVerifier_AcceptErr(t *testing.T) {
	signer, key := testKey(t, testOrigin, 1)
	otherSigner, _ := testKey(t, testOrigin, 2)
	tests := []struct {
		name  string
		bad   func(c *central, v *audit.Verifier) (audit.Receipt, audit.Leaf)
		want  error
		words []string
	}{
		{"ErrBadSignature", func(c *central, v *audit.Verifier) (audit.Receipt, audit.Leaf) {
			leaf := c.add(batch(2))
			r := c.receipt(2, leaf, c.sign(), v.Size())
			r.Checkpoint = bytes.Clone(r.Checkpoint)
			r.Checkpoint[len(r.Checkpoint)-5] ^= 1 // a base64 letter of the signature
			return r, batch(2)
		}, audit.ErrBadSignature, []string{"the checkpoint of batch 2 of agency 1", "does not verify"}},
		{"ErrWrongKey", func(c *central, v *audit.Verifier) (audit.Receipt, audit.Leaf) {
			leaf := c.add(batch(2))
			cp := c.sign()
			r := c.receipt(2, leaf, cp, v.Size())
			r.Checkpoint, _ = audit.Sign(cp.Checkpoint, otherSigner)
			return r, batch(2)
		}, audit.ErrWrongKey, []string{"signed by " + testOrigin + "+"}},
		{"ErrShrank", func(c *central, v *audit.Verifier) (audit.Receipt, audit.Leaf) {
			r := c.receipt(1, 1, c.signAt(2), 0)
			r.OldSize = v.Size()
			return r, batch(1)
		}, audit.ErrShrank, []string{"consistency from size 4 to 2"}},
		{"ErrFork", func(c *central, v *audit.Verifier) (audit.Receipt, audit.Leaf) {
			// Another history of the same size, holding batch 1 at leaf 1.
			f := newCentral(t, signer)
			f.add(batch(1))
			f.add(audit.BatchLeaf(2, 1, 1, []byte("another")))
			f.add(audit.BatchLeaf(3, 1, 1, []byte("forged")))
			r := f.receipt(1, 1, f.sign(), 0)
			r.OldSize = v.Size()
			return r, batch(1)
		}, audit.ErrFork, []string{"consistency from size 4 to 4", "a fork"}},
		{"ErrNotConsistentRewritten", func(c *central, v *audit.Verifier) (audit.Receipt, audit.Leaf) {
			f := newCentral(t, signer)
			f.add(batch(1))
			f.add(audit.BatchLeaf(2, 1, 1, []byte("rewritten")))
			f.add(audit.BatchLeaf(2, 2, 1, []byte("rewritten")))
			leaf := f.add(batch(2))
			return f.receipt(2, leaf, f.sign(), v.Size()), batch(2)
		}, audit.ErrNotConsistent, []string{"consistency from size 4 to 5"}},
		{"ErrNotConsistentFromElsewhere", func(c *central, v *audit.Verifier) (audit.Receipt, audit.Leaf) {
			leaf := c.add(batch(2))
			return c.receipt(2, leaf, c.sign(), 0), batch(2)
		}, audit.ErrNotConsistent, []string{"proves from size 0", "has 4 leaves"}},
		{"ErrNotIncludedAltered", func(c *central, v *audit.Verifier) (audit.Receipt, audit.Leaf) {
			c.add(audit.BatchLeaf(1, 2, 2, []byte("not the agency's rows")))
			return c.receipt(2, 4, c.sign(), v.Size()), batch(2)
		}, audit.ErrNotIncluded, []string{"inclusion of batch 2 of agency 1", "leaf 4 in tree 5"}},
		{"ErrNotIncludedOtherLeaf", func(c *central, v *audit.Verifier) (audit.Receipt, audit.Leaf) {
			c.add(batch(2))
			return c.receipt(2, 3, c.sign(), v.Size()), batch(2)
		}, audit.ErrNotIncluded, []string{"leaf 3 in tree 5"}},
		{"ErrMalformedOtherSeq", func(c *central, v *audit.Verifier) (audit.Receipt, audit.Leaf) {
			leaf := c.add(batch(2))
			return c.receipt(3, leaf, c.sign(), v.Size()), batch(2)
		}, audit.ErrMalformed, []string{"for batch 3"}},
		{"ErrMalformedOtherAgency", func(c *central, v *audit.Verifier) (audit.Receipt, audit.Leaf) {
			l := audit.BatchLeaf(2, 2, 1, []byte("x"))
			leaf := c.add(l)
			return c.receipt(2, leaf, c.sign(), v.Size()), l
		}, audit.ErrMalformed, []string{"agency 1's verifier"}},
		{"ErrMalformedConsistencyWithoutCheckpoint", func(c *central, v *audit.Verifier) (audit.Receipt, audit.Leaf) {
			r := c.receipt(1, 1, c.signAt(4), v.Size())
			r.OldSize = 2
			return r, batch(1)
		}, audit.ErrMalformed, []string{"no checkpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCentral(t, signer)
			v := newTestVerifier(t, key)
			leaf := c.add(batch(1))
			c.add(audit.BatchLeaf(2, 1, 1, []byte("another")))
			c.add(audit.BatchLeaf(3, 1, 1, []byte("a third")))
			if _, err := v.Accept(c.receipt(1, leaf, c.sign(), 0), batch(1)); err != nil {
				t.Fatal(err)
			}
			r, want := tt.bad(c, v)
			_, err := v.Accept(wire(t, r), want)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			if !errors.Is(v.Err(), tt.want) {
				t.Errorf("Err() = %v", v.Err())
			}
			// An honest receipt is refused now.
			honest := newCentral(t, signer)
			l := honest.add(batch(1))
			if _, err := v.Accept(honest.receipt(1, l, honest.sign(), 0), batch(1)); !errors.Is(err, audit.ErrDistrusted) || !strings.Contains(err.Error(), tt.want.Error()) {
				t.Errorf("after a failure: %v", err)
			}
		})
	}
}

// signAt signs the tree's first size leaves, as a central lagging or lying
// about its size would.
func (c *central) signAt(size uint64) audit.SignedCheckpoint {
	c.t.Helper()
	cp, err := audit.NewSignedCheckpoint(&c.tree, testOrigin, size, c.signer)
	if err != nil {
		c.t.Fatal(err)
	}
	return cp
}

func TestVerifier_Resume(t *testing.T) {
	signer, key := testKey(t, testOrigin, 1)
	c := newCentral(t, signer)
	v := newTestVerifier(t, key)
	leaf := c.add(batch(1))
	s, err := v.Accept(c.receipt(1, leaf, c.sign(), 0), batch(1))
	if err != nil {
		t.Fatal(err)
	}
	// The agency restarts: a new verifier from its receipts file's last
	// checkpoint, which the central proves from.
	v2 := newTestVerifier(t, key)
	if err := v2.Resume(s.Checkpoint); err != nil {
		t.Fatal(err)
	}
	if v2.Size() != s.TreeSize {
		t.Fatalf("resumed at %d, want %d", v2.Size(), s.TreeSize)
	}
	leaf = c.add(batch(2))
	if _, err := v2.Accept(c.receipt(2, leaf, c.sign(), v2.Size()), batch(2)); err != nil {
		t.Fatal(err)
	}
	t.Run("ErrTwice", func(t *testing.T) {
		if err := v2.Resume(s.Checkpoint); err == nil {
			t.Error("resumed a verifier holding a checkpoint")
		}
	})
	t.Run("ErrOtherKey", func(t *testing.T) {
		other, _ := testKey(t, testOrigin, 2)
		msg, _ := audit.Sign(audit.Checkpoint{Origin: testOrigin, Size: 1, Root: hashOf("x")}, other)
		v3 := newTestVerifier(t, key)
		if err := v3.Resume(msg); !errors.Is(err, audit.ErrWrongKey) || !errors.Is(v3.Err(), audit.ErrWrongKey) {
			t.Errorf("err %v", err)
		}
	})
}

func TestNewVerifier_Err(t *testing.T) {
	_, key := testKey(t, testOrigin, 1)
	if _, err := audit.NewVerifier(key, 0); err == nil {
		t.Error("agency 0")
	}
	if _, err := audit.NewVerifier(nil, 1); err == nil {
		t.Error("no key")
	}
}

func TestParseVerifierKey(t *testing.T) {
	_, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 32)), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.ParseVerifierKey(vkey + "\n")
	if err != nil || v.Name() != testOrigin {
		t.Fatalf("%v, %v", v, err)
	}
	if _, err := audit.ParseVerifierKey("PRIVATE+KEY+" + vkey); !errors.Is(err, audit.ErrMalformed) {
		t.Errorf("err %v", err)
	}
}

// TestVerifier_VerifyStatement: the agency's check of the draw, through
// the verifier that holds its last checkpoint; a failure is final.
func TestVerifier_VerifyStatement(t *testing.T) {
	d := newDraw(t, smallDraw)
	a := d.agencies[0]
	proof, err := audit.ProveConsistency(&d.tree, a.ver.Size(), d.tree.Size())
	if err != nil {
		t.Fatal(err)
	}
	winners := winnersOf(d.rows, len(d.agencies), d.stmt.Number)[0]
	own := audit.OwnResult{LastSeq: a.lastSeq, Bets: a.bets, Winners: winners, Salt: audit.AgencySalt(a.digests)}
	if st, err := a.ver.VerifyStatement(d.signed, proof, own); err != nil || st.Number != d.stmt.Number {
		t.Fatalf("statement %+v, %v", st, err)
	}
	wrong := own
	wrong.Winners = winners[1:]
	if _, err := a.ver.VerifyStatement(d.signed, proof, wrong); !errors.Is(err, audit.ErrMismatch) || !strings.Contains(err.Error(), "agency 1's line") {
		t.Fatalf("err %v", err)
	}
	if _, err := a.ver.VerifyStatement(d.signed, proof, own); !errors.Is(err, audit.ErrDistrusted) {
		t.Errorf("after a failure: %v", err)
	}
	b := d.agencies[1]
	if _, err := b.ver.VerifyStatement(d.signed, nil, audit.OwnResult{}); !errors.Is(err, audit.ErrNotConsistent) {
		t.Errorf("no consistency proof: %v", err)
	}
}
