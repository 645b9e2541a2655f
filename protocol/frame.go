// Package protocol is the wire format between agencies and the central:
// length-prefixed binary frames, big-endian, never longer than 8 KiB.
//
// Every frame is a 4-byte header followed by a payload:
//
//	 0       1       2               4
//	+-------+-------+---------------+----------------- ... --+
//	|version| type  | payload length|  payload (0..8188 B)   |
//	+-------+-------+---------------+----------------- ... --+
//
// The reader checks the version, the type and the length before it reads
// (let alone allocates) the payload. docs/protocol.md has the message table.
package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits of a frame.
const (
	// Version is the only protocol version this code speaks.
	Version = 1
	// HeaderSize is the fixed header: version, type, payload length.
	HeaderSize = 4
	// MaxFrameSize is the course's rule: no message longer than 8 KiB,
	// header included.
	MaxFrameSize = 8192
	// MaxPayloadSize is what is left of a frame for the payload.
	MaxPayloadSize = MaxFrameSize - HeaderSize
)

// Type identifies a message.
type Type uint8

// Message types. Their values are part of the protocol: never renumber them.
const (
	TypeHello        Type = 0x01 // agency → central: who I am
	TypeWelcome      Type = 0x02 // central → agency: last batch stored for you
	TypeBatch        Type = 0x03 // agency → central: bets
	TypeBatchAck     Type = 0x04 // central → agency: batch stored (or why not)
	TypeFinished     Type = 0x05 // agency → central: I sent everything
	TypeFinishedAck  Type = 0x06 // central → agency: noted
	TypeWinnersQuery Type = 0x07 // agency → central: my winners, please
	TypeWinners      Type = 0x08 // central → agency: some of your winners
	TypeEcho         Type = 0x09 // either way: health check, answered byte for byte
	TypeError        Type = 0x0A // central → agency: your request failed
	TypeStatement    Type = 0x0B // central → agency: the signed draw statement, in pieces
)

var typeNames = map[Type]string{
	TypeHello: "hello", TypeWelcome: "welcome", TypeBatch: "batch", TypeBatchAck: "batch_ack",
	TypeFinished: "finished", TypeFinishedAck: "finished_ack", TypeWinnersQuery: "winners_query",
	TypeWinners: "winners", TypeEcho: "echo", TypeError: "error", TypeStatement: "statement",
}

// String returns the type's name for log lines.
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type_0x%02x", uint8(t))
}

// Known reports whether t is a message type of this protocol version.
func (t Type) Known() bool { _, ok := typeNames[t]; return ok }

// Sentinel errors of the frame layer. Callers match them with errors.Is.
var (
	ErrVersion     = errors.New("unsupported protocol version")
	ErrUnknownType = errors.New("unknown message type")
	ErrTooLarge    = errors.New("frame larger than 8192 bytes")
	ErrMalformed   = errors.New("malformed message")
	ErrTruncated   = errors.New("truncated frame")
)

// Frame is one received message. Payload aliases the Reader's buffer and is
// valid only until the next call to Next.
type Frame struct {
	Type    Type
	Payload []byte
}

// Reader reads frames from a stream, reusing one 8 KiB buffer: reading a
// frame allocates nothing.
type Reader struct {
	r   *bufio.Reader
	mid bool // a frame's header was consumed but not its whole payload
	buf [MaxPayloadSize]byte
}

// NewReader returns a Reader that buffers r.
func NewReader(r io.Reader) *Reader {
	return NewReaderSize(r, 2*MaxFrameSize)
}

// NewReaderSize is NewReader with a read buffer of size bytes, at least one
// whole frame: a peer that can only echo needs no more.
func NewReaderSize(r io.Reader, size int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, max(size, MaxFrameSize))}
}

// Next reads the next frame. It returns io.EOF at a clean end of stream,
// ErrTruncated when the stream ends inside a frame, and ErrVersion,
// ErrUnknownType or ErrTooLarge for a bad header, after which the stream
// cannot be resynchronised and must be closed. Any other error comes from
// the underlying reader; if MidFrame is false after it (a read deadline
// that passed between frames, say), reading can go on.
func (r *Reader) Next() (Frame, error) {
	hdr, err := r.r.Peek(HeaderSize) // peek: a timeout here loses nothing
	if err != nil {
		if len(hdr) > 0 && errors.Is(err, io.EOF) {
			return Frame{}, fmt.Errorf("%w: %d header bytes", ErrTruncated, len(hdr))
		}
		return Frame{}, err
	}
	f, n, err := parseHeader(hdr)
	if err != nil {
		return Frame{}, err
	}
	r.r.Discard(HeaderSize)
	r.mid = true
	payload := r.buf[:n]
	if _, err := io.ReadFull(r.r, payload); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, fmt.Errorf("%w: %s payload: %w", ErrTruncated, f.Type, io.ErrUnexpectedEOF)
		}
		return Frame{}, err
	}
	r.mid = false
	f.Payload = payload
	return f, nil
}

// MidFrame reports whether part of a frame has been received but not the
// whole of it: after a timeout, the peer is trickling rather than idle.
func (r *Reader) MidFrame() bool { return r.mid || r.r.Buffered() > 0 }

func parseHeader(hdr []byte) (Frame, int, error) {
	if hdr[0] != Version {
		return Frame{}, 0, fmt.Errorf("%w: %d", ErrVersion, hdr[0])
	}
	t := Type(hdr[1])
	if !t.Known() {
		return Frame{}, 0, fmt.Errorf("%w: 0x%02x", ErrUnknownType, hdr[1])
	}
	n := int(binary.BigEndian.Uint16(hdr[2:4]))
	if n > MaxPayloadSize {
		return Frame{}, 0, fmt.Errorf("%w: payload of %d bytes", ErrTooLarge, n)
	}
	return Frame{Type: t}, n, nil
}

// beginFrame appends a header for type t with a zero length to dst, and
// returns the offset of the frame so endFrame can fill the length in.
func beginFrame(dst []byte, t Type) ([]byte, int) {
	return append(dst, Version, byte(t), 0, 0), len(dst)
}

// endFrame writes the payload length of the frame that starts at start.
func endFrame(dst []byte, start int) ([]byte, error) {
	n := len(dst) - start - HeaderSize
	if n > MaxPayloadSize {
		return dst[:start], fmt.Errorf("%w: payload of %d bytes", ErrTooLarge, n)
	}
	binary.BigEndian.PutUint16(dst[start+2:], uint16(n))
	return dst, nil
}
