package storage

import "time"

// syncStart is when a group's fsyncs begin, for Options.OnSync; the zero
// time when nobody is told (no OnSync, or NoSync), so that a store
// without the hook does not even read the clock.
func (s *Store) syncStart() time.Time {
	if s.onSync == nil || s.noSync {
		return time.Time{}
	}
	return time.Now()
}

// synced tells Options.OnSync how long the group's fsyncs took since
// began (syncStart), failed ones included: a sick disk's slow failures are
// what an operator most needs to see.
func (s *Store) synced(began time.Time) {
	if !began.IsZero() {
		s.onSync(time.Since(began))
	}
}
