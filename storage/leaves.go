package storage

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"lottery"
	"lottery/audit"
)

// Leaves is what an auditor reads of a bets file and its journal, trusting
// neither (bin/audit): every record of the journal as the leaf of the audit
// log it is, with the SHA-256 of the bets.csv bytes it covers computed
// from those bytes (not the journal's digest), and the rows of bets.csv.
// It takes no lock and changes nothing.
type Leaves struct {
	path    string
	bets    *os.File
	journal *os.File
}

// OpenLeaves opens the bets file at path and its journal for an audit.
func OpenLeaves(path string) (*Leaves, error) {
	bets, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	journal, err := os.Open(path + journalSuffix)
	if err != nil {
		bets.Close()
		return nil, err
	}
	return &Leaves{path: path, bets: bets, journal: journal}, nil
}

// Leaves reads every whole record of the journal (up to its committed
// length, when its commit header says one) as a located leaf. A record
// that does not parse, or covers bytes the bets file does not have, is an
// error naming its offset: the log cannot be recomputed past it.
func (l *Leaves) Leaves() ([]audit.LocatedLeaf, error) {
	jpath := l.path + journalSuffix
	magic := make([]byte, len(journalMagic))
	if _, err := l.journal.ReadAt(magic, 0); err != nil || string(magic) != journalMagic {
		return nil, fmt.Errorf("%s: not a version 3 journal (start the central once to upgrade an older one)", jpath)
	}
	size, err := fileSize(l.journal)
	if err != nil {
		return nil, err
	}
	end := recordsStart + max(size-recordsStart, 0)/journalRecordSize*journalRecordSize
	if h, _, err := newestHeader(l.journal, jpath); err == nil && h.after.journal <= end {
		end = h.after.journal
	}
	betsSize, err := fileSize(l.bets)
	if err != nil {
		return nil, err
	}
	jr := bufio.NewReaderSize(io.NewSectionReader(l.journal, recordsStart, end-recordsStart), 64<<10)
	br := bufio.NewReaderSize(io.NewSectionReader(l.bets, 0, betsSize), scanBufferSize)
	hasher := newRowHasher()
	var out []audit.LocatedLeaf
	var buf [journalRecordSize]byte
	prevEnd := int64(0)
	for off := int64(recordsStart); off < end; off += journalRecordSize {
		if _, err := io.ReadFull(jr, buf[:]); err != nil {
			return out, fmt.Errorf("%s, offset %d: %w", jpath, off, err)
		}
		r, ok := parseRecord(buf[:])
		switch {
		case !ok:
			return out, fmt.Errorf("%s, offset %d: record %d does not parse", jpath, off, len(out))
		case r.end < prevEnd || r.end > betsSize:
			return out, fmt.Errorf("%s, offset %d: record %d covers bytes %d to %d of a bets file of %d", jpath, off, len(out), prevEnd, r.end, betsSize)
		}
		var full [sha256.Size]byte
		if r.coversRows() {
			if full, _, err = hasher.nextFull(br, r.end-prevEnd); err != nil {
				return out, fmt.Errorf("%s, byte %d: %w", l.path, prevEnd, err)
			}
		}
		leaf := audit.Leaf{Agency: r.agency, Seq: r.seq, Count: r.count, Digest: full}
		switch r.kind {
		case kindBatch:
			leaf.Kind = audit.KindBatch
		case kindFinished:
			leaf.Kind, leaf.Digest = audit.KindFinished, [sha256.Size]byte{}
		case kindBase:
			leaf.Kind = audit.KindBase
		case kindCommit:
			leaf = audit.CommitLeaf(r.commitment())
		}
		out = append(out, audit.LocatedLeaf{Leaf: leaf, JournalOffset: off, BetsStart: prevEnd, BetsEnd: r.end})
		prevEnd = r.end
	}
	return out, nil
}

// Rows yields every row of the bets file in stored order, as the course's
// load_bets reads them.
func (l *Leaves) Rows(yield func(agency uint32, document string, number int) bool) error {
	if _, err := l.bets.Seek(0, io.SeekStart); err != nil {
		return err
	}
	stop := fmt.Errorf("stopped")
	err := ReadBets(l.bets, func(r lottery.Row) error {
		if !yield(uint32(r.Agency), string(r.Document), r.Number) {
			return stop
		}
		return nil
	})
	if err == stop {
		return nil
	}
	return err
}

// Close closes both files.
func (l *Leaves) Close() error {
	err := l.bets.Close()
	if jerr := l.journal.Close(); err == nil {
		err = jerr
	}
	return err
}
