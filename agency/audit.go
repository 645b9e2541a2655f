package agency

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"lottery/audit"
	"lottery/csvrow"
	"lottery/logline"
	"lottery/protocol"
)

// The agency's side of the audit log (docs/audit.md): with the log's
// public key (Config.LogKey) it asks for receipts in its Hello, checks each
// ack's receipt before it counts the batch as acked (the checkpoint's
// signature, that the tree only grew, that its own batch, hashed from its
// own rows, is in it), keeps them in its receipts file, and checks the
// signed draw statement against what it knows. The first check that fails
// is final: the agency says so (verificar_recibo or verificar_sorteo, at
// ERROR) and stops trusting that central.
type auditLog struct {
	key  note.Verifier
	path string
	id   uint32
	v    *audit.Verifier
	w    *audit.ReceiptWriter
	// digests is the SHA-256 of every acked batch's rows, in sequence
	// order: the salt of its winners' hash in the statement. (A batch
	// refused for its bets is stored empty.)
	digests [][32]byte
}

// errDistrust is a receipt or a statement that did not check out: the
// agency stops.
type errDistrust struct{ err error }

func (e *errDistrust) Error() string { return "the central cannot be trusted: " + e.err.Error() }
func (e *errDistrust) Unwrap() error { return e.err }

// openAudit starts the agency's audit log: a new receipts file (one left
// by an earlier run is kept beside it, as <file>.prev-<time>: bin/audit
// reads them all). Nil without a key.
func openAudit(cfg Config) (*auditLog, error) {
	if cfg.LogKey == nil {
		return nil, nil
	}
	l := &auditLog{key: cfg.LogKey, path: cfg.Receipts, id: uint32(cfg.ID)}
	return l, l.start(".prev")
}

// start begins a new receipts file and a new verifier. An earlier file is
// moved aside first, to <file><aside>-<time> (aside ".prev" or
// ".forgotten"; the time to the nanosecond, so that a crash loop's runs
// never take each other's name): nothing the agency was shown is ever
// deleted.
func (l *auditLog) start(aside string) error {
	if l.w != nil {
		l.w.Close()
	}
	aside += "-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	if err := os.Rename(l.path, l.path+aside); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("receipts: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	if l.w, err = audit.NewReceiptWriter(newReceiptsFile(f), l.key.Name(), l.id); err != nil {
		f.Close()
		return fmt.Errorf("receipts: %w", err)
	}
	if l.v, err = audit.NewVerifier(l.key, l.id); err != nil {
		return err
	}
	l.digests = l.digests[:0]
	return nil
}

// receiptsFile is the receipts file behind a 64 KiB buffer: a line per
// ack would be a write per batch. What a crash loses of it (never synced
// before the agency finishes) the agency collects again: the central acks
// a resent batch with its receipt.
type receiptsFile struct {
	f *os.File
	w *bufio.Writer
}

func newReceiptsFile(f *os.File) *receiptsFile {
	return &receiptsFile{f: f, w: bufio.NewWriterSize(f, 64<<10)}
}

func (r *receiptsFile) Write(p []byte) (int, error) { return r.w.Write(p) }

func (r *receiptsFile) Sync() error {
	if err := r.w.Flush(); err != nil {
		return err
	}
	return r.f.Sync()
}

func (r *receiptsFile) Close() error {
	return errors.Join(r.w.Flush(), r.f.Close())
}

// forgotten starts over after a central that forgot acknowledged batches
// (central_olvido): its receipts, the evidence that it had them, are kept
// in <file>.forgotten-<time>, and the central's new history is checked
// from no tree.
func (l *auditLog) forgotten(keep int) error {
	l.digests = l.digests[:min(keep, len(l.digests))]
	kept := l.digests
	err := l.start(".forgotten")
	l.digests = append(l.digests, kept...)
	return err
}

// treeSize is the size of the last tree the agency accepted (for Hello).
func (l *auditLog) treeSize() uint64 {
	if l == nil {
		return 0
	}
	return l.v.Size()
}

// rowsDigester computes the SHA-256 of the rows the central stores for a
// batch frame: the same encoding of the same bets (lottery.Rows, through
// csvrow.AppendBetRow), in a buffer kept from one batch to the next.
type rowsDigester struct{ buf []byte }

func (r *rowsDigester) digest(frame []byte) [32]byte {
	d, err := protocol.DecodeBatch(frame[protocol.HeaderSize:])
	if err != nil {
		return [32]byte{}
	}
	buf := r.buf[:0]
	for b := range d.Bets() {
		buf = csvrow.AppendBetRow(buf, int(d.Agency), b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
	}
	r.buf = buf
	return sha256.Sum256(buf)
}

// acceptBatch checks the receipt of batch seq, of count bets whose rows
// hash to digest, and keeps it.
func (l *auditLog) acceptBatch(receipt []byte, seq uint64, count int, digest [32]byte) error {
	want := audit.Leaf{Kind: audit.KindBatch, Agency: l.id, Seq: seq, Count: uint32(count), Digest: digest}
	if err := l.accept(receipt, want); err != nil {
		return err
	}
	l.digests = append(l.digests, digest)
	return nil
}

// refusedBatch notes a batch refused for its bets: stored empty, its seq
// used up.
func (l *auditLog) refusedBatch() { l.digests = append(l.digests, sha256.Sum256(nil)) }

// acceptFinished checks the receipt of the agency's "finished after batch
// lastSeq".
func (l *auditLog) acceptFinished(receipt []byte, lastSeq uint64) error {
	return l.accept(receipt, audit.FinishedLeaf(l.id, lastSeq))
}

func (l *auditLog) accept(receipt []byte, want audit.Leaf) error {
	if len(receipt) == 0 {
		return &errDistrust{fmt.Errorf("the ack of %s carries no receipt", want)}
	}
	r, err := audit.DecodeReceipt(receipt)
	if err != nil {
		return &errDistrust{err}
	}
	stored, err := l.v.Accept(r, want)
	if err != nil {
		return &errDistrust{err}
	}
	return l.w.Record(stored)
}

// statement checks the signed draw statement (with the consistency proof
// from the agency's last tree) against what the agency knows, and keeps
// it.
func (l *auditLog) statement(blob []byte, lastSeq uint64, bets int, winners []string) (audit.Statement, error) {
	if len(blob) < 4 {
		return audit.Statement{}, &errDistrust{errors.New("the winners came without the signed draw statement")}
	}
	n := binary.BigEndian.Uint32(blob)
	rest := blob[4:]
	if uint64(n) > uint64(len(rest)) || uint64(n) > audit.MaxStatementSize {
		return audit.Statement{}, &errDistrust{fmt.Errorf("a draw statement of %d bytes in %d", n, len(rest))}
	}
	msg, rest := rest[:n], rest[n:]
	if len(rest) < 1 || len(rest) != 1+int(rest[0])*tlog.HashSize {
		return audit.Statement{}, &errDistrust{errors.New("the draw statement's consistency proof is malformed")}
	}
	proof := make([]tlog.Hash, rest[0])
	for i := range proof {
		copy(proof[i][:], rest[1+i*tlog.HashSize:])
	}
	own := audit.OwnResult{Agency: l.id, LastSeq: lastSeq, Bets: uint64(bets), Winners: winners, Salt: audit.AgencySalt(l.digests)}
	st, err := l.v.VerifyStatement(msg, proof, own)
	if err != nil {
		return st, &errDistrust{err}
	}
	return st, l.w.Statement(msg)
}

func (l *auditLog) close() error {
	if l == nil || l.w == nil {
		return nil
	}
	return l.w.Close()
}

// logDistrust writes the line of a receipt or statement that failed.
func (a *Agency) logDistrust(action string, err error, attrs ...any) {
	a.log.Error(action, append([]any{logline.Failed, "agency", a.cfg.ID, "error", err}, attrs...)...)
}
