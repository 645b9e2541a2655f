package storage

// RawRows wraps rows already encoded, for tests that build them by hand.
func RawRows(b []byte, count int) *Rows { return &Rows{b: b, count: count} }
