package protocol_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"lottery"
	"lottery/protocol"
)

// unhex decodes hex written with spaces, so golden frames can be laid out
// field by field.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func encode(t testing.TB, m protocol.Message) []byte {
	t.Helper()
	b, err := protocol.AppendFrame(nil, m)
	if err != nil {
		t.Fatalf("AppendFrame(%#v): %v", m, err)
	}
	return b
}

// decode parses a whole frame and decodes its message.
func decode(t testing.TB, frame []byte) protocol.Message {
	t.Helper()
	f, err := protocol.ParseFrame(frame)
	if err != nil {
		t.Fatalf("ParseFrame(% x): %v", frame, err)
	}
	m, err := protocol.Decode(f)
	if err != nil {
		t.Fatalf("Decode(% x): %v", frame, err)
	}
	return m
}

// goldenMessages are every message but a batch, with their exact bytes:
// version 01, type, payload length (u16 big-endian), payload.
var goldenMessages = []struct {
	name string
	msg  protocol.Message
	hex  string
}{
	{"Hello", protocol.Hello{Agency: 3}, "01 01 0004  00000003"},
	{"HelloMax", protocol.Hello{Agency: 0xfffffffe}, "01 01 0004  fffffffe"},
	{"HelloReceipts", protocol.Hello{Agency: 3, Receipts: true, TreeSize: 0x1f4}, "01 01 000c  00000003 00000000000001f4"},
	{"HelloReceiptsNone", protocol.Hello{Agency: 3, Receipts: true}, "01 01 000c  00000003 0000000000000000"},
	{"Welcome", protocol.Welcome{LastSeq: 0x0102030405060708}, "01 02 0008  0102030405060708"},
	{"WelcomeZero", protocol.Welcome{}, "01 02 0008  0000000000000000"},
	{"BatchAck", protocol.BatchAck{Seq: 9, Code: lottery.NoError, Count: 300, Window: 16}, "01 04 000d  0000000000000009 00 012c 0010"},
	{"BatchAckError", protocol.BatchAck{Seq: 1 << 40, Code: lottery.EStorage, Count: 0}, "01 04 000d  0000010000000000 08 0000 0000"},
	{"BatchAckReceipt", protocol.BatchAck{Seq: 9, Count: 300, Window: 16, Receipt: []byte{1, 2, 3}}, "01 04 0012  0000000000000009 00 012c 0010 0003 010203"},
	{"Finished", protocol.Finished{Agency: 5, LastSeq: 12}, "01 05 000c  00000005 000000000000000c"},
	{"FinishedAck", protocol.FinishedAck{}, "01 06 0000"},
	{"FinishedAckReceipt", protocol.FinishedAck{Receipt: []byte{0xaa}}, "01 06 0003  0001 aa"},
	{"Statement", protocol.Statement{Final: true, Data: []byte("st")}, "01 0b 0005  01 0002 7374"},
	{"StatementPiece", protocol.Statement{Data: []byte("x")}, "01 0b 0004  00 0001 78"},
	{"WinnersQuery", protocol.WinnersQuery{Agency: 2}, "01 07 0004  00000002"},
	{"Winners", protocol.Winners{Final: true, Documents: []string{"0012", "345"}},
		"01 08 000e  01 0002  0004 30303132  0003 333435"},
	{"WinnersNotFinal", protocol.Winners{Final: false, Documents: []string{"7"}}, "01 08 0006  00 0001  0001 37"},
	{"WinnersEmpty", protocol.Winners{Final: true, Documents: []string{}}, "01 08 0003  01 0000"},
	{"Echo", protocol.Echo{Data: []byte("hi")}, "01 09 0002  6869"},
	{"EchoEmpty", protocol.Echo{}, "01 09 0000"},
	{"Error", protocol.Error{Code: lottery.EMalformed, Message: "bad"}, "01 0a 0006  03 0003 626164"},
	{"ErrorAccent", protocol.Error{Code: lottery.EWrongAgency, Message: "ñ"}, "01 0a 0005  02 0002 c3b1"},
}

func TestAppendFrame_Golden(t *testing.T) {
	for _, tt := range goldenMessages {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.hex)
			if got := encode(t, tt.msg); !bytes.Equal(got, want) {
				t.Errorf("AppendFrame(%#v) =\n % x\nwant\n % x", tt.msg, got, want)
			}
			// Appending keeps what dst held.
			got, err := protocol.AppendFrame([]byte("prefix"), tt.msg)
			if err != nil || !bytes.Equal(got, append([]byte("prefix"), want...)) {
				t.Errorf("AppendFrame after a prefix = % x, %v", got, err)
			}
		})
	}
}

func TestDecode_RoundTrip(t *testing.T) {
	for _, tt := range goldenMessages {
		t.Run(tt.name, func(t *testing.T) {
			got := decode(t, unhex(t, tt.hex))
			want := tt.msg
			if e, ok := want.(protocol.Echo); ok && len(e.Data) == 0 {
				want = protocol.Echo{} // no bytes decode as nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Decode = %#v, want %#v", got, want)
			}
			if got.Type() != tt.msg.Type() {
				t.Errorf("Type() = %v, want %v", got.Type(), tt.msg.Type())
			}
		})
	}
}

// TestDecode_RoundTripValues round-trips every message with extreme values.
func TestDecode_RoundTripValues(t *testing.T) {
	long := strings.Repeat("x", protocol.MaxPayloadSize-3)
	msgs := []protocol.Message{
		protocol.Hello{}, protocol.Hello{Agency: 1<<32 - 1},
		protocol.Welcome{LastSeq: 1<<64 - 1},
		protocol.BatchAck{Seq: 1<<64 - 1, Code: 255, Count: 65535, Window: 65535},
		protocol.Finished{Agency: 1<<32 - 1, LastSeq: 1<<64 - 1},
		protocol.WinnersQuery{Agency: 1<<32 - 1},
		protocol.Winners{Final: false, Documents: []string{"", "1234567890", "ñ"}},
		protocol.Echo{Data: bytes.Repeat([]byte{0, 0xff}, protocol.MaxPayloadSize/2)},
		protocol.Error{Code: lottery.EInternal, Message: long},
		protocol.Error{Code: lottery.NoError, Message: ""},
	}
	for _, m := range msgs {
		t.Run(m.Type().String(), func(t *testing.T) {
			frame := encode(t, m)
			if len(frame) > protocol.MaxFrameSize {
				t.Fatalf("frame of %d bytes", len(frame))
			}
			if got := decode(t, frame); !reflect.DeepEqual(got, m) {
				t.Errorf("round trip of %.80v gave %.80v", m, got)
			}
		})
	}
}

func TestAppendFrame_ErrTooLarge(t *testing.T) {
	ok := protocol.Echo{Data: make([]byte, protocol.MaxPayloadSize)}
	if frame := encode(t, ok); len(frame) != protocol.MaxFrameSize {
		t.Fatalf("largest echo frame is %d bytes, want %d", len(frame), protocol.MaxFrameSize)
	}
	tooMany := make([]string, 3000) // 3 + 3000×(2+1) bytes > 8188
	for i := range tooMany {
		tooMany[i] = "1"
	}
	for _, m := range []protocol.Message{
		protocol.Echo{Data: make([]byte, protocol.MaxPayloadSize+1)},
		protocol.Winners{Documents: tooMany},
	} {
		t.Run(m.Type().String(), func(t *testing.T) {
			dst := []byte("keep")
			got, err := protocol.AppendFrame(dst, m)
			if !errors.Is(err, protocol.ErrTooLarge) {
				t.Fatalf("AppendFrame err = %v, want ErrTooLarge", err)
			}
			if string(got) != "keep" {
				t.Fatalf("AppendFrame left dst = %.20q…, want it as it was", got)
			}
		})
	}
}

// TestAppendFrame_ErrorTruncated checks that an Error message too long for
// a frame is cut to fit, never refused: the central must always be able to
// say why.
func TestAppendFrame_ErrorTruncated(t *testing.T) {
	m := protocol.Error{Code: lottery.EInternal, Message: strings.Repeat("e", 3*protocol.MaxFrameSize)}
	frame := encode(t, m)
	if len(frame) != protocol.MaxFrameSize {
		t.Fatalf("frame of %d bytes, want %d", len(frame), protocol.MaxFrameSize)
	}
	got := decode(t, frame).(protocol.Error)
	if got.Code != m.Code || got.Message != m.Message[:protocol.MaxPayloadSize-3] {
		t.Errorf("decoded code %v and %d message bytes", got.Code, len(got.Message))
	}
}

func TestDecode_Err(t *testing.T) {
	tests := []struct {
		name    string
		typ     protocol.Type
		payload string // hex
		want    error
	}{
		{"HelloShort", protocol.TypeHello, "000003", protocol.ErrMalformed},
		{"HelloTrailing", protocol.TypeHello, "00000003 00", protocol.ErrMalformed},
		{"HelloEmpty", protocol.TypeHello, "", protocol.ErrMalformed},
		{"WelcomeShort", protocol.TypeWelcome, "00000000000001", protocol.ErrMalformed},
		{"BatchAckShort", protocol.TypeBatchAck, "0000000000000009 00 0001 00", protocol.ErrMalformed},
		{"BatchAckTrailing", protocol.TypeBatchAck, "0000000000000009 00 0001 0000 ff", protocol.ErrMalformed},
		{"FinishedShort", protocol.TypeFinished, "00000005", protocol.ErrMalformed},
		{"FinishedAckTrailing", protocol.TypeFinishedAck, "00", protocol.ErrMalformed},
		{"WinnersQueryTrailing", protocol.TypeWinnersQuery, "00000002 0000", protocol.ErrMalformed},
		{"WinnersBadBool", protocol.TypeWinners, "02 0000", protocol.ErrMalformed},
		{"WinnersCountTooBig", protocol.TypeWinners, "01 0002 0001 31", protocol.ErrMalformed},
		{"WinnersCountHuge", protocol.TypeWinners, "01 ffff 0001 31", protocol.ErrMalformed},
		{"WinnersCountTooSmall", protocol.TypeWinners, "01 0001 0001 31 0001 32", protocol.ErrMalformed},
		{"WinnersLyingLength", protocol.TypeWinners, "01 0001 0005 3132", protocol.ErrMalformed},
		{"WinnersLengthCut", protocol.TypeWinners, "01 0001 00", protocol.ErrMalformed},
		{"WinnersEmpty", protocol.TypeWinners, "", protocol.ErrMalformed},
		{"ErrorLyingLength", protocol.TypeError, "03 000a 626164", protocol.ErrMalformed},
		{"ErrorTrailing", protocol.TypeError, "03 0001 62 64", protocol.ErrMalformed},
		{"ErrorNoLength", protocol.TypeError, "03", protocol.ErrMalformed},
		{"Batch", protocol.TypeBatch, "00000001 0000000000000001 0000", protocol.ErrMalformed},
		{"UnknownType", protocol.Type(0x0c), "", protocol.ErrUnknownType},
		{"TypeZero", protocol.Type(0), "", protocol.ErrUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := protocol.Decode(protocol.Frame{Type: tt.typ, Payload: unhex(t, tt.payload)})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %#v, %v; want %v", m, err, tt.want)
			}
			if m != nil {
				t.Fatalf("Decode returned %#v with its error", m)
			}
		})
	}
}

// TestDecode_Copies checks that decoded strings and bytes do not alias the
// frame, which the Reader reuses.
func TestDecode_Copies(t *testing.T) {
	for _, m := range []protocol.Message{
		protocol.Echo{Data: []byte("ping")},
		protocol.Winners{Final: true, Documents: []string{"123"}},
		protocol.Error{Code: 1, Message: "nope"},
	} {
		frame := encode(t, m)
		got := decode(t, frame)
		for i := protocol.HeaderSize; i < len(frame); i++ {
			frame[i] = 'Z'
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("after overwriting the frame, %#v became %#v", m, got)
		}
	}
}

func TestSplitWinners(t *testing.T) {
	docs := func(n int, width int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%0*d", width, i)
		}
		return out
	}
	tests := []struct {
		name   string
		docs   []string
		frames int
	}{
		{"None", nil, 1},
		{"Empty", []string{}, 1},
		{"One", []string{"00012345"}, 1},
		{"ExactlyOneFrame", docs((protocol.MaxPayloadSize-3)/10, 8), 1},
		{"OneMoreThanAFrame", docs((protocol.MaxPayloadSize-3)/10+1, 8), 2},
		{"Many", docs(50_000, 10), 74},
		{"ShortDocuments", docs(70_000, 5), 60}, // 1169 seven-byte documents a frame
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := protocol.SplitWinners(tt.docs)
			if len(ws) != tt.frames {
				t.Errorf("%d frames, want %d", len(ws), tt.frames)
			}
			var all []string
			for i, w := range ws {
				frame := encode(t, w)
				if len(frame) > protocol.MaxFrameSize {
					t.Fatalf("frame %d has %d bytes", i, len(frame))
				}
				if w.Final != (i == len(ws)-1) {
					t.Fatalf("frame %d of %d: Final = %v", i, len(ws), w.Final)
				}
				got := decode(t, frame).(protocol.Winners)
				if got.Final != w.Final || len(got.Documents) != len(w.Documents) {
					t.Fatalf("frame %d decoded as %d documents, final %v", i, len(got.Documents), got.Final)
				}
				if i < len(ws)-1 {
					// Not the last: the next document would not have fitted.
					next := len(ws[i+1].Documents[0])
					if len(frame)+2+next <= protocol.MaxFrameSize {
						t.Fatalf("frame %d has %d bytes and left out a %d-byte document", i, len(frame), next)
					}
				}
				all = append(all, got.Documents...)
			}
			if len(all) != len(tt.docs) || len(all) > 0 && !reflect.DeepEqual(all, tt.docs) {
				t.Fatalf("documents not preserved in order: got %d, want %d", len(all), len(tt.docs))
			}
		})
	}
}
