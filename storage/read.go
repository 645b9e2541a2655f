package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"lottery"
	"lottery/csvrow"
)

// scanBufferSize is the read buffer for scanning the bets file: large reads
// keep a 10-million-row draw to a few hundred system calls.
const scanBufferSize = 1 << 20

// maxRowBytes bounds a row of the bets file the central reads back: the
// agency's cap on a row of its own file plus the agency column, so a
// damaged file with a huge line costs an error, not the central's memory.
const maxRowBytes = lottery.MaxRowBytes + 16

// betsFileFields is the number of columns of the bets file.
const betsFileFields = 6

// ReadBets reads a bets file as the course's load_bets does, calling fn for
// every row in order, and stops at the first error. It allocates nothing
// per row, so millions of rows can be streamed.
func ReadBets(r io.Reader, fn func(lottery.Row) error) error {
	return readBetsWhere(r, nil, fn)
}

// readBetsWhere is ReadBets calling fn only for the rows whose agency and
// number satisfy keep (every row if keep is nil). The agency (first column)
// and the number (last column) are never quoted, so they are read straight
// from the row; only the rows kept are split into fields. This is what makes
// the draw over millions of rows cheap: almost no row wins.
func readBetsWhere(r io.Reader, keep func(agency, number int) bool, fn func(lottery.Row) error) error {
	cr := csvrow.NewReader(r, scanBufferSize)
	cr.SetMaxRecord(maxRowBytes)
	var fields [][]byte
	var scratch []byte
	for {
		rec, err := cr.ReadRecord()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("bets file line %d: %w", cr.Line(), err)
		}
		first := bytes.IndexByte(rec, ',')
		last := bytes.LastIndexByte(rec, ',')
		if first < 0 {
			return fmt.Errorf("bets file line %d: 1 field, want %d", cr.Line(), betsFileFields)
		}
		agency, err1 := parseAgency(rec[:first])
		number, err2 := lottery.ParseNumber(rec[last+1:])
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("bets file line %d: %w", cr.Line(), err)
		}
		if keep != nil && !keep(agency, number) {
			continue
		}
		fields, scratch, err = csvrow.Split(rec, fields, scratch)
		if err != nil {
			return fmt.Errorf("bets file line %d: %w", cr.Line(), err)
		}
		if len(fields) != betsFileFields {
			return fmt.Errorf("bets file line %d: %d fields, want %d", cr.Line(), len(fields), betsFileFields)
		}
		if err := fn(lottery.Row{Agency: agency, FirstName: fields[1], LastName: fields[2], Document: fields[3], Birthdate: fields[4], Number: number}); err != nil {
			return err
		}
	}
}

func parseAgency(b []byte) (int, error) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' || n > lottery.MaxAgency/10 {
			return 0, fmt.Errorf("agency %q is not a number", b)
		}
		n = n*10 + int(c-'0')
	}
	if len(b) == 0 {
		return 0, errors.New("empty agency")
	}
	return n, nil
}

// LoadBets reads a whole bets file into memory: the course's load_bets, for
// tests and tools. The draw streams the file with ScanWhere instead.
func LoadBets(path string) ([]lottery.Bet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var bets []lottery.Bet
	err = ReadBets(f, func(r lottery.Row) error { bets = append(bets, r.Bet()); return nil })
	return bets, err
}

// ScanWhere streams the committed rows whose agency and number satisfy keep
// (nil: every row) to fn, through its own read handle (see readBetsWhere).
// Commits that complete while it runs may or may not be seen. It reads
// only proven rows: it waits until the background verification is done
// (Verified), and returns the damage it found instead, if any, so no draw
// is ever computed from damaged rows.
func (s *Store) ScanWhere(keep func(agency, number int) bool, fn func(lottery.Row) error) error {
	if !s.await(s.verified) {
		if err := s.Err(); err != nil {
			return err
		}
		return ErrClosed
	}
	size := s.Stats().Size
	f, err := s.fs.OpenFile(s.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("open bets file: %w", err)
	}
	defer f.Close()
	return readBetsWhere(io.LimitReader(f, size), keep, fn)
}
