package testutil

import (
	"bytes"
	"testing"

	"lottery"
	"lottery/protocol"
)

// BetWireSize is the bytes bet takes in a batch payload (docs/protocol.md):
// its number, a u16, and four strings, each a u16 length and its bytes.
// It counts them here rather than asking BatchBuilder, so that tests of
// the builder's packing check it against a count of their own.
func BetWireSize(bet lottery.Bet) int {
	const numberSize, lengthSize = 2, 2
	return numberSize + 4*lengthSize + len(bet.FirstName) + len(bet.LastName) + len(bet.Document) + len(bet.Birthdate)
}

// BatchFrame builds the batch frame of bets for agency with sequence
// number seq, as an agency would send it, failing the test if the bets do
// not fit in one frame.
func BatchFrame(t testing.TB, agency uint32, seq uint64, bets ...lottery.Bet) []byte {
	t.Helper()
	var b protocol.BatchBuilder
	b.Reset(agency, seq, 0)
	for _, bet := range bets {
		if !b.AddBet(bet) {
			t.Fatalf("testutil: bet %+v does not fit in the batch", bet)
		}
	}
	return bytes.Clone(b.Frame())
}
