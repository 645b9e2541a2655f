package main

import "errors"

// errNoSource is what bin/audit says until storage reads leaves.
var errNoSource = errors.New("this build reads no journal: storage's LeafSource is not wired in yet (cmd/audit/source.go)")

// openSource opens the LeafSource of the central's bets file and its
// journal beside it. The journal's format is storage's: the lead replaces
// this file with one that returns storage's reader (every record as an
// audit.LocatedLeaf, the full SHA-256 of the bytes each covers, and the
// rows of bets.csv).
func openSource(betsPath string) (LeafSource, error) {
	return nil, errNoSource
}
