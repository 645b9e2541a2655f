package testutil

import (
	"reflect"
	"strings"
	"testing"

	"lottery"
	"lottery/protocol"
)

// TestBetWireSize checks the count against what BatchBuilder writes: each
// bet makes the frame grow by exactly its size.
func TestBetWireSize(t *testing.T) {
	empty := len(BatchFrame(t, 1, 1))
	for name, bet := range map[string]lottery.Bet{
		"Short":     {FirstName: "A", LastName: "B", Document: "1", Birthdate: "2000-01-01", Number: 1},
		"Course":    {FirstName: "Santiago Lionel", LastName: "Lorca", Document: "30904465", Birthdate: "1999-03-17", Number: 7574},
		"MultiByte": {FirstName: strings.Repeat("Ñ", lottery.MaxNameRunes), LastName: "日本語", Document: "1", Birthdate: "2000-01-01", Number: 9999},
	} {
		t.Run(name, func(t *testing.T) {
			if got, want := BetWireSize(bet), len(BatchFrame(t, 1, 1, bet))-empty; got != want {
				t.Errorf("BetWireSize = %d, want %d", got, want)
			}
		})
	}
}

func TestBatchFrame(t *testing.T) {
	bets := []lottery.Bet{
		{Agency: 3, FirstName: "Ana", LastName: "Paz", Document: "01234567", Birthdate: "1990-05-17", Number: 7574},
		{Agency: 3, FirstName: "J", LastName: "P", Document: "1", Birthdate: "1999-12-31", Number: 42},
	}
	frame := BatchFrame(t, 3, 7, bets...)
	v, err := protocol.ParseBatch(frame[protocol.HeaderSize:])
	if err != nil {
		t.Fatal(err)
	}
	var got []lottery.Bet
	for b := range v.Bets() {
		got = append(got, b.Bet(int(v.Agency)))
	}
	if v.Agency != 3 || v.Seq != 7 || !reflect.DeepEqual(got, bets) {
		t.Errorf("agency %d seq %d bets %+v, want 3, 7, %+v", v.Agency, v.Seq, got, bets)
	}
}
