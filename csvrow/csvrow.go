// Package csvrow reads and writes the CSV dialect of the course's Python
// helpers (csv.writer's defaults): comma separated, a field quoted only when
// it holds a comma, a quote or a line break, quotes doubled inside quotes,
// rows ended by CRLF. It reads LF-ended rows too.
//
// It exists instead of encoding/csv for two reasons: encoding/csv also quotes
// fields with a leading space (Python does not, and the bets file must be
// byte-for-byte what store_bets writes), and the draw scans millions of rows,
// which this reader does without allocating per row.
package csvrow

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// AppendField appends one field to dst, quoted only if it must be.
func AppendField[T string | []byte](dst []byte, field T) []byte {
	needs := false
	for i := 0; i < len(field); i++ {
		// The four bytes that need quoting are all at most ',' (0x2C): a
		// letter, a digit or a '-' is above it and costs one comparison.
		if c := field[i]; c <= ',' && (c == ',' || c == '"' || c == '\r' || c == '\n') {
			needs = true
			break
		}
	}
	if !needs {
		return append(dst, field...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(field); i++ {
		if field[i] == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, field[i])
	}
	return append(dst, '"')
}

// AppendBetRow appends one row of the bets file:
// agency,first_name,last_name,document,birthdate,number CRLF.
func AppendBetRow[T string | []byte](dst []byte, agency int, first, last, document, birthdate T, number int) []byte {
	dst = strconv.AppendInt(dst, int64(agency), 10)
	dst = append(dst, ',')
	dst = AppendField(dst, first)
	dst = append(dst, ',')
	dst = AppendField(dst, last)
	dst = append(dst, ',')
	dst = AppendField(dst, document)
	dst = append(dst, ',')
	dst = AppendField(dst, birthdate)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(number), 10)
	return append(dst, '\r', '\n')
}

// ErrQuote reports a quote where the dialect does not allow one, or a
// quoted field that never ends.
var ErrQuote = errors.New("bad quoting")

// Split splits one record (without its line ending) into fields, appending
// them to fields[:0]. Unquoted fields alias line; quoted ones are unquoted
// into scratch, which is returned grown so callers can reuse it.
func Split(line []byte, fields [][]byte, scratch []byte) ([][]byte, []byte, error) {
	fields = fields[:0]
	if bytes.IndexByte(line, '"') < 0 { // the fast path: no quoting at all
		for {
			i := bytes.IndexByte(line, ',')
			if i < 0 {
				return append(fields, line), scratch, nil
			}
			fields = append(fields, line[:i])
			line = line[i+1:]
		}
	}
	scratch = scratch[:0]
	// Quoted fields are unquoted into scratch; remember their bounds and
	// slice scratch only at the end, because appending may move it.
	type span struct {
		quoted     bool
		start, end int
	}
	var spans [16]span
	parts := spans[:0]
	for {
		if len(line) > 0 && line[0] == '"' {
			start := len(scratch)
			line = line[1:]
			for {
				i := bytes.IndexByte(line, '"')
				if i < 0 {
					return fields, scratch, fmt.Errorf("%w: quoted field never ends", ErrQuote)
				}
				scratch = append(scratch, line[:i]...)
				line = line[i+1:]
				if len(line) > 0 && line[0] == '"' { // a doubled quote
					scratch = append(scratch, '"')
					line = line[1:]
					continue
				}
				break
			}
			parts = append(parts, span{true, start, len(scratch)})
			if len(line) == 0 {
				break
			}
			if line[0] != ',' {
				return fields, scratch, fmt.Errorf("%w: text after a closing quote", ErrQuote)
			}
			line = line[1:]
			if len(line) == 0 {
				parts = append(parts, span{})
				break
			}
			continue
		}
		i := bytes.IndexByte(line, ',')
		field := line
		if i >= 0 {
			field = line[:i]
		}
		if bytes.IndexByte(field, '"') >= 0 {
			return fields, scratch, fmt.Errorf("%w: quote inside an unquoted field", ErrQuote)
		}
		start := len(scratch)
		scratch = append(scratch, field...)
		parts = append(parts, span{false, start, len(scratch)})
		if i < 0 {
			break
		}
		line = line[i+1:]
		if len(line) == 0 {
			parts = append(parts, span{})
			break
		}
	}
	for _, p := range parts {
		fields = append(fields, scratch[p.start:p.end:p.end])
	}
	return fields, scratch, nil
}

// ErrTooLong reports a record longer than the Reader's limit (SetMaxRecord).
// The reader has skipped the rest of the record's line without keeping it;
// reading can go on at the next line.
var ErrTooLong = errors.New("record too long")

// Reader reads records from a stream: it skips a UTF-8 byte order mark at
// the start and blank lines, accepts CRLF and LF, a last line without a line
// ending, and quoted fields spanning lines.
type Reader struct {
	r       *bufio.Reader
	max     int // longest record, line ending excluded (0: no limit)
	line    int // line number of the last record's first line
	next    int // line number of the next line to read
	buf     []byte
	fields  [][]byte
	scratch []byte
	offset  int64 // bytes consumed so far
	started bool
}

// NewReader returns a Reader with a buffer of size bytes (64 KiB if 0).
func NewReader(r io.Reader, size int) *Reader {
	if size <= 0 {
		size = 64 << 10
	}
	return &Reader{r: bufio.NewReaderSize(r, size), next: 1}
}

// SetMaxRecord limits records to n bytes, line ending excluded (n <= 0: no
// limit, the default). A longer record is an error wrapping ErrTooLong, and
// the reader goes on at the next line: it skips the rest of the line
// without keeping it, so a file that is one huge line costs no more memory
// than the read buffer. A quoted field left open across lines counts
// towards the limit too; when the limit cuts it, reading resumes at the
// next line.
func (r *Reader) SetMaxRecord(n int) { r.max = max(n, 0) }

// Line returns the line number (from 1) where the last record started.
func (r *Reader) Line() int { return r.line }

// Offset returns how many bytes of the stream the records read so far
// take, their line endings included.
func (r *Reader) Offset() int64 { return r.offset }

// Read returns the next record's fields, valid until the next call. It
// returns io.EOF after the last record. A record with bad quoting returns an
// error wrapping ErrQuote (and no usable fields), one over the limit an
// error wrapping ErrTooLong; reading can go on after either.
func (r *Reader) Read() ([][]byte, error) {
	rec, err := r.ReadRecord()
	if err != nil {
		return nil, err
	}
	var serr error
	r.fields, r.scratch, serr = Split(rec, r.fields, r.scratch)
	return r.fields, serr
}

// ReadRecord returns the next record's bytes, not split into fields and
// without its line ending, valid until the next call; blank lines are
// skipped. It returns io.EOF after the last record. A caller that needs a
// field or two of most records can find them without splitting them all.
func (r *Reader) ReadRecord() ([]byte, error) {
	for {
		rec, err := r.record()
		if err != nil || len(rec) > 0 {
			return rec, err
		}
	}
}

// record returns the next record's bytes without the line ending, joining
// lines while a quote is open.
func (r *Reader) record() ([]byte, error) {
	r.buf = r.buf[:0]
	r.line = r.next
	q := quoteState{atStart: true} // scanned chunk by chunk: never quadratic
	for {
		chunk, err := r.r.ReadSlice('\n')
		r.offset += int64(len(chunk))
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return nil, err
		}
		if !r.started {
			// The first chunk holds the whole first line or a full buffer
			// (at least 16 bytes): a BOM is wholly in it or not there.
			r.started = true
			chunk = bytes.TrimPrefix(chunk, bom) // not part of the first field
		}
		if err == io.EOF && len(chunk) == 0 && len(r.buf) == 0 {
			return nil, io.EOF
		}
		q.scan(chunk)
		// more: the record goes on after chunk (a line longer than the
		// buffer, or a quoted field open at the line's end).
		more := err == bufio.ErrBufferFull || err == nil && q.in
		if r.max > 0 && r.over(r.buf, chunk, more) {
			return nil, r.skipLine(chunk, err, q.in)
		}
		if len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
			r.next++
		}
		if more {
			r.buf = append(r.buf, chunk...)
			continue
		}
		if len(r.buf) == 0 {
			return trimEOL(chunk), nil // the common case: the line is the record, read in place
		}
		r.buf = append(r.buf, chunk...)
		return trimEOL(r.buf), nil
	}
}

// over reports whether a record of the kept bytes plus chunk is over the
// limit. While the record goes on, a CR LF at the end of chunk may still be
// its line ending, so up to 2 bytes are given the benefit of the doubt;
// the record's last chunk is measured exactly — its line ending may have
// started in the kept bytes (a CR at the end of a full buffer, then the LF).
func (r *Reader) over(kept, chunk []byte, more bool) bool {
	size := len(kept) + len(chunk)
	switch {
	case more:
		size -= 2
	case len(chunk) == 1 && chunk[0] == '\n' && len(kept) > 0 && kept[len(kept)-1] == '\r':
		size -= 2
	default:
		size -= len(chunk) - len(trimEOL(chunk))
	}
	return size > r.max
}

// skipLine discards the rest of the line that last (read with err) belongs
// to, without keeping it, and returns the error for the record over the
// limit, or a read error.
func (r *Reader) skipLine(last []byte, err error, quoted bool) error {
	for err == bufio.ErrBufferFull {
		last, err = r.r.ReadSlice('\n')
		r.offset += int64(len(last))
	}
	if len(last) > 0 && last[len(last)-1] == '\n' {
		r.next++
	}
	if err != nil && err != io.EOF {
		return err
	}
	if quoted {
		return fmt.Errorf("%w: a quoted field still open after %d bytes", ErrTooLong, r.max)
	}
	return fmt.Errorf("%w: more than %d bytes", ErrTooLong, r.max)
}

// bom is the UTF-8 byte order mark some editors put at the start of a file.
var bom = []byte("\xef\xbb\xbf")

// quoteState follows quoting through a record, so that only a quoted field
// left open at a line break joins the next line. A quote inside an unquoted
// field (O"Brien) opens nothing: the row is refused by Split as bad quoting,
// and the rows after it are read as rows.
type quoteState struct {
	in         bool // inside a quoted field
	atStart    bool // at the start of a field
	maybeClose bool // in a quoted field, right after a quote
}

func (q *quoteState) scan(b []byte) {
	if !q.in && !q.maybeClose && bytes.IndexByte(b, '"') < 0 {
		if len(b) > 0 { // the common case: nothing quoted, only the last byte matters
			last := b[len(b)-1]
			q.atStart = last == ',' || last == '\n'
		}
		return
	}
	for _, c := range b {
		switch {
		case q.maybeClose:
			q.maybeClose = false
			if c == '"' {
				continue // a doubled quote: still inside
			}
			q.in = false
			q.outside(c)
		case q.in:
			q.maybeClose = c == '"'
		default:
			q.outside(c)
		}
	}
}

func (q *quoteState) outside(c byte) {
	switch {
	case c == '"' && q.atStart:
		q.in, q.atStart = true, false
	case c == ',' || c == '\n':
		q.atStart = true
	default:
		q.atStart = false
	}
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
