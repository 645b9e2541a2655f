package lottery

import (
	"golang.org/x/mod/sumdb/tlog"

	"lottery/csvrow"
)

// Ledger is where the central's bets go: the local store (package
// storage), or a node of a replicated central (package replica), which
// answers the same way once a majority has a batch. It is the contract
// between the central and what keeps its bets; neither side knows the
// other's package.
//
// A ledger opens in constant time and learns what it holds in the
// background: LastSeq and Finished are valid once Ready is closed, and its
// rows may be read (ScanWhere, the draw) once Verified is. A ledger that
// finds damage closes neither, and fails: its owner stops the central.
type Ledger interface {
	// Append submits rows (nil: none) as batch number seq of the agency.
	// Sequence numbers start at 1 and grow by one per batch: a batch
	// already stored with the same rows completes as a Duplicate without
	// being stored again, one already stored with other rows fails with
	// EConflict, and one after a gap fails with ESequence.
	Append(agency uint32, seq uint64, rows *Rows) *Commit
	// MarkFinished durably marks the agency finished after its batch
	// lastSeq, which must be the last one stored. Finishing twice after
	// the same batch completes as a Duplicate; after another, EConflict.
	MarkFinished(agency uint32, lastSeq uint64) *Commit
	Ready() <-chan struct{}
	// LastSeq is the last batch stored for the agency (0 for none).
	LastSeq(agency uint32) uint64
	// Finished are the agencies durably marked finished.
	Finished() []uint32
	Verified() <-chan struct{}
	// ScanWhere streams the stored rows whose agency and number satisfy
	// keep (nil: every row) to fn, in the order they were stored.
	ScanWhere(keep func(agency, number int) bool, fn func(Row) error) error

	// The audit log (docs/audit.md): a Merkle tree whose leaf i is the
	// ledger's record i, in golang.org/x/mod/sumdb/tlog's layout.
	// ReadHashes reads its stored hashes (tlog.HashReader); Tree is its
	// size and root now; Agency is what it holds of an agency, once
	// Verified is closed: its bets and the SHA-256 of each batch's rows,
	// in sequence order (the draw statement's salt).
	ReadHashes(indexes []int64) ([]tlog.Hash, error)
	Tree() (size uint64, root tlog.Hash)
	Agency(agency uint32) (bets int64, digests [][32]byte)
}

// Commit is a batch or a "finished" mark on its way to a ledger: a future
// completed once, when it is durable or failed. Done is closed then, and
// Err and Duplicate can be read.
type Commit struct {
	done chan struct{}
	// Err is nil once the commit is durable; otherwise a *Error.
	Err error
	// Duplicate is set when the batch (or finish) was already stored: it
	// was acknowledged before and is not stored again.
	Duplicate bool
	// Leaf is the commit's record in the audit log (its leaf's index: the
	// same for a duplicate as for the batch first stored), and TreeSize
	// the log's size once it was durable: the tree a receipt proves it in.
	// Both are set, before Done closes, for a commit that succeeded.
	Leaf, TreeSize uint64
}

// NewCommit returns a commit its ledger completes with Settle.
func NewCommit() *Commit { return &Commit{done: make(chan struct{})} }

// Settle completes the commit, once: its error, or whether it was already
// stored.
func (c *Commit) Settle(err error, duplicate bool) {
	c.Err, c.Duplicate = err, duplicate
	close(c.done)
}

// Done is closed when the commit has completed.
func (c *Commit) Done() <-chan struct{} { return c.done }

// Wait blocks until the commit has completed and returns its error.
func (c *Commit) Wait() error { <-c.done; return c.Err }

// Rows are bets encoded as rows of the bets file, the course's format
// (agency,first_name,last_name,document,birthdate,number, CRLF, in the
// dialect of package csvrow): the bytes a ledger stores, built where the
// bets are validated (each session, in parallel). Rows carry their bet
// count, so a stored batch always says truly how many bets it holds. The
// zero value is empty and ready to use.
type Rows struct {
	b     []byte
	count int
}

// EncodedRows returns rows that a Rows encoded elsewhere: the Bytes and
// Len of a batch carried by a replicated log entry, from the leader that
// validated and encoded it.
func EncodedRows(b []byte, count int) *Rows { return &Rows{b: b, count: count} }

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
func (r *Rows) AddBet(b Bet) {
	r.b = csvrow.AppendBetRow(r.b, b.Agency, b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
	r.count++
}

// Len returns how many bets the rows hold.
func (r *Rows) Len() int { return r.count }

// Bytes returns the rows as they will be stored.
func (r *Rows) Bytes() []byte { return r.b }

// Row is one stored row, as a ledger reads it back. Its byte fields are
// valid only during the callback that receives it.
type Row struct {
	Agency                                   int
	FirstName, LastName, Document, Birthdate []byte
	Number                                   int
}

// Bet copies the row into a Bet.
func (r Row) Bet() Bet {
	return Bet{Agency: r.Agency, FirstName: string(r.FirstName), LastName: string(r.LastName),
		Document: string(r.Document), Birthdate: string(r.Birthdate), Number: r.Number}
}
