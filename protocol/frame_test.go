package protocol_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"lottery/protocol"
)

// stream is a few frames of every kind, back to back, with the messages
// they carry (a batch decodes to itself: its frame bytes).
func stream(t testing.TB) ([]byte, [][]byte) {
	t.Helper()
	var out []byte
	var frames [][]byte
	for _, tt := range goldenMessages {
		f := encode(t, tt.msg)
		frames = append(frames, f)
		out = append(out, f...)
	}
	batch := buildBatch(t, 7, 1, sampleBets(40, 1), 0)
	frames = append(frames, batch)
	out = append(out, batch...)
	big := encode(t, protocol.Echo{Data: bytes.Repeat([]byte("é"), protocol.MaxPayloadSize/2)})
	frames = append(frames, big)
	return append(out, big...), frames
}

func TestReader_Next(t *testing.T) {
	data, frames := stream(t)
	readers := map[string]func(io.Reader) io.Reader{
		"Whole":    func(r io.Reader) io.Reader { return r },
		"OneByte":  iotest.OneByteReader,
		"Half":     iotest.HalfReader,
		"DataErr":  iotest.DataErrReader,
		"OneByteX": func(r io.Reader) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(r)) },
	}
	for name, wrap := range readers {
		t.Run(name, func(t *testing.T) {
			r := protocol.NewReader(wrap(bytes.NewReader(data)))
			for i, want := range frames {
				f, err := r.Next()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				got := append([]byte{protocol.Version, byte(f.Type), byte(len(f.Payload) >> 8), byte(len(f.Payload))}, f.Payload...)
				if !bytes.Equal(got, want) {
					t.Fatalf("frame %d = % x…, want % x…", i, got[:min(len(got), 16)], want[:min(len(want), 16)])
				}
				if r.MidFrame() && i == len(frames)-1 {
					t.Fatalf("MidFrame after the last whole frame")
				}
			}
			if f, err := r.Next(); err != io.EOF {
				t.Fatalf("Next at the end = %v, %v; want io.EOF", f.Type, err)
			}
			if r.MidFrame() {
				t.Fatalf("MidFrame at a clean end")
			}
		})
	}
}

func TestReader_NextErr(t *testing.T) {
	hello := "01 01 0004 00000003"
	tests := []struct {
		name  string
		in    string // hex, after one good Hello frame
		want  error
		also  error // a second error the chain must hold, if any
		frame bool  // the good frame first
	}{
		{"CleanEOF", "", io.EOF, nil, true},
		{"EmptyStream", "", io.EOF, nil, false},
		{"TruncatedHeader1", "01", protocol.ErrTruncated, nil, true},
		{"TruncatedHeader3", "01 01 00", protocol.ErrTruncated, nil, false},
		{"TruncatedPayload", "01 01 0004 0000", protocol.ErrTruncated, io.ErrUnexpectedEOF, true},
		{"TruncatedEmptyPayload", "01 09 0010", protocol.ErrTruncated, io.ErrUnexpectedEOF, false},
		{"BadVersion0", "00 01 0004 00000003", protocol.ErrVersion, nil, true},
		{"BadVersion2", "02 01 0004 00000003", protocol.ErrVersion, nil, false},
		{"BadVersionFF", "ff ff ffff", protocol.ErrVersion, nil, false},
		{"UnknownType0", "01 00 0000", protocol.ErrUnknownType, nil, true},
		{"UnknownType0C", "01 0c 0000", protocol.ErrUnknownType, nil, false},
		{"UnknownTypeFF", "01 ff 0004 00000001", protocol.ErrUnknownType, nil, false},
		{"TooLarge8189", "01 03 1ffd", protocol.ErrTooLarge, nil, true},
		{"TooLargeFFFF", "01 09 ffff", protocol.ErrTooLarge, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if tt.frame {
				in = hello + in
			}
			r := protocol.NewReader(bytes.NewReader(unhex(t, in)))
			if tt.frame {
				if f, err := r.Next(); err != nil || f.Type != protocol.TypeHello {
					t.Fatalf("first frame = %v, %v", f.Type, err)
				}
			}
			f, err := r.Next()
			if !errors.Is(err, tt.want) || tt.also != nil && !errors.Is(err, tt.also) {
				t.Fatalf("Next = %v, %v; want %v", f.Type, err, tt.want)
			}
			if f.Payload != nil {
				t.Fatalf("Next returned a payload with its error")
			}
		})
	}
}

// trap serves a header and fails the test if anything after it is read.
type trap struct {
	t      *testing.T
	header []byte
}

func (r *trap) Read(p []byte) (int, error) {
	if len(r.header) == 0 {
		r.t.Errorf("the reader read past the header of an invalid frame")
		return 0, io.EOF
	}
	n := copy(p, r.header)
	r.header = r.header[n:]
	return n, nil
}

// TestReader_NextBadHeaderReadsNothingMore checks that the header is judged
// before a single payload byte is read (or room for it allocated).
func TestReader_NextBadHeaderReadsNothingMore(t *testing.T) {
	for _, tt := range []struct {
		hex  string
		want error
	}{
		{"01 03 1ffd", protocol.ErrTooLarge},
		{"01 03 ffff", protocol.ErrTooLarge},
		{"07 03 0010", protocol.ErrVersion},
		{"01 33 0010", protocol.ErrUnknownType},
	} {
		r := protocol.NewReader(&trap{t: t, header: unhex(t, tt.hex)})
		if _, err := r.Next(); !errors.Is(err, tt.want) {
			t.Errorf("Next on %s = %v, want %v", tt.hex, err, tt.want)
		}
	}
}

func TestReader_NextMaxPayload(t *testing.T) {
	frame := encode(t, protocol.Echo{Data: bytes.Repeat([]byte{0xab}, protocol.MaxPayloadSize)})
	if got := frame[2:4]; !bytes.Equal(got, []byte{0x1f, 0xfc}) {
		t.Fatalf("length field % x, want 1f fc (8188)", got)
	}
	r := protocol.NewReader(iotest.HalfReader(bytes.NewReader(frame)))
	f, err := r.Next()
	if err != nil || len(f.Payload) != protocol.MaxPayloadSize {
		t.Fatalf("Next = %d bytes, %v; want %d", len(f.Payload), err, protocol.MaxPayloadSize)
	}
}

// TestReader_NextAllocs checks that reading frames allocates nothing.
func TestReader_NextAllocs(t *testing.T) {
	data, frames := stream(t)
	src := bytes.NewReader(data)
	r := protocol.NewReader(src)
	allocs := testing.AllocsPerRun(20, func() {
		src.Reset(data)
		for range frames {
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("reading %d frames allocated %.1f times, want 0", len(frames), allocs)
	}
}

// script is a reader that returns its steps one by one: some bytes, or an
// error such as a timeout, after which it goes on with the next step.
type script struct{ steps []step }

type step struct {
	data []byte
	err  error
}

func (s *script) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := &s.steps[0]
	if st.err != nil {
		err := st.err
		s.steps = s.steps[1:]
		return 0, err
	}
	n := copy(p, st.data)
	st.data = st.data[n:]
	if len(st.data) == 0 {
		s.steps = s.steps[1:]
	}
	return n, nil
}

var errTimeout = errors.New("i/o timeout")

func TestReader_MidFrame(t *testing.T) {
	hello := unhex(t, "01 01 0004 00000003")
	tests := []struct {
		name     string
		before   []byte // bytes of the frame before the timeout
		mid      bool   // MidFrame after the timeout
		resumeOK bool   // the frame is read whole once the rest arrives
	}{
		{"Idle", nil, false, true},
		{"HalfHeader", hello[:2], true, true},
		{"WholeHeader", hello[:4], true, false},
		{"HalfPayload", hello[:6], true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := []step{{data: hello}}
			if len(tt.before) > 0 {
				steps = append(steps, step{data: tt.before})
			}
			steps = append(steps, step{err: errTimeout}, step{data: hello[len(tt.before):]})
			r := protocol.NewReader(&script{steps: steps})
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
			if r.MidFrame() {
				t.Fatal("MidFrame between frames")
			}
			if _, err := r.Next(); !errors.Is(err, errTimeout) {
				t.Fatalf("Next = %v, want the reader's own error", err)
			}
			if got := r.MidFrame(); got != tt.mid {
				t.Fatalf("MidFrame() = %v, want %v", got, tt.mid)
			}
			if !tt.resumeOK {
				return // the stream is out of sync: the caller closes it
			}
			f, err := r.Next()
			if err != nil {
				t.Fatalf("Next after the timeout: %v", err)
			}
			if m, err := protocol.Decode(f); err != nil || m != (protocol.Hello{Agency: 3}) {
				t.Fatalf("resumed frame = %#v, %v", m, err)
			}
			if r.MidFrame() {
				t.Fatal("MidFrame after a whole frame")
			}
		})
	}
}

func TestParseFrame(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want error
	}{
		{"OK", "01 01 0004 00000003", nil},
		{"OKEmpty", "01 06 0000", nil},
		{"ErrEmpty", "", protocol.ErrTruncated},
		{"ErrShortHeader", "01 01 00", protocol.ErrTruncated},
		{"ErrShortPayload", "01 01 0004 000000", protocol.ErrTruncated},
		{"ErrTrailing", "01 01 0004 00000003 01", protocol.ErrMalformed},
		{"ErrVersion", "02 01 0004 00000003", protocol.ErrVersion},
		{"ErrType", "01 0c 0000", protocol.ErrUnknownType},
		{"ErrTooLarge", "01 09 2000", protocol.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := protocol.ParseFrame(unhex(t, tt.hex))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("ParseFrame = %v, %v; want %v", f.Type, err, tt.want)
			}
		})
	}
}

func TestType_String(t *testing.T) {
	want := map[protocol.Type]string{
		0x01: "hello", 0x02: "welcome", 0x03: "batch", 0x04: "batch_ack", 0x05: "finished",
		0x06: "finished_ack", 0x07: "winners_query", 0x08: "winners", 0x09: "echo", 0x0a: "error", 0x0b: "statement",
	}
	for i := 0; i < 256; i++ {
		typ := protocol.Type(i)
		name, known := want[typ]
		if typ.Known() != known {
			t.Errorf("Type(0x%02x).Known() = %v", i, typ.Known())
		}
		if !known {
			name = "type_0x" + strings.ToLower(string("0123456789abcdef"[i>>4])+string("0123456789abcdef"[i&15]))
		}
		if got := typ.String(); got != name {
			t.Errorf("Type(0x%02x).String() = %q, want %q", i, got, name)
		}
	}
}
