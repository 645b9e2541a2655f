package agency

// Progress follows an upload for a person watching it: cmd/client draws a
// terminal bar with it (package progress), which the agency knows nothing
// about. Its methods are called from the upload's goroutine and must
// return at once.
type Progress interface {
	// SetTotal: the source is open and holds this many bets (0: none, or
	// unknown).
	SetTotal(bets int64)
	// Sent: a batch of this many bets was written to the central (resent
	// ones are not counted again).
	Sent(bets int)
	// Acked: a batch of this many bets was answered, stored or refused.
	Acked(bets int)
	// Finish: the upload ended; nothing more is reported.
	Finish()
}

// noProgress is the Progress of an agency nobody watches.
type noProgress struct{}

func (noProgress) SetTotal(int64) {}
func (noProgress) Sent(int)       {}
func (noProgress) Acked(int)      {}
func (noProgress) Finish()        {}
