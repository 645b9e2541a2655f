package agency

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"lottery"
	"lottery/csvrow"
	"lottery/logline"
	"lottery/protocol"
)

// source yields an agency's bets in order, packing them into batches.
type source interface {
	// Fill adds bets to b until b is full or the bets run out, and reports
	// whether they ran out. A bet that does not fit is kept for the next
	// batch.
	Fill(b *protocol.BatchBuilder) (eof bool, err error)
	// Total is how many bets the source expects to yield, for progress.
	Total() int
	// Invalid is how many rows were skipped as invalid so far.
	Invalid() int
	Close() error
}

// fileBufferSize is the read buffer of an agency file: ample for rows of a
// few dozen bytes, and small enough for a thousand agencies in one process
// (the benchmark).
const fileBufferSize = 64 << 10

// fileSource reads an agency file: rows first_name,last_name,document,
// birthdate,number. Invalid rows are logged, counted and skipped.
type fileSource struct {
	f       *os.File
	r       *csvrow.Reader
	log     *slog.Logger
	today   time.Time
	total   int
	invalid int
	carry   *carried // a valid bet that did not fit the last batch
}

type carried struct {
	fields [4][]byte
	number int
}

// openFile opens an agency file and counts its rows for progress lines.
func openFile(path string, log *slog.Logger) (*fileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	total, err := countRows(f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	r := csvrow.NewReader(f, fileBufferSize)
	// A row over the cap is one invalid row, skipped without being kept:
	// a file of one endless line costs no more memory than a short one.
	r.SetMaxRecord(lottery.MaxRowBytes)
	return &fileSource{f: f, r: r, log: log, today: time.Now(), total: total}, nil
}

// countRows counts the non-blank lines of an agency file, for progress
// lines. It counts bytes, not fields: a full parse would double the cost of
// reading the file, and progress needs no more than lines. It keeps only
// its buffer, whatever the length of a line.
func countRows(r io.Reader) (int, error) {
	buf := make([]byte, fileBufferSize)
	rows, blank := 0, true // blank: nothing but line endings since the last '\n'
	for {
		n, err := r.Read(buf)
		for chunk := buf[:n]; len(chunk) > 0; {
			i := bytes.IndexByte(chunk, '\n')
			line := chunk
			if i >= 0 {
				line = chunk[:i]
			}
			if len(bytes.TrimRight(line, "\r")) > 0 {
				blank = false
			}
			if i < 0 {
				break
			}
			if !blank {
				rows++
			}
			blank, chunk = true, chunk[i+1:]
		}
		if err == io.EOF {
			if !blank {
				rows++ // a last line without a line ending
			}
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
	}
}

func (s *fileSource) Total() int   { return s.total }
func (s *fileSource) Invalid() int { return s.invalid }
func (s *fileSource) Close() error { return s.f.Close() }

func (s *fileSource) Fill(b *protocol.BatchBuilder) (bool, error) {
	if c := s.carry; c != nil {
		if !b.Add(c.fields[0], c.fields[1], c.fields[2], c.fields[3], c.number) {
			return false, nil
		}
		s.carry = nil
	}
	for !b.Full() {
		fields, err := s.r.Read()
		if err == io.EOF {
			return true, nil
		}
		if err != nil && !errors.Is(err, csvrow.ErrQuote) && !errors.Is(err, csvrow.ErrTooLong) {
			return false, fmt.Errorf("read agency file: %w", err)
		}
		number, verr := 0, err // bad quoting, or a row over lottery.MaxRowBytes
		if verr == nil {
			number, verr = lottery.CheckRow(fields, s.today)
		}
		if verr != nil {
			s.invalid++
			s.log.Warn(logline.ReadBet, logline.Failed, "linea", s.r.Line(), "error", verr)
			continue
		}
		if !b.Add(fields[0], fields[1], fields[2], fields[3], number) {
			c := &carried{number: number}
			for i := range c.fields {
				c.fields[i] = append([]byte(nil), fields[i]...)
			}
			s.carry = c
			return false, nil
		}
	}
	return false, nil
}

// singleSource sends one bet given in the environment (the course's
// exercise 5 mode).
type singleSource struct {
	bet  lottery.Bet
	sent bool
}

func (s *singleSource) Total() int   { return 1 }
func (s *singleSource) Invalid() int { return 0 }
func (s *singleSource) Close() error { return nil }
func (s *singleSource) Fill(b *protocol.BatchBuilder) (bool, error) {
	if !s.sent && b.AddBet(s.bet) {
		s.sent = true
	}
	return s.sent, nil
}

// emptySource has nothing to send: the agency still finishes and asks for
// its winners, so the draw is not held up.
type emptySource struct{}

func (emptySource) Total() int                                { return 0 }
func (emptySource) Invalid() int                              { return 0 }
func (emptySource) Close() error                              { return nil }
func (emptySource) Fill(*protocol.BatchBuilder) (bool, error) { return true, nil }
