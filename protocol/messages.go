package protocol

import (
	"encoding/binary"
	"fmt"
	"math"

	"lottery"
)

// Message is any message but a batch, which has its own zero-copy builder
// (BatchBuilder) and decoder (DecodeBatch) because it is the hot path.
type Message interface {
	Type() Type
	appendPayload(dst []byte) []byte
}

// Hello identifies the agency of a connection. It is the first message an
// agency sends on every connection. An agency that checks the audit log
// sets Receipts and the size of the last tree it accepted (TreeSize, 0 for
// none): its acks then carry receipts proven from that tree on, and its
// winners the signed draw statement. Without Receipts the Hello is the
// four bytes it always was, and so are the answers.
type Hello struct {
	Agency   uint32
	Receipts bool
	TreeSize uint64
}

// Welcome answers Hello with the last batch sequence number the central has
// stored for that agency (0 for none), so an agency can tell a resumed
// session from a new one.
type Welcome struct{ LastSeq uint64 }

// BatchAck answers a batch: Code NoError once it is durably stored (or had
// already been), an error code when the whole batch was rejected. Window
// is how many batches the central grants the agency in flight from now
// on (its share of the central's in-flight budget); 0 grants nothing new.
// Receipt, to an agency that asked for receipts, is the audit log's proof
// that the batch is in it (an encoded audit.Receipt, at most
// MaxReceiptSize bytes); empty otherwise.
type BatchAck struct {
	Seq     uint64
	Code    lottery.Code
	Count   uint16
	Window  uint16
	Receipt []byte
}

// MaxReceiptSize bounds a receipt on the wire: audit.MaxReceiptSize, with
// room to spare in a frame.
const MaxReceiptSize = 6 << 10

// Finished says the agency sent every batch, LastSeq being the last one.
type Finished struct {
	Agency  uint32
	LastSeq uint64
}

// FinishedAck answers Finished once the central has durably noted it;
// Receipt, as in BatchAck, proves the finished record is in the audit log.
type FinishedAck struct{ Receipt []byte }

// Statement carries a piece of the signed draw statement, after the
// winners, to an agency that asked for receipts: the pieces' Data,
// concatenated, are the statement's signed note (its length first, u32),
// then the consistency proof from the agency's tree to the statement's
// (a count u8 and 32-byte hashes). The last piece has Final set. A
// central that has no statement to give (it could not sign it) sends one
// empty final piece: the agency refuses the draw.
type Statement struct {
	Final bool
	Data  []byte
}

// WinnersQuery asks for the winners of the agency. The central answers
// only after the draw.
type WinnersQuery struct{ Agency uint32 }

// Winners carries some of the agency's winning documents; the last frame of
// the answer has Final set (a long list spans several frames).
type Winners struct {
	Final     bool
	Documents []string
}

// Echo is answered with the same bytes: a health check.
type Echo struct{ Data []byte }

// Error says why a request failed. After an Error the central may close the
// connection.
type Error struct {
	Code    lottery.Code
	Message string
}

func (Hello) Type() Type        { return TypeHello }
func (Welcome) Type() Type      { return TypeWelcome }
func (BatchAck) Type() Type     { return TypeBatchAck }
func (Finished) Type() Type     { return TypeFinished }
func (FinishedAck) Type() Type  { return TypeFinishedAck }
func (WinnersQuery) Type() Type { return TypeWinnersQuery }
func (Winners) Type() Type      { return TypeWinners }
func (Echo) Type() Type         { return TypeEcho }
func (Error) Type() Type        { return TypeError }
func (Statement) Type() Type    { return TypeStatement }

func (m Hello) appendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, m.Agency)
	if m.Receipts {
		b = binary.BigEndian.AppendUint64(b, m.TreeSize)
	}
	return b
}
func (m Welcome) appendPayload(b []byte) []byte { return binary.BigEndian.AppendUint64(b, m.LastSeq) }
func (m BatchAck) appendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = append(b, byte(m.Code))
	b = binary.BigEndian.AppendUint16(b, m.Count)
	b = binary.BigEndian.AppendUint16(b, m.Window)
	return appendReceipt(b, m.Receipt)
}

// appendReceipt appends a receipt, if any: its length (u16) and bytes.
func appendReceipt(b, receipt []byte) []byte {
	if len(receipt) == 0 {
		return b
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(receipt)))
	return append(b, receipt...)
}

func (m Statement) appendPayload(b []byte) []byte {
	b = append(b, boolByte(m.Final))
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Data)))
	return append(b, m.Data...)
}
func (m Finished) appendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, m.Agency)
	return binary.BigEndian.AppendUint64(b, m.LastSeq)
}
func (m FinishedAck) appendPayload(b []byte) []byte { return appendReceipt(b, m.Receipt) }
func (m WinnersQuery) appendPayload(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, m.Agency)
}
func (m Winners) appendPayload(b []byte) []byte {
	b = append(b, boolByte(m.Final))
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Documents)))
	for _, d := range m.Documents {
		b = appendString(b, d)
	}
	return b
}
func (m Echo) appendPayload(b []byte) []byte { return append(b, m.Data...) }
func (m Error) appendPayload(b []byte) []byte {
	b = append(b, byte(m.Code))
	msg := m.Message
	if max := MaxPayloadSize - 3; len(msg) > max {
		msg = msg[:max]
	}
	return appendString(b, msg)
}

// AppendFrame appends m as one whole frame to dst. It fails with
// ErrTooLarge, leaving dst as it was, when m does not fit in a frame.
func AppendFrame(dst []byte, m Message) ([]byte, error) {
	dst, start := beginFrame(dst, m.Type())
	return endFrame(m.appendPayload(dst), start)
}

// Decode decodes a frame of any type but TypeBatch (see ParseBatch). The
// payload must be exactly one message: trailing bytes are malformed.
// Strings and byte slices in the result are copies, safe to keep.
func Decode(f Frame) (Message, error) {
	d := decoder{b: f.Payload}
	var m Message
	switch f.Type {
	case TypeHello:
		h := Hello{Agency: d.u32()}
		if len(d.b) > 0 {
			h.Receipts, h.TreeSize = true, d.u64()
		}
		m = h
	case TypeWelcome:
		m = Welcome{LastSeq: d.u64()}
	case TypeBatchAck:
		m = BatchAck{Seq: d.u64(), Code: lottery.Code(d.u8()), Count: d.u16(), Window: d.u16(), Receipt: d.receipt()}
	case TypeFinished:
		m = Finished{Agency: d.u32(), LastSeq: d.u64()}
	case TypeFinishedAck:
		m = FinishedAck{Receipt: d.receipt()}
	case TypeStatement:
		m = Statement{Final: d.boolean(), Data: append([]byte(nil), d.str()...)}
	case TypeWinnersQuery:
		m = WinnersQuery{Agency: d.u32()}
	case TypeWinners:
		w := Winners{Final: d.boolean()}
		n := int(d.u16())
		if n > len(d.b)/2 { // each document takes at least its 2-byte length
			return nil, fmt.Errorf("%w: winners: %d documents in %d bytes", ErrMalformed, n, len(d.b))
		}
		w.Documents = make([]string, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			w.Documents = append(w.Documents, string(d.str()))
		}
		m = w
	case TypeEcho:
		m = Echo{Data: append([]byte(nil), d.rest()...)}
	case TypeError:
		m = Error{Code: lottery.Code(d.u8()), Message: string(d.str())}
	case TypeBatch:
		return nil, fmt.Errorf("%w: use ParseBatch for batches", ErrMalformed)
	default:
		return nil, fmt.Errorf("%w: 0x%02x", ErrUnknownType, uint8(f.Type))
	}
	if err := d.finish(f.Type); err != nil {
		return nil, err
	}
	return m, nil
}

// SplitWinners cuts a list of documents into Winners messages that each fit
// in a frame; the last has Final set. An empty list is one empty message.
func SplitWinners(docs []string) []Winners {
	var out []Winners
	for {
		size, n := 3, 0 // final flag and count
		for n < len(docs) && n < math.MaxUint16 && size+2+len(docs[n]) <= MaxPayloadSize {
			size += 2 + len(docs[n])
			n++
		}
		if n == 0 && len(docs) > 0 {
			docs = docs[1:] // a document longer than a frame cannot exist: drop it
			continue
		}
		out = append(out, Winners{Final: n == len(docs), Documents: docs[:n]})
		docs = docs[n:]
		if len(docs) == 0 {
			return out
		}
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// decoder reads big-endian fields from a payload. The first short read sets
// err and every later read returns zero, so callers check err once.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("%w: %d bytes wanted, %d left", ErrMalformed, n, len(d.b))
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) boolean() bool {
	switch v := d.u8(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		if d.err == nil {
			d.err = fmt.Errorf("%w: boolean byte %d", ErrMalformed, v)
		}
		return false
	}
}

// str reads a string: a 2-byte length and that many bytes.
func (d *decoder) str() []byte { return d.take(int(d.u16())) }

// receipt reads an optional receipt: nothing left, or a length (u16, at
// least 1, at most MaxReceiptSize) and its bytes, copied.
func (d *decoder) receipt() []byte {
	if d.err != nil || len(d.b) == 0 {
		return nil
	}
	n := int(d.u16())
	if d.err == nil && (n == 0 || n > MaxReceiptSize) {
		d.err = fmt.Errorf("%w: a receipt of %d bytes", ErrMalformed, n)
		return nil
	}
	return append([]byte(nil), d.take(n)...)
}

func (d *decoder) rest() []byte {
	v := d.b
	d.b = nil
	return v
}

func (d *decoder) finish(t Type) error {
	if d.err != nil {
		return fmt.Errorf("%s: %w", t, d.err)
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %s: %d trailing bytes", ErrMalformed, t, len(d.b))
	}
	return nil
}
