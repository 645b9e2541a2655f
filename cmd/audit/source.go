package main

import "lottery/storage"

// openSource opens the LeafSource of the central's bets file and its
// journal beside it: storage owns their formats.
func openSource(betsPath string) (LeafSource, error) {
	return storage.OpenLeaves(betsPath)
}
