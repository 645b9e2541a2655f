package protocol

import (
	"encoding/binary"
	"fmt"
	"iter"
	"math"

	"lottery"
)

// A batch payload is a fixed part and then Count bets:
//
//	agency u32 | seq u64 | count u16 | bet × count
//	bet:  number u16 | first name str | last name str | document str | birthdate str
//	str:  length u16 | UTF-8 bytes
const (
	batchFixedSize = 4 + 8 + 2
	betFixedSize   = 2 + 4*2
	// MaxBetsPerBatch is the most bets a frame can physically hold.
	MaxBetsPerBatch = (MaxPayloadSize - batchFixedSize) / betFixedSize
)

// BetView is one bet of a received batch. Its fields alias the frame
// buffer: they are valid only as long as the Frame is.
type BetView struct {
	FirstName, LastName, Document, Birthdate []byte
	Number                                   int
}

// Bet copies the view into a domain Bet of the given agency.
func (v BetView) Bet(agency int) lottery.Bet {
	return lottery.Bet{Agency: agency, FirstName: string(v.FirstName), LastName: string(v.LastName),
		Document: string(v.Document), Birthdate: string(v.Birthdate), Number: v.Number}
}

// batchView is a batch checked by ParseBatch whose bets are read in place
// from the frame, as often as wanted. Callers get one from ParseBatch and
// never name it: they read Agency, Seq and Count and range over Bets.
type batchView struct {
	Agency uint32
	Seq    uint64
	Count  int
	bets   []byte
}

// ParseBatch checks the structure of a batch payload (every length inside
// the payload, the count matching the bets, nothing after them) without
// copying anything, and returns the batch's agency, sequence number and
// count, and its Bets. It does not check the bet rules. A caller that visits
// every bet once should use DecodeBatch instead, which walks the bets only
// once.
func ParseBatch(payload []byte) (batchView, error) {
	v, err := parseBatchHeader(payload)
	if err != nil {
		return batchView{}, err
	}
	if err := skipBets(v.bets, v.Count); err != nil {
		return batchView{}, err
	}
	return v, nil
}

// parseBatchHeader reads the fixed part of a batch payload and checks that
// the count is possible in the bytes left.
func parseBatchHeader(payload []byte) (batchView, error) {
	d := decoder{b: payload}
	v := batchView{Agency: d.u32(), Seq: d.u64(), Count: int(d.u16())}
	if d.err != nil {
		return batchView{}, fmt.Errorf("batch: %w", d.err)
	}
	v.bets = d.b
	if v.Count > len(v.bets)/betFixedSize {
		return batchView{}, fmt.Errorf("%w: batch: %d bets in %d bytes", ErrMalformed, v.Count, len(v.bets))
	}
	return v, nil
}

// skipBets checks that b is exactly count bets, field by field, and says
// where it is not.
func skipBets(b []byte, count int) error {
	d := decoder{b: b}
	for i := 0; i < count; i++ {
		d.take(2)
		for f := 0; f < 4; f++ {
			d.str()
		}
	}
	return d.finish(TypeBatch)
}

// Bets iterates over the bets of a batch checked by ParseBatch.
func (v batchView) Bets() iter.Seq[BetView] {
	return func(yield func(BetView) bool) {
		d := decoder{b: v.bets}
		for i := 0; i < v.Count; i++ {
			b := BetView{Number: int(d.u16())}
			b.FirstName, b.LastName, b.Document, b.Birthdate = d.str(), d.str(), d.str(), d.str()
			if !yield(b) {
				return
			}
		}
	}
}

// BatchDecoder decodes a batch payload in one pass, for the central's hot
// path: DecodeBatch reads the fixed part, Bets yields each bet as soon as
// its own lengths are checked, and Err checks the rest of the payload.
// A payload is well formed only if Err returns nil: nothing read from a
// BatchDecoder may be acted upon before that, since the bytes after the
// bets read so far may still be malformed. It accepts exactly the payloads
// ParseBatch accepts, with the same bets and the same errors.
type BatchDecoder struct {
	Agency uint32
	Seq    uint64
	Count  int
	rest   []byte // the bets not yet yielded
	left   int    // how many of them
	err    error  // the structure error found, if any
}

// DecodeBatch reads the fixed part of a batch payload. Like ParseBatch it
// refuses a count the payload cannot hold, but it checks the bets only as
// they are read (Bets) or skipped (Err).
func DecodeBatch(payload []byte) (BatchDecoder, error) {
	v, err := parseBatchHeader(payload)
	if err != nil {
		return BatchDecoder{}, err
	}
	return BatchDecoder{Agency: v.Agency, Seq: v.Seq, Count: v.Count, rest: v.bets, left: v.Count}, nil
}

// Bets yields the bets not read yet, in order, each one whole: it stops
// before a bet whose lengths run past the payload (Err then reports
// why). The views alias the payload.
func (d *BatchDecoder) Bets() iter.Seq[BetView] {
	return func(yield func(BetView) bool) {
		for d.left > 0 && d.err == nil {
			b, ok := d.next()
			if !ok || !yield(b) {
				return
			}
		}
	}
}

// next cuts one bet off the front of the rest, or records why it cannot.
func (d *BatchDecoder) next() (BetView, bool) {
	b := d.rest
	if len(b) < 2 {
		return d.malformed()
	}
	v := BetView{Number: int(binary.BigEndian.Uint16(b))}
	b = b[2:]
	var ok bool
	if v.FirstName, b, ok = cutString(b); !ok {
		return d.malformed()
	}
	if v.LastName, b, ok = cutString(b); !ok {
		return d.malformed()
	}
	if v.Document, b, ok = cutString(b); !ok {
		return d.malformed()
	}
	if v.Birthdate, b, ok = cutString(b); !ok {
		return d.malformed()
	}
	d.rest, d.left = b, d.left-1
	return v, true
}

// cutString cuts a string (a 2-byte length, then the bytes) off the front
// of b.
func cutString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, b, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b)-2 < n {
		return nil, b, false
	}
	return b[2 : 2+n], b[2+n:], true
}

// malformed records the structure error at the bet not yet yielded. It is
// the cold path, so it walks the rest with ParseBatch's own checks: the
// error says what ParseBatch would have said.
func (d *BatchDecoder) malformed() (BetView, bool) {
	d.err = skipBets(d.rest, d.left)
	if d.err == nil { // unreachable: next only fails where skipBets does
		d.err = fmt.Errorf("%w: %s: a bet that does not decode", ErrMalformed, TypeBatch)
	}
	return BetView{}, false
}

// Err checks the bets not read yet and that nothing follows the last
// one, and returns the first structure error of the payload (wrapping
// ErrMalformed), or nil if the whole payload is well formed.
func (d *BatchDecoder) Err() error {
	if d.err == nil {
		d.err = skipBets(d.rest, d.left)
		d.rest, d.left = nil, 0
	}
	return d.err
}

// BatchBuilder packs bets into one batch frame, refusing any bet that would
// push the frame over MaxFrameSize or the batch over its bet limit. A
// refused bet is left for the next batch: nothing is ever dropped.
type BatchBuilder struct {
	buf      []byte
	maxCount int
	count    int
}

// Reset starts a new batch of the agency with sequence number seq, holding
// at most maxCount bets (capped at what a frame can hold), reusing the
// builder's buffer.
func (b *BatchBuilder) Reset(agency uint32, seq uint64, maxCount int) {
	if maxCount <= 0 || maxCount > MaxBetsPerBatch {
		maxCount = MaxBetsPerBatch
	}
	if b.buf == nil {
		b.buf = make([]byte, 0, MaxFrameSize)
	}
	b.buf = append(b.buf[:0], Version, byte(TypeBatch), 0, 0)
	b.buf = binary.BigEndian.AppendUint32(b.buf, agency)
	b.buf = binary.BigEndian.AppendUint64(b.buf, seq)
	b.buf = append(b.buf, 0, 0) // count, filled in by Frame
	b.maxCount, b.count = maxCount, 0
}

// Add appends a bet if it fits and reports whether it did. The bet must
// already be valid: Add checks only sizes.
func (b *BatchBuilder) Add(first, last, document, birthdate []byte, number int) bool {
	size := betFixedSize + len(first) + len(last) + len(document) + len(birthdate)
	if b.count >= b.maxCount || len(b.buf)+size > MaxFrameSize || number < 0 || number > math.MaxUint16 {
		return false
	}
	b.buf = binary.BigEndian.AppendUint16(b.buf, uint16(number))
	for _, s := range [...][]byte{first, last, document, birthdate} {
		b.buf = binary.BigEndian.AppendUint16(b.buf, uint16(len(s)))
		b.buf = append(b.buf, s...)
	}
	b.count++
	return true
}

// AddBet is Add for a domain Bet.
func (b *BatchBuilder) AddBet(bet lottery.Bet) bool {
	return b.Add([]byte(bet.FirstName), []byte(bet.LastName), []byte(bet.Document), []byte(bet.Birthdate), bet.Number)
}

// Len returns the number of bets added since Reset.
func (b *BatchBuilder) Len() int { return b.count }

// Full reports whether the batch reached its bet limit.
func (b *BatchBuilder) Full() bool { return b.count >= b.maxCount }

// Frame fills in the lengths and returns the whole frame. It aliases the
// builder's buffer until the next Reset.
func (b *BatchBuilder) Frame() []byte {
	binary.BigEndian.PutUint16(b.buf[2:], uint16(len(b.buf)-HeaderSize))
	binary.BigEndian.PutUint16(b.buf[HeaderSize+12:], uint16(b.count))
	return b.buf
}
