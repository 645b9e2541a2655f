package admin

import "errors"

// The central's readiness checks, by the names docs/operations.md gives
// them: /readyz/<name>.
const (
	CheckRecovery = "recovery" // the store opened, its torn tail handled, its journal indexed
	CheckStore    = "store"    // the files verified or being verified, and not found damaged or stopped
	CheckLeader   = "leader"   // replicated: a leader is known
	CheckApplied  = "applied"  // replicated: this node applied what the group committed
)

// Ledger is what the recovery and store checks read of the central's
// ledger: a *storage.Store, or the *replica.Replica of a node (whose store
// a snapshot may replace).
type Ledger interface {
	// Ready is closed once the ledger knows what it holds.
	Ready() <-chan struct{}
	// Err is the failure that stopped it (damage, a failed fsync), or nil.
	Err() error
}

// Failures of the ledger checks. They say what state the ledger is in and
// send the operator to the log for the details, which name files and
// offsets.
var (
	errRecovering = errors.New("recovering the store")
	errStopped    = errors.New("the store stopped: damage or a failed write, see the central's log")
)

// RecoveryCheck is "recovery": it passes once ledger() is Ready, for good;
// a ledger that failed before is the store check's to report.
func RecoveryCheck(ledger func() Ledger) Check {
	return Check{Name: CheckRecovery, Check: func() error {
		select {
		case <-ledger().Ready():
			return nil
		default:
			return errRecovering
		}
	}}
}

// StoreCheck is "store": it passes while ledger() has not failed, that is
// while its files are verified or still being verified in the background
// and every write has been made durable.
func StoreCheck(ledger func() Ledger) Check {
	return Check{Name: CheckStore, Check: func() error {
		if ledger().Err() != nil {
			return errStopped
		}
		return nil
	}}
}
