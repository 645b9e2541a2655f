package storage

import "lottery"

// Scan streams every committed row of the store to fn, for the tests: the
// draw uses ScanWhere.
func (s *Store) Scan(fn func(lottery.Row) error) error { return s.ScanWhere(nil, fn) }

// SetRepairHook makes Repair call f once it has verified the files and
// before it changes them (nil: nothing).
func SetRepairHook(f func()) { repairHook = f }
