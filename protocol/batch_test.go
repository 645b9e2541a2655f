package protocol_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"lottery"
	"lottery/internal/testutil"
	"lottery/protocol"
)

// randomBets returns n valid bets; with long set, a third of them have
// names of 100 characters of up to 4 bytes each, the worst case for size.
func randomBets(rng *rand.Rand, n int, long bool) []lottery.Bet {
	alphabets := []string{"abcxyz", "áéíóúñü", "日本語中文", "𝄞🎲😀", "a'\",; -"}
	name := func() string {
		k := 1 + rng.IntN(20)
		if long && rng.IntN(3) == 0 {
			k = lottery.MaxNameRunes
		}
		alpha := []rune(alphabets[rng.IntN(len(alphabets))])
		var b strings.Builder
		for range k {
			b.WriteRune(alpha[rng.IntN(len(alpha))])
		}
		return b.String()
	}
	bets := make([]lottery.Bet, n)
	for i := range bets {
		bets[i] = lottery.Bet{
			Agency:    1 + rng.IntN(5),
			FirstName: name(),
			LastName:  name(),
			Document:  fmt.Sprintf("%0*d", 1+rng.IntN(lottery.MaxDocumentDigits), rng.IntN(1_000_000_000)),
			Birthdate: fmt.Sprintf("%04d-%02d-%02d", 1900+rng.IntN(120), 1+rng.IntN(12), 1+rng.IntN(28)),
			Number:    rng.IntN(lottery.MaxNumber + 1),
		}
		if len(bets[i].Document) > lottery.MaxDocumentDigits {
			bets[i].Document = bets[i].Document[:lottery.MaxDocumentDigits]
		}
	}
	return bets
}

// sampleBets is a fixed list of n short bets of the agency.
func sampleBets(n, agency int) []lottery.Bet {
	bets := randomBets(rand.New(rand.NewPCG(uint64(n), uint64(agency))), n, false)
	for i := range bets {
		bets[i].Agency = agency
	}
	return bets
}

// buildBatch packs bets that must all fit into one batch frame and returns a
// copy of the frame.
func buildBatch(t testing.TB, agency uint32, seq uint64, bets []lottery.Bet, max int) []byte {
	t.Helper()
	var b protocol.BatchBuilder
	b.Reset(agency, seq, max)
	for i, bet := range bets {
		if !b.AddBet(bet) {
			t.Fatalf("bet %d of %d did not fit", i, len(bets))
		}
	}
	return bytes.Clone(b.Frame())
}

// parseBatchFrame parses a batch frame into its agency, sequence and bets.
func parseBatchFrame(t testing.TB, frame []byte) (uint32, uint64, []lottery.Bet) {
	t.Helper()
	f, err := protocol.ParseFrame(frame)
	if err != nil {
		t.Fatalf("ParseFrame: %v", err)
	}
	if f.Type != protocol.TypeBatch {
		t.Fatalf("frame type %v, want batch", f.Type)
	}
	v, err := protocol.ParseBatch(f.Payload)
	if err != nil {
		t.Fatalf("ParseBatch: %v", err)
	}
	var bets []lottery.Bet
	for bv := range v.Bets() {
		bets = append(bets, bv.Bet(int(v.Agency)))
	}
	if len(bets) != v.Count {
		t.Fatalf("iterated %d bets, Count %d", len(bets), v.Count)
	}
	return v.Agency, v.Seq, bets
}

func TestBatchBuilder_Golden(t *testing.T) {
	bets := []lottery.Bet{
		{Agency: 1, FirstName: "Ana", LastName: "Díaz", Document: "00012345", Birthdate: "2000-02-29", Number: 7574},
		{Agency: 1, FirstName: "J", LastName: "P", Document: "1", Birthdate: "1999-12-31", Number: 42},
	}
	want := unhex(t, `
		01 03 0049
		00000001 0000000000000002 0002
		1d96 0003 416e61 0005 44c3ad617a 0008 3030303132333435 000a 323030302d30322d3239
		002a 0001 4a     0001 50         0001 31               000a 313939392d31322d3331`)
	got := buildBatch(t, 1, 2, bets, 0)
	if !bytes.Equal(got, want) {
		t.Fatalf("batch frame =\n % x\nwant\n % x", got, want)
	}
	agency, seq, back := parseBatchFrame(t, want)
	if agency != 1 || seq != 2 || !reflect.DeepEqual(back, bets) {
		t.Fatalf("ParseBatch = agency %d seq %d %+v", agency, seq, back)
	}
}

func TestBatchBuilder_Empty(t *testing.T) {
	got := buildBatch(t, 9, 1<<33, nil, 10)
	want := unhex(t, "01 03 000e 00000009 0000000200000000 0000")
	if !bytes.Equal(got, want) {
		t.Fatalf("empty batch = % x, want % x", got, want)
	}
}

func TestBatchBuilder_Add(t *testing.T) {
	var b protocol.BatchBuilder
	b.Reset(1, 1, 2)
	d := []byte("1")
	date := []byte("2000-01-01")
	if !b.Add(d, d, d, date, 0) || !b.Add(d, d, d, date, 9999) {
		t.Fatal("two small bets refused")
	}
	if !b.Full() || b.Len() != 2 {
		t.Fatalf("Full() = %v, Len() = %d after 2 of 2", b.Full(), b.Len())
	}
	if b.Add(d, d, d, date, 1) {
		t.Fatal("a third bet accepted in a batch of at most 2")
	}

	b.Reset(1, 2, 0) // 0: as many as fit
	if b.Full() || b.Len() != 0 {
		t.Fatalf("after Reset: Full() = %v, Len() = %d", b.Full(), b.Len())
	}
	if b.Add(d, d, d, date, -1) || b.Add(d, d, d, date, 1<<16) {
		t.Fatal("a number that does not fit in u16 was accepted")
	}
	n := 0
	for b.Add(d, d, d, date, n) {
		n++
	}
	if want := (protocol.MaxPayloadSize - 14) / 23; n != want { // 23 bytes a bet
		t.Fatalf("%d small bets fit, want %d", n, want)
	}
	if len(b.Frame()) > protocol.MaxFrameSize {
		t.Fatalf("frame of %d bytes", len(b.Frame()))
	}

	// A maxCount above what a frame can hold is capped.
	b.Reset(1, 3, 1_000_000)
	for b.Add(nil, nil, nil, nil, 0) {
	}
	if b.Len() != protocol.MaxBetsPerBatch || len(b.Frame()) > protocol.MaxFrameSize {
		t.Fatalf("empty bets: %d fit in %d bytes", b.Len(), len(b.Frame()))
	}
}

func TestBatchBuilder_RefusesOverFrame(t *testing.T) {
	big := []byte(strings.Repeat("𝄞", lottery.MaxNameRunes)) // 400 bytes
	var b protocol.BatchBuilder
	b.Reset(1, 1, 0)
	for b.Add(big, big, []byte("1234567890"), []byte("2000-01-01"), 1) {
	}
	frame := b.Frame()
	if len(frame) > protocol.MaxFrameSize || len(frame)+830 <= protocol.MaxFrameSize {
		t.Fatalf("%d bets in %d bytes: not packed up to the limit", b.Len(), len(frame))
	}
	// A smaller bet that still fits is accepted after a refusal.
	small := []byte("x")
	if room := protocol.MaxFrameSize - len(frame); room >= 10+3+10+10 {
		if !b.Add(small, small, small, []byte("2000-01-01"), 2) {
			t.Fatalf("a %d-byte bet refused with %d bytes of room", 33, room)
		}
	}
	if _, _, bets := parseBatchFrame(t, b.Frame()); len(bets) != b.Len() {
		t.Fatalf("parsed %d bets, built %d", len(bets), b.Len())
	}
}

// pack splits bets into batch frames as agency/source.go does: fill a
// batch until a bet is refused, send it, and start the next batch with the
// refused bet.
func pack(t testing.TB, agency uint32, bets []lottery.Bet, maxAmount int) [][]byte {
	t.Helper()
	var b protocol.BatchBuilder
	var frames [][]byte
	seq := uint64(1)
	for len(bets) > 0 {
		b.Reset(agency, seq, maxAmount)
		for len(bets) > 0 && b.AddBet(bets[0]) {
			bets = bets[1:]
		}
		if b.Len() == 0 {
			t.Fatalf("bet %+v does not fit in an empty batch", bets[0])
		}
		frames = append(frames, bytes.Clone(b.Frame()))
		seq++
	}
	return frames
}

// TestBatchBuilder_Property packs random streams of bets, some with
// 100-character multi-byte names, under random maxAmounts: no frame is over
// 8192 bytes, every bet comes back once and in order, and every batch but
// the last is full (maxAmount bets, or the next bet would not have fitted).
func TestBatchBuilder_Property(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rounds := 60
	if testing.Short() {
		rounds = 15
	}
	for round := range rounds {
		maxAmount := 1 + rng.IntN(500)
		bets := randomBets(rng, rng.IntN(2000), round%2 == 0)
		for i := range bets {
			bets[i].Agency = 7
		}
		frames := pack(t, 7, bets, maxAmount)
		var got []lottery.Bet
		for i, frame := range frames {
			if len(frame) > protocol.MaxFrameSize {
				t.Fatalf("round %d: frame %d has %d bytes", round, i, len(frame))
			}
			agency, seq, fb := parseBatchFrame(t, frame)
			if agency != 7 || seq != uint64(i+1) {
				t.Fatalf("round %d: frame %d has agency %d seq %d", round, i, agency, seq)
			}
			if len(fb) > maxAmount {
				t.Fatalf("round %d: frame %d holds %d bets, maxAmount %d", round, i, len(fb), maxAmount)
			}
			got = append(got, fb...)
			if i < len(frames)-1 && len(fb) < maxAmount {
				next := bets[len(got)]
				if len(frame)+testutil.BetWireSize(next) <= protocol.MaxFrameSize {
					t.Fatalf("round %d: frame %d has %d of %d bets in %d bytes, and the next bet (%d bytes) fitted",
						round, i, len(fb), maxAmount, len(frame), testutil.BetWireSize(next))
				}
			}
		}
		if len(got) != len(bets) || len(bets) > 0 && !reflect.DeepEqual(got, bets) {
			t.Fatalf("round %d (maxAmount %d): %d bets came back of %d, or out of order", round, maxAmount, len(got), len(bets))
		}
	}
}

// TestBatchBuilder_SmallMaxAmount checks the course's rule: with a small
// maxAmount every batch but the last holds exactly maxAmount bets.
func TestBatchBuilder_SmallMaxAmount(t *testing.T) {
	bets := sampleBets(1003, 2)
	for _, maxAmount := range []int{1, 2, 7, 50, 100} {
		t.Run(fmt.Sprint(maxAmount), func(t *testing.T) {
			frames := pack(t, 2, bets, maxAmount)
			if want := (len(bets) + maxAmount - 1) / maxAmount; len(frames) != want {
				t.Fatalf("%d frames, want %d", len(frames), want)
			}
			for i, frame := range frames {
				_, _, fb := parseBatchFrame(t, frame)
				want := maxAmount
				if i == len(frames)-1 {
					want = len(bets) - i*maxAmount
				}
				if len(fb) != want {
					t.Fatalf("batch %d holds %d bets, want %d", i, len(fb), want)
				}
			}
		})
	}
}

// goodBatchHex is a well-formed batch payload of agency 1, sequence 2,
// with two bets.
const goodBatchHex = "00000001 0000000000000002 0002" +
	"1d96 0003 416e61 0005 44c3ad617a 0008 3030303132333435 000a 323030302d30322d3239" +
	"002a 0001 4a 0001 50 0001 31 000a 313939392d31322d3331"

// malformedBatches are batch payloads with a structure error each.
var malformedBatches = []struct{ name, hex string }{
	{"Empty", ""},
	{"ShortFixedPart", "00000001 0000000000000002 00"},
	{"CountTooBig", "00000001 0000000000000002 0003" + goodBatchHex[30:]},
	{"CountHuge", "00000001 0000000000000002 ffff" + goodBatchHex[30:]},
	{"CountTooSmall", "00000001 0000000000000002 0001" + goodBatchHex[30:]},
	{"CountZeroWithBets", "00000001 0000000000000002 0000" + goodBatchHex[30:]},
	{"Trailing", goodBatchHex + "00"},
	{"TruncatedLastString", goodBatchHex[:len(goodBatchHex)-2]},
	{"LyingStringLengthLong", "00000001 0000000000000001 0001 0001 0003 4a 0001 50 0001 31 0001 31"},
	{"LyingStringLengthShort", "00000001 0000000000000001 0001 0001 0001 4a4a 0001 50 0001 31 0001 31"},
	{"LyingStringLengthHuge", "00000001 0000000000000001 0001 0001 ffff 4a 0001 50 0001 31 0001 31"},
	{"MissingField", "00000001 0000000000000001 0001 0001 0001 4a 0001 50 0001 31"},
	{"OnlyNumber", "00000001 0000000000000001 0001 0001"},
	{"GoodBetThenCut", "00000001 0000000000000002 0002" +
		"1d96 0003 416e61 0005 44c3ad617a 0008 3030303132333435 000a 323030302d30322d3239" +
		"002a 0001 4a 0001 50 0001"},
}

func TestParseBatch_Err(t *testing.T) {
	if _, err := protocol.ParseBatch(unhex(t, goodBatchHex)); err != nil {
		t.Fatalf("the good batch: %v", err)
	}
	for _, tt := range malformedBatches {
		t.Run(tt.name, func(t *testing.T) {
			v, err := protocol.ParseBatch(unhex(t, tt.hex))
			if !errors.Is(err, protocol.ErrMalformed) {
				t.Fatalf("ParseBatch = %+v, %v; want ErrMalformed", v, err)
			}
		})
	}
}

// decodeAll decodes a batch payload with DecodeBatch, reading at most stop
// bets before Err, and returns the bets read and the error (from
// DecodeBatch or Err).
func decodeAll(payload []byte, stop int) (protocol.BatchDecoder, []protocol.BetView, error) {
	d, err := protocol.DecodeBatch(payload)
	if err != nil {
		return d, nil, err
	}
	var bets []protocol.BetView
	for b := range d.Bets() {
		if len(bets) == stop {
			break
		}
		bets = append(bets, b)
	}
	return d, bets, d.Err()
}

// TestDecodeBatch_Err checks that DecodeBatch and Err refuse every
// malformed batch with ParseBatch's own error, however many bets are read
// before Err.
func TestDecodeBatch_Err(t *testing.T) {
	for _, tt := range malformedBatches {
		for _, stop := range []int{0, 1, 2, math.MaxInt} {
			t.Run(fmt.Sprintf("%s/stop%d", tt.name, stop), func(t *testing.T) {
				payload := unhex(t, tt.hex)
				_, want := protocol.ParseBatch(payload)
				_, bets, err := decodeAll(payload, stop)
				if !errors.Is(err, protocol.ErrMalformed) || err.Error() != want.Error() {
					t.Fatalf("decoded %d bets, then %v; want %v", len(bets), err, want)
				}
			})
		}
	}
}

// TestDecodeBatch_OK checks the bets of a good batch, read whole or in
// part before Err, and that Err is safe to repeat.
func TestDecodeBatch_OK(t *testing.T) {
	payload := unhex(t, goodBatchHex)
	want := []lottery.Bet{
		{Agency: 1, FirstName: "Ana", LastName: "Díaz", Document: "00012345", Birthdate: "2000-02-29", Number: 7574},
		{Agency: 1, FirstName: "J", LastName: "P", Document: "1", Birthdate: "1999-12-31", Number: 42},
	}
	for stop := 0; stop <= len(want)+1; stop++ {
		d, views, err := decodeAll(payload, stop)
		if err != nil {
			t.Fatalf("stop %d: %v", stop, err)
		}
		if d.Agency != 1 || d.Seq != 2 || d.Count != 2 {
			t.Fatalf("stop %d: agency %d seq %d count %d, want 1 2 2", stop, d.Agency, d.Seq, d.Count)
		}
		var got []lottery.Bet
		for _, v := range views {
			got = append(got, v.Bet(int(d.Agency)))
		}
		if n := min(stop, len(want)); !reflect.DeepEqual(got, want[:n:n]) && !(n == 0 && got == nil) {
			t.Fatalf("stop %d: bets %+v, want %+v", stop, got, want[:n])
		}
		if err := d.Err(); err != nil {
			t.Fatalf("stop %d: second Err: %v", stop, err)
		}
		for range d.Bets() {
			t.Fatalf("stop %d: a bet after Err", stop)
		}
	}
}

// TestDecodeBatch_Aliases checks that DecodeBatch copies nothing and does
// not allocate: the bets' fields point into the payload.
func TestDecodeBatch_Aliases(t *testing.T) {
	frame := buildBatch(t, 3, 1, sampleBets(3, 3), 0)
	payload := frame[protocol.HeaderSize:]
	allocs := testing.AllocsPerRun(50, func() {
		d, err := protocol.DecodeBatch(payload)
		if err != nil {
			t.Fatal(err)
		}
		for bv := range d.Bets() {
			_ = bv
		}
		if err := d.Err(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("DecodeBatch, iteration and Err allocated %.1f times, want 0", allocs)
	}
	d, err := protocol.DecodeBatch(payload)
	if err != nil {
		t.Fatal(err)
	}
	for bv := range d.Bets() {
		bv.FirstName[0] = '#'
	}
	v, err := protocol.ParseBatch(payload)
	if err != nil {
		t.Fatal(err)
	}
	for bv := range v.Bets() {
		if bv.FirstName[0] != '#' {
			t.Fatalf("BetView of DecodeBatch does not alias the payload")
		}
	}
}

// TestParseBatch_Aliases checks that ParseBatch copies nothing: the bets'
// fields point into the payload.
func TestParseBatch_Aliases(t *testing.T) {
	frame := buildBatch(t, 3, 1, sampleBets(3, 3), 0)
	v, err := protocol.ParseBatch(frame[protocol.HeaderSize:])
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := protocol.ParseBatch(frame[protocol.HeaderSize:]); err != nil {
			t.Fatal(err)
		}
		for bv := range v.Bets() {
			_ = bv
		}
	})
	if allocs != 0 {
		t.Errorf("ParseBatch and iteration allocated %.1f times, want 0", allocs)
	}
	for bv := range v.Bets() {
		bv.FirstName[0] = '#'
	}
	for bv := range v.Bets() {
		if bv.FirstName[0] != '#' {
			t.Fatalf("BetView does not alias the payload")
		}
	}
	// Stopping the iteration early is allowed.
	n := 0
	for range v.Bets() {
		n++
		break
	}
	if n != 1 {
		t.Fatalf("break after one bet iterated %d", n)
	}
}
