package audit

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ParseVerifierKey reads the log's public key from its text, as
// `.pki/log.pub` holds it ("<name>+<hash>+<key>", one line).
func ParseVerifierKey(text string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(text))
	if err != nil {
		return nil, malformed("verifier key", "%v", err)
	}
	return v, nil
}

// Verifier is an agency's view of the log: the last checkpoint it accepted,
// and whether it still trusts the central. It checks every receipt the
// central acks with: a new checkpoint's signature, that the tree only grew
// since the last one (a fork or a shrink is caught here, as the ack
// arrives), and that the agency's own leaf, which it hashed from its own
// rows, is in it. Once a check fails it refuses everything after: a central
// caught once is not believed again. It is safe for concurrent use.
type Verifier struct {
	key    note.Verifier
	agency uint32

	mu     sync.Mutex
	last   SignedCheckpoint // Size 0 and no Note: none yet
	failed error            // the first check that failed
}

// Stored is what the agency keeps of an accepted receipt: a line of its
// receipts file (ReceiptWriter.Record), and the checkpoint line before it
// when the receipt brought a new checkpoint.
type Stored struct {
	Kind       LeafKind  // KindBatch or KindFinished
	Seq        uint64    // the batch; for a finished, the last batch
	Count      uint32    // bets in the batch
	Leaf       uint64    // the leaf's index
	TreeSize   uint64    // the size of the checkpoint it was proven in
	LeafHash   tlog.Hash // what the agency hashed itself
	Checkpoint []byte    // the new signed checkpoint; nil when the receipt reused the previous one
}

// NewVerifier returns agency's verifier of the log whose public key is key
// (ParseVerifierKey, or pki.ReadLogVerifier).
func NewVerifier(key note.Verifier, agency uint32) (*Verifier, error) {
	if key == nil || agency == 0 {
		return nil, fmt.Errorf("audit: a verifier needs the log's key and an agency (got agency %d)", agency)
	}
	return &Verifier{key: key, agency: agency}, nil
}

// Resume starts a new verifier from a checkpoint the agency accepted
// before (the last one of its receipts file), after verifying its
// signature again: an agency that restarts goes on checking that the tree
// only grows from where it left off, and tells the central that size.
func (v *Verifier) Resume(signed []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.failed != nil {
		return v.distrusted()
	}
	if v.last.Note != nil {
		return fmt.Errorf("audit: resume a verifier that already holds a checkpoint (%s)", v.last.Checkpoint)
	}
	c, err := OpenCheckpoint(signed, v.key)
	if err != nil {
		return v.fail(relabel(err, "the checkpoint to resume from", ""))
	}
	v.last = SignedCheckpoint{Checkpoint: c, Note: append([]byte(nil), signed...)}
	return nil
}

// Last is the last checkpoint accepted; ok is false before the first.
func (v *Verifier) Last() (sc SignedCheckpoint, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last, v.last.Note != nil
}

// Size is the size of the last checkpoint accepted (0: none): what the
// central must prove consistency from.
func (v *Verifier) Size() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last.Size
}

// Err is the check that made the verifier stop trusting the central; nil
// while it trusts it.
func (v *Verifier) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.failed
}

// Accept checks the receipt of the agency's leaf want (BatchLeaf of the
// rows it sent, or FinishedLeaf) and returns what to keep of it. It checks,
// in order: that the receipt is for want; the new checkpoint's signature
// (a receipt with none refers to the last one accepted); that the tree
// grew from the last checkpoint accepted (CheckConsistency: a smaller tree
// is ErrShrank, one of the same size with another root ErrFork, a failed
// proof ErrNotConsistent); that want's hash is at r.Leaf in it
// (ErrNotIncluded). The error names what failed and where.
func (v *Verifier) Accept(r Receipt, want Leaf) (Stored, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.failed != nil {
		return Stored{}, v.distrusted()
	}
	s, next, err := v.check(r, want)
	if err != nil {
		return Stored{}, v.fail(err)
	}
	v.last = next
	return s, nil
}

// check does Accept's checks without changing v.
func (v *Verifier) check(r Receipt, want Leaf) (Stored, SignedCheckpoint, error) {
	subject := want.String()
	what := "the receipt of " + subject
	switch {
	case want.Kind != KindBatch && want.Kind != KindFinished:
		return Stored{}, SignedCheckpoint{}, malformed(what, "an agency is acked batches and finished only, not %s", want.Kind)
	case want.Agency != v.agency:
		return Stored{}, SignedCheckpoint{}, malformed(what, "this is agency %d's verifier", v.agency)
	case r.Seq != want.Seq:
		return Stored{}, SignedCheckpoint{}, malformed(what, "the receipt is for batch %d", r.Seq)
	}
	next, err := v.checkpointOf(r, subject)
	if err != nil {
		return Stored{}, SignedCheckpoint{}, err
	}
	if err := CheckConsistency(r.Consistency, v.last.Checkpoint, next.Checkpoint); err != nil {
		return Stored{}, SignedCheckpoint{}, relabel(err, "", "the checkpoint of "+subject)
	}
	h := want.Hash()
	if err := checkInclusion(r.Inclusion, next.Checkpoint, r.Leaf, h, "inclusion of "+subject); err != nil {
		return Stored{}, SignedCheckpoint{}, err
	}
	s := Stored{Kind: want.Kind, Seq: want.Seq, Count: want.Count, Leaf: r.Leaf, TreeSize: next.Size, LeafHash: h}
	if !bytes.Equal(next.Note, v.last.Note) {
		s.Checkpoint = next.Note
	}
	return s, next, nil
}

// checkpointOf opens the receipt's checkpoint, or takes the last one when
// the receipt has none, and checks that the receipt proves consistency
// from the size v holds.
func (v *Verifier) checkpointOf(r Receipt, subject string) (SignedCheckpoint, error) {
	if len(r.Checkpoint) == 0 {
		switch {
		case v.last.Note == nil:
			return SignedCheckpoint{}, malformed("the receipt of "+subject, "no checkpoint, and none was accepted before")
		case r.OldSize != v.last.Size || len(r.Consistency) != 0:
			return SignedCheckpoint{}, malformed("the receipt of "+subject, "no checkpoint, yet old size %d and a consistency proof of %d hashes (this agency holds %d leaves)",
				r.OldSize, len(r.Consistency), v.last.Size)
		}
		return v.last, nil
	}
	c, err := OpenCheckpoint(r.Checkpoint, v.key)
	if err != nil {
		return SignedCheckpoint{}, relabel(err, "the checkpoint of "+subject, "")
	}
	if r.OldSize != v.last.Size {
		return SignedCheckpoint{}, failf(ErrNotConsistent, fmt.Sprintf("consistency from size %d to %d", v.last.Size, c.Size), "the checkpoint of "+subject,
			"the central proves from size %d, but this agency's last checkpoint has %d leaves", r.OldSize, v.last.Size)
	}
	return SignedCheckpoint{Checkpoint: c, Note: append([]byte(nil), r.Checkpoint...)}, nil
}

func (v *Verifier) fail(err error) error {
	v.failed = err
	return err
}

func (v *Verifier) distrusted() error {
	return failf(ErrDistrusted, "receipt", "", "%v", v.failed)
}

// VerifyStatement opens the signed draw statement with the log's key and
// checks it as the agency can (the package's VerifyStatement) against the
// last checkpoint the verifier accepted; consistency is the central's proof
// from that size to the statement's. A failure is final, like Accept's.
func (v *Verifier) VerifyStatement(msg []byte, consistency []tlog.Hash, own OwnResult) (Statement, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.failed != nil {
		return Statement{}, v.distrusted()
	}
	st, err := OpenStatement(msg, v.key)
	if err != nil {
		return Statement{}, v.fail(err)
	}
	own.Agency = v.agency
	if err := VerifyStatement(st, own, v.last.Checkpoint, consistency); err != nil {
		return Statement{}, v.fail(err)
	}
	return st, nil
}
