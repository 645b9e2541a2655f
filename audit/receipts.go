package audit

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"

	"golang.org/x/mod/sumdb/tlog"
)

// An agency keeps its receipts in a small append-only text file
// (.data/agency-N.receipts by default), one line per accepted thing,
// readable by a person and by ReadReceipts:
//
//	lottery-receipts v1
//	origin <the log's origin>
//	agency <n>
//	checkpoint <the signed checkpoint note, in base64>            when a receipt brings a new one
//	batch <seq> <count> <leaf> <tree size> <leaf hash in base64>   per acked batch
//	finished <last seq> <leaf> <tree size> <leaf hash in base64>   once, when finished is acked
//	statement <the signed draw statement, in base64>               once, at the end
//
// A batch or finished line's tree size is that of the checkpoint line
// before it, whose tree holds the leaf. The file holds no rows digest and
// no document: a leaf hash reveals nothing of the bets, so the file can be
// handed to anyone. With the log's public key it proves what the central
// signed; Audit compares it with the files.
const (
	receiptsMagic = "lottery-receipts v1"
	// maxReceiptsLine bounds a line: a statement line is the longest.
	maxReceiptsLine = len("statement ") + (MaxStatementSize+2)/3*4 + 1
)

// Words that start the lines of a receipts file.
const (
	lineOrigin     = "origin"
	lineAgency     = "agency"
	lineCheckpoint = "checkpoint"
	lineBatch      = "batch"
	lineFinished   = "finished"
	lineStatement  = "statement"
)

// ReceiptFile is a receipts file read back. Checkpoints are parsed but not
// verified (the file holds no key): Audit verifies them.
type ReceiptFile struct {
	Origin      string
	Agency      uint32
	Checkpoints []FileCheckpoint
	Records     []FileRecord // batch and finished lines, in file order
	Statement   []byte       // the signed statement; nil before the draw
	// StatementLine is the statement's line number (from 1); 0 if none.
	StatementLine int
}

// FileCheckpoint is a checkpoint line.
type FileCheckpoint struct {
	Line       int        // from 1
	Note       []byte     // the signed note
	Checkpoint Checkpoint // its body, unverified
}

// FileRecord is a batch or finished line.
type FileRecord struct {
	Line     int // from 1
	Kind     LeafKind
	Seq      uint64
	Count    uint32 // 0 for finished
	Leaf     uint64
	TreeSize uint64
	Hash     tlog.Hash
}

// LastCheckpoint is the last checkpoint line; ok is false if there is
// none. Verifier.Resume starts from it.
func (f *ReceiptFile) LastCheckpoint() (c FileCheckpoint, ok bool) {
	if len(f.Checkpoints) == 0 {
		return FileCheckpoint{}, false
	}
	return f.Checkpoints[len(f.Checkpoints)-1], true
}

// ReadReceipts parses a receipts file strictly. A line that does not
// parse stops it: the error (an *Error naming the line) comes with the file
// as read up to that line, so an auditor still checks what is there, and an
// agency that crashed while appending sees where its file was cut.
func ReadReceipts(r io.Reader) (*ReceiptFile, error) {
	p := receiptsParser{sc: bufio.NewScanner(r), f: &ReceiptFile{}}
	p.sc.Buffer(make([]byte, 0, 4096), maxReceiptsLine+1)
	p.sc.Split(scanLines)
	err := p.parse()
	if err != nil && p.f.Agency == 0 {
		return nil, err // not even a header
	}
	return p.f, err
}

type receiptsParser struct {
	sc   *bufio.Scanner
	f    *ReceiptFile
	line int
}

func (p *receiptsParser) parse() error {
	header := []func([]byte) bool{
		func(b []byte) bool { return string(b) == receiptsMagic },
		func(b []byte) bool {
			f, ok := fields(b, lineOrigin, "")
			if ok && checkOrigin(string(f[1])) == nil {
				p.f.Origin = string(f[1])
				return true
			}
			return false
		},
		func(b []byte) bool {
			f, ok := fields(b, lineAgency, "")
			var n uint64
			if ok {
				n, ok = parseDecimal(f[1], math.MaxUint32)
			}
			p.f.Agency = uint32(n)
			return ok && n > 0
		},
	}
	wants := []string{receiptsMagic, "origin <origin>", "agency <n>"}
	for i, check := range header {
		b, err := p.next()
		if err == io.EOF {
			return p.bad("ends before its header line %q", wants[i])
		}
		if err != nil {
			return err
		}
		if !check(b) {
			return p.bad("%q, want %q", b, wants[i])
		}
	}
	for {
		b, err := p.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if p.f.Statement != nil {
			return p.bad("a line after the statement")
		}
		if err := p.body(b); err != nil {
			return err
		}
	}
}

// next returns the next line without its newline; a last line without one
// is an error (a torn append).
func (p *receiptsParser) next() ([]byte, error) {
	if !p.sc.Scan() {
		if err := p.sc.Err(); err != nil {
			p.line++
			if errors.Is(err, bufio.ErrTooLong) {
				return nil, p.bad("longer than %d bytes", maxReceiptsLine)
			}
			if errors.Is(err, errTornLine) {
				return nil, p.bad("cut short: no newline at the end of the file")
			}
			return nil, fmt.Errorf("audit: read receipts: %w", err)
		}
		return nil, io.EOF
	}
	p.line++
	return p.sc.Bytes(), nil
}

func (p *receiptsParser) body(b []byte) error {
	word, _, _ := bytes.Cut(b, []byte(" "))
	switch string(word) {
	case lineCheckpoint:
		return p.checkpoint(b)
	case lineBatch, lineFinished:
		return p.record(b)
	case lineStatement:
		f, ok := fields(b, lineStatement, "")
		var msg []byte
		if ok {
			msg, ok = decodeBase64(f[1], MaxStatementSize)
		}
		if !ok {
			return p.bad("not \"statement <base64 of at most %d bytes>\"", MaxStatementSize)
		}
		p.f.Statement, p.f.StatementLine = msg, p.line
		return nil
	}
	return p.bad("unknown line %q", word)
}

func (p *receiptsParser) checkpoint(b []byte) error {
	f, ok := fields(b, lineCheckpoint, "")
	var msg []byte
	if ok {
		msg, ok = decodeBase64(f[1], MaxCheckpointSize)
	}
	if !ok {
		return p.bad("not \"checkpoint <base64 of at most %d bytes>\"", MaxCheckpointSize)
	}
	text, err := noteText(msg)
	if err != nil {
		return p.bad("%v", err)
	}
	c, err := ParseCheckpoint([]byte(text))
	if err != nil {
		return p.bad("%v", err)
	}
	if c.Origin != p.f.Origin {
		return p.bad("a checkpoint of %q in a file of %q", c.Origin, p.f.Origin)
	}
	p.f.Checkpoints = append(p.f.Checkpoints, FileCheckpoint{Line: p.line, Note: msg, Checkpoint: c})
	return nil
}

func (p *receiptsParser) record(b []byte) error {
	r, ok := parseRecordLine(b)
	if !ok {
		return p.bad("not \"batch <seq> <count> <leaf> <tree size> <hash>\" nor \"finished <seq> <leaf> <tree size> <hash>\"")
	}
	last, has := p.f.LastCheckpoint()
	switch {
	case !has:
		return p.bad("a %s line before any checkpoint", r.Kind)
	case r.TreeSize != last.Checkpoint.Size:
		return p.bad("tree size %d, but the checkpoint of line %d has %d leaves", r.TreeSize, last.Line, last.Checkpoint.Size)
	case r.Leaf >= r.TreeSize:
		return p.bad("leaf %d of a tree of %d leaves", r.Leaf, r.TreeSize)
	}
	r.Line = p.line
	p.f.Records = append(p.f.Records, r)
	return nil
}

// parseRecordLine reads a batch or a finished line's fields.
func parseRecordLine(b []byte) (FileRecord, bool) {
	var r FileRecord
	var seq, leaf, size, hash []byte
	if f, ok := fields(b, lineBatch, "", "", "", "", ""); ok {
		count, ok := parseDecimal(f[2], math.MaxUint32)
		if !ok {
			return r, false
		}
		r.Kind, r.Count = KindBatch, uint32(count)
		seq, leaf, size, hash = f[1], f[3], f[4], f[5]
	} else if f, ok := fields(b, lineFinished, "", "", "", ""); ok {
		r.Kind = KindFinished
		seq, leaf, size, hash = f[1], f[2], f[3], f[4]
	} else {
		return r, false
	}
	var ok1, ok2, ok3, ok4 bool
	r.Seq, ok1 = parseDecimal(seq, math.MaxUint64)
	r.Leaf, ok2 = parseDecimal(leaf, maxTreeSize)
	r.TreeSize, ok3 = parseDecimal(size, maxTreeSize)
	r.Hash, ok4 = parseHash(hash)
	return r, ok1 && ok2 && ok3 && ok4
}

func (p *receiptsParser) bad(format string, args ...any) error {
	return failf(ErrMalformed, "receipts file", fmt.Sprintf("line %d", p.line), format, args...)
}

// decodeBase64 reads padded standard base64 in its one spelling, of at
// most limit bytes.
func decodeBase64(b []byte, limit int) ([]byte, bool) {
	if len(b) == 0 || len(b) > (limit+2)/3*4 {
		return nil, false
	}
	out, err := base64.StdEncoding.Strict().AppendDecode(nil, b)
	return out, err == nil && len(out) <= limit && len(out) > 0
}

// errTornLine is scanLines' error for a last line with no newline.
var errTornLine = errors.New("torn line")

// scanLines is bufio.ScanLines without its leniency: a line ends with
// "\n" only (a "\r" stays in it, and fails to parse), and a last line
// without one is an error.
func scanLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return 0, nil, errTornLine
	}
	return 0, nil, nil
}

// ReceiptSink is where a ReceiptWriter appends: an *os.File opened with
// O_APPEND, in the agency.
type ReceiptSink interface {
	io.Writer
	Sync() error
}

// ReceiptWriter appends an agency's receipts to its file, each accepted
// receipt in one Write (its checkpoint line, if new, and its batch or
// finished line), and syncs at the statement and on Close: a crash may lose the last receipts written before a sync, which
// the agency can ask for again, never garble earlier ones. The first write
// error sticks. It is not safe for concurrent use.
type ReceiptWriter struct {
	w      ReceiptSink
	buf    []byte
	err    error
	closed bool
}

// NewReceiptWriter starts a new receipts file on w with its header.
func NewReceiptWriter(w ReceiptSink, origin string, agency uint32) (*ReceiptWriter, error) {
	if err := checkOrigin(origin); err != nil {
		return nil, err
	}
	if agency == 0 {
		return nil, malformed("receipts file", "agency 0")
	}
	rw := &ReceiptWriter{w: w}
	rw.buf = fmt.Appendf(rw.buf[:0], "%s\n%s %s\n%s %d\n", receiptsMagic, lineOrigin, origin, lineAgency, agency)
	return rw, rw.flush()
}

// AppendReceipts goes on appending to a receipts file the agency read back
// with ReadReceipts (and found to be its own, whole): w is positioned at
// its end.
func AppendReceipts(w ReceiptSink) *ReceiptWriter { return &ReceiptWriter{w: w} }

// Record appends what Verifier.Accept returned (synced with the statement
// or on Close).
func (rw *ReceiptWriter) Record(s Stored) error {
	rw.buf = rw.buf[:0]
	if s.Checkpoint != nil {
		rw.buf = append(rw.buf, lineCheckpoint+" "...)
		rw.buf = base64.StdEncoding.AppendEncode(rw.buf, s.Checkpoint)
		rw.buf = append(rw.buf, '\n')
	}
	switch s.Kind {
	case KindBatch:
		rw.buf = fmt.Appendf(rw.buf, "%s %d %d %d %d ", lineBatch, s.Seq, s.Count, s.Leaf, s.TreeSize)
	case KindFinished:
		rw.buf = fmt.Appendf(rw.buf, "%s %d %d %d ", lineFinished, s.Seq, s.Leaf, s.TreeSize)
	default:
		return malformed("receipts file", "a %s receipt", s.Kind)
	}
	rw.buf = base64.StdEncoding.AppendEncode(rw.buf, s.LeafHash[:])
	rw.buf = append(rw.buf, '\n')
	return rw.flush()
}

// Statement appends the signed draw statement the agency verified, and
// syncs.
func (rw *ReceiptWriter) Statement(msg []byte) error {
	rw.buf = append(rw.buf[:0], lineStatement+" "...)
	rw.buf = base64.StdEncoding.AppendEncode(rw.buf, msg)
	rw.buf = append(rw.buf, '\n')
	if err := rw.flush(); err != nil {
		return err
	}
	return rw.Sync()
}

func (rw *ReceiptWriter) flush() error {
	if rw.err != nil {
		return rw.err
	}
	if rw.closed {
		return errors.New("audit: receipts file closed")
	}
	if _, err := rw.w.Write(rw.buf); err != nil {
		rw.err = fmt.Errorf("audit: write receipts: %w", err)
	}
	return rw.err
}

// Sync makes what was appended durable.
func (rw *ReceiptWriter) Sync() error {
	if rw.err != nil {
		return rw.err
	}
	if err := rw.w.Sync(); err != nil {
		rw.err = fmt.Errorf("audit: sync receipts: %w", err)
	}
	return rw.err
}

// Close syncs, then closes the sink if it is an io.Closer; it is safe to
// call twice.
func (rw *ReceiptWriter) Close() error {
	if rw.closed {
		return rw.err
	}
	err := rw.Sync()
	rw.closed = true
	if c, ok := rw.w.(io.Closer); ok {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("audit: close receipts: %w", cerr)
			rw.err = err
		}
	}
	return err
}
