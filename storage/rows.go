package storage

import (
	"lottery"
	"lottery/csvrow"
)

// Rows are bets encoded as rows of the bets file, the course's format
// (agency,first_name,last_name,document,birthdate,number, CRLF, in the
// dialect of package csvrow). Storage owns that format: rows are written
// only through Rows and read back only through ReadBets. Rows carry their
// bet count, so a stored batch always says truly how many bets it holds.
// The zero value is empty and ready to use.
type Rows struct {
	b     []byte
	count int
}

// Grow makes room for n more bytes of rows.
func (r *Rows) Grow(n int) {
	if cap(r.b)-len(r.b) < n {
		r.b = append(make([]byte, 0, len(r.b)+n), r.b...)
	}
}

// Add appends one bet, its text fields as the bytes a batch carries them.
func (r *Rows) Add(agency int, first, last, document, birthdate []byte, number int) {
	r.b = csvrow.AppendBetRow(r.b, agency, first, last, document, birthdate, number)
	r.count++
}

// AddBet appends one bet.
func (r *Rows) AddBet(b lottery.Bet) {
	r.b = csvrow.AppendBetRow(r.b, b.Agency, b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
	r.count++
}

// EncodedRows returns rows that a Rows encoded elsewhere: the Bytes and Len
// of a batch carried by a replicated log entry, from the leader that
// validated and encoded it.
func EncodedRows(b []byte, count int) *Rows { return &Rows{b: b, count: count} }

// Len returns how many bets the rows hold.
func (r *Rows) Len() int { return r.count }

// Bytes returns the rows as they will be written.
func (r *Rows) Bytes() []byte { return r.b }
