// Package audit makes a draw checkable by anyone, the central included:
// every acknowledged journal record is a leaf of an append-only Merkle tree
// (a transparency log, golang.org/x/mod/sumdb/tlog); the central signs a
// checkpoint of that tree per group commit (C2SP tlog-checkpoint text inside
// a golang.org/x/mod/sumdb/note signature); every ack carries a Receipt that
// the agency's Verifier checks (inclusion of its batch, consistency with the
// last checkpoint it accepted) and keeps in a receipts file; the draw is a
// signed Statement; and Audit re-verifies a whole draw offline from the
// files, the public key and any agency's receipts.
//
// The package is pure, like the domain: no files, no network, no clock, only
// io.Reader and io.Writer. It builds no cryptography of its own: hashes,
// proofs and signatures are tlog's and note's; what it adds is the
// lottery's meaning (what a leaf says, what a statement says) and strict
// parsers, so that every signed or hashed thing has exactly one spelling.
// docs/audit.md has the threat model, the formats and the auditor's steps.
package audit

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors: every error of this package wraps one of them in an
// *Error, so callers decide with errors.Is and log the *Error's detail.
var (
	// ErrMalformed: bytes or text that do not parse as the format says, or
	// a value out of its bounds.
	ErrMalformed = errors.New("malformed")
	// ErrBadSignature: a note signed by the log's key name and key hash
	// whose signature does not verify.
	ErrBadSignature = errors.New("bad signature")
	// ErrWrongKey: a note not signed by the log's key at all (another key,
	// maybe of the same name): it proves nothing about this log.
	ErrWrongKey = errors.New("not signed by the log's key")
	// ErrNotIncluded: an inclusion proof that does not put the leaf at its
	// index in the signed tree.
	ErrNotIncluded = errors.New("not included in the signed tree")
	// ErrNotConsistent: a consistency proof that does not show the earlier
	// tree as a prefix of the later one: the log was rewritten.
	ErrNotConsistent = errors.New("not consistent with the earlier tree")
	// ErrShrank: a signed tree smaller than one signed before: leaves the
	// central acknowledged are gone.
	ErrShrank = errors.New("the signed tree shrank")
	// ErrFork: a signed tree whose root is not that of another tree of the
	// same size, signed or recomputed from the files: the log's key vouched
	// for two histories.
	ErrFork = errors.New("a fork: two histories under the log's key")
	// ErrMismatch: a signed or acknowledged value that differs from what
	// the files recompute.
	ErrMismatch = errors.New("does not match what the files recompute")
	// ErrMissing: something acknowledged or required that the log or the
	// statement lacks.
	ErrMissing = errors.New("missing")
	// ErrDistrusted: a Verifier that already failed a check refuses
	// everything after it: the agency no longer trusts that central.
	ErrDistrusted = errors.New("an earlier check failed: the central is no longer trusted")
)

// Error is the package's domain error: which check failed (Err, a
// sentinel), on what (What: "inclusion of batch 7 of agency 2"), where
// (Where: "leaf 41 in tree 64", "agency-2.receipts line 9") and what was
// found (Detail). An agency logs it whole; an auditor prints it as a line of
// the Report.
type Error struct {
	Err    error  // one of the sentinels above
	What   string // the thing checked
	Where  string // where it is; may be empty
	Detail string // what was found, when the sentinel alone does not say; may be empty
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("audit: ")
	b.WriteString(e.What)
	if e.Where != "" {
		b.WriteString(" at ")
		b.WriteString(e.Where)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrFork) and its like work.
func (e *Error) Unwrap() error { return e.Err }

// failf builds an *Error whose Detail is formatted.
func failf(sentinel error, what, where, format string, args ...any) *Error {
	return &Error{Err: sentinel, What: what, Where: where, Detail: fmt.Sprintf(format, args...)}
}

// fail builds an *Error with no Detail.
func fail(sentinel error, what, where string) *Error {
	return &Error{Err: sentinel, What: what, Where: where}
}

// malformed is the error of a parser: what could not be read, and why.
func malformed(what, format string, args ...any) *Error {
	return failf(ErrMalformed, what, "", format, args...)
}

// relabel sets the What (when what is not empty) and the Where (when where
// is not empty) of err, an *Error, to name what a caller was checking.
func relabel(err error, what, where string) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	c := *e
	if what != "" {
		c.What = what
	}
	if where != "" {
		c.Where = where
	}
	return &c
}
