package protocol_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"lottery"
	"lottery/protocol"
)

// today is a fixed date for the bet rules.
var today = time.Date(2024, time.March, 15, 0, 0, 0, 0, time.UTC)

// seedFrames are real encoded frames: every message of the golden table, a
// few batches (one of them with 100-character multi-byte names) and
// winners split over frames.
func seedFrames(t testing.TB) map[string][]byte {
	t.Helper()
	seeds := map[string][]byte{}
	for _, tt := range goldenMessages {
		seeds[tt.name] = encode(t, tt.msg)
	}
	seeds["BatchGolden"] = buildBatch(t, 1, 2, []lottery.Bet{
		{Agency: 1, FirstName: "Ana", LastName: "Díaz", Document: "00012345", Birthdate: "2000-02-29", Number: 7574},
		{Agency: 1, FirstName: "J", LastName: "P", Document: "1", Birthdate: "1999-12-31", Number: 42},
	}, 0)
	seeds["BatchEmpty"] = buildBatch(t, 3, 1, nil, 0)
	// Seeds stay small: the fuzzer's minimization is quadratic in the input's
	// length and would eat the whole budget on a seed of several KiB.
	seeds["Batch8"] = buildBatch(t, 5, 9, sampleBets(8, 5), 0)
	seeds["BatchLongNames"] = buildBatch(t, 4, 1, []lottery.Bet{{Agency: 4,
		FirstName: strings.Repeat("ñ", lottery.MaxNameRunes), LastName: strings.Repeat("𝄞", 20),
		Document: "1234567890", Birthdate: "1999-12-31", Number: 9999}}, 0)
	ws := protocol.SplitWinners([]string{"00012345", "30904465", "1", "1234567890"})
	seeds["WinnersSplit"] = encode(t, ws[0])
	return seeds
}

// seedStream is the seed frames back to back, ending with a cut frame.
func seedStream(t testing.TB) []byte {
	t.Helper()
	var out []byte
	for _, name := range []string{"Hello", "BatchGolden", "BatchAck", "Finished", "WinnersQuery", "Winners", "Echo", "Error"} {
		out = append(out, seedFrames(t)[name]...)
	}
	return append(out, seedFrames(t)["Batch8"][:50]...)
}

// isFrameErr reports whether err is one of the errors Next may return on a
// hostile stream.
func isFrameErr(err error) bool {
	for _, e := range []error{protocol.ErrTruncated, protocol.ErrVersion, protocol.ErrUnknownType, protocol.ErrTooLarge} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzReaderNext feeds arbitrary bytes to Reader.Next: it never panics,
// never returns a payload over 8188 bytes, returns only the documented
// errors, and the frames it returns are exactly the bytes it consumed.
func FuzzReaderNext(f *testing.F) {
	for _, frame := range seedFrames(f) {
		f.Add(frame)
	}
	f.Add(seedStream(f))
	f.Add([]byte{1, 3, 0x1f, 0xfd})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := protocol.NewReader(bytes.NewReader(data))
		var rebuilt []byte
		for {
			fr, err := r.Next()
			if err == io.EOF {
				if !bytes.Equal(rebuilt, data) {
					t.Fatalf("clean EOF after %d of %d bytes", len(rebuilt), len(data))
				}
				if r.MidFrame() {
					t.Fatal("MidFrame at a clean EOF")
				}
				return
			}
			if err != nil {
				if !isFrameErr(err) {
					t.Fatalf("Next: undocumented error %v", err)
				}
				if !bytes.HasPrefix(data, rebuilt) || len(rebuilt) == len(data) {
					t.Fatalf("error %v after %d of %d bytes", err, len(rebuilt), len(data))
				}
				return
			}
			if len(fr.Payload) > protocol.MaxPayloadSize || !fr.Type.Known() {
				t.Fatalf("frame of type %v with %d payload bytes", fr.Type, len(fr.Payload))
			}
			rebuilt = append(rebuilt, protocol.Version, byte(fr.Type), byte(len(fr.Payload)>>8), byte(len(fr.Payload)))
			rebuilt = append(rebuilt, fr.Payload...)
			if !bytes.HasPrefix(data, rebuilt) {
				t.Fatalf("frames read so far are not the input's first %d bytes", len(rebuilt))
			}
			// Whatever the frame holds, decoding it must not panic.
			if fr.Type == protocol.TypeBatch {
				if v, err := protocol.ParseBatch(fr.Payload); err == nil {
					for range v.Bets() {
					}
				}
			} else {
				_, _ = protocol.Decode(fr)
			}
		}
	})
}

// FuzzDecode decodes arbitrary payloads as every type: it never panics, and
// a payload that decodes is canonical: re-encoding the message gives the
// same bytes, which decode to the same message.
func FuzzDecode(f *testing.F) {
	for _, frame := range seedFrames(f) {
		f.Add(frame[1], frame[protocol.HeaderSize:])
	}
	f.Add(uint8(protocol.TypeWinners), []byte{1, 0xff, 0xff, 0, 1, '1'})
	f.Fuzz(func(t *testing.T, typ uint8, payload []byte) {
		if len(payload) > protocol.MaxPayloadSize {
			return // the Reader never yields such a frame
		}
		m, err := protocol.Decode(protocol.Frame{Type: protocol.Type(typ), Payload: payload})
		if err != nil {
			if !errors.Is(err, protocol.ErrMalformed) && !errors.Is(err, protocol.ErrUnknownType) {
				t.Fatalf("Decode: undocumented error %v", err)
			}
			return
		}
		if m.Type() != protocol.Type(typ) {
			t.Fatalf("a %v frame decoded as a %v", protocol.Type(typ), m.Type())
		}
		frame, err := protocol.AppendFrame(nil, m)
		if err != nil {
			t.Fatalf("re-encoding %#v: %v", m, err)
		}
		if !bytes.Equal(frame[protocol.HeaderSize:], payload) {
			t.Fatalf("payload % x decoded as %#v and re-encoded as % x", payload, m, frame[protocol.HeaderSize:])
		}
		fr, err := protocol.ParseFrame(frame)
		if err != nil {
			t.Fatalf("ParseFrame of a re-encoded %#v: %v", m, err)
		}
		m2, err := protocol.Decode(fr)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("%#v re-encoded decodes as %#v, %v", m, m2, err)
		}
	})
}

// FuzzParseBatch parses arbitrary batch payloads: it never panics, and a
// payload that parses gives bets that the BatchBuilder packs back into
// exactly the same bytes.
func FuzzParseBatch(f *testing.F) {
	for name, frame := range seedFrames(f) {
		if frame[1] == byte(protocol.TypeBatch) {
			f.Add(frame[protocol.HeaderSize:])
		} else if name == "Hello" {
			f.Add(frame[protocol.HeaderSize:])
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) > protocol.MaxPayloadSize {
			return
		}
		v, err := protocol.ParseBatch(payload)
		if err != nil {
			if !errors.Is(err, protocol.ErrMalformed) {
				t.Fatalf("ParseBatch: undocumented error %v", err)
			}
			return
		}
		var b protocol.BatchBuilder
		b.Reset(v.Agency, v.Seq, v.Count)
		n := 0
		for bv := range v.Bets() {
			if !b.Add(bv.FirstName, bv.LastName, bv.Document, bv.Birthdate, bv.Number) {
				t.Fatalf("bet %d of %d refused by the builder", n, v.Count)
			}
			// Validating a hostile bet must not panic either.
			_ = lottery.ValidateFields(bv.FirstName, bv.LastName, bv.Document, bv.Birthdate, bv.Number, today)
			n++
		}
		if n != v.Count {
			t.Fatalf("iterated %d bets, Count %d", n, v.Count)
		}
		if frame := b.Frame(); !bytes.Equal(frame[protocol.HeaderSize:], payload) {
			t.Fatalf("rebuilt batch differs:\n % x\nwant\n % x", frame[protocol.HeaderSize:], payload)
		}
	})
}

// FuzzDecodeBatch checks that the one-pass decoder agrees with ParseBatch
// and Bets on arbitrary payloads, whether the reader reads every bet or
// stops after stop of them: DecodeBatch and Err accept exactly what
// ParseBatch accepts, with the same error text when they refuse, and the
// bets read are ParseBatch's, in order. A malformed payload is never
// reported well formed, however many of its bets were read first.
func FuzzDecodeBatch(f *testing.F) {
	for name, frame := range seedFrames(f) {
		if frame[1] == byte(protocol.TypeBatch) {
			f.Add(frame[protocol.HeaderSize:], uint16(math.MaxUint16))
			f.Add(frame[protocol.HeaderSize:], uint16(1))
		} else if name == "Hello" {
			f.Add(frame[protocol.HeaderSize:], uint16(0))
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte, stop uint16) {
		if len(payload) > protocol.MaxPayloadSize {
			return
		}
		v, want := protocol.ParseBatch(payload)
		d, err := protocol.DecodeBatch(payload)
		var read []protocol.BetView
		if err == nil {
			for b := range d.Bets() {
				if len(read) == int(stop) {
					break
				}
				read = append(read, b)
			}
			err = d.Err()
		}
		if want != nil {
			if err == nil || err.Error() != want.Error() || !errors.Is(err, protocol.ErrMalformed) {
				t.Fatalf("ParseBatch: %v; DecodeBatch after %d bets: %v", want, len(read), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseBatch accepts, DecodeBatch after %d bets: %v", len(read), err)
		}
		if d.Agency != v.Agency || d.Seq != v.Seq || d.Count != v.Count {
			t.Fatalf("DecodeBatch %d/%d/%d, ParseBatch %d/%d/%d", d.Agency, d.Seq, d.Count, v.Agency, v.Seq, v.Count)
		}
		i := 0
		for b := range v.Bets() {
			if i == len(read) {
				break
			}
			if !reflect.DeepEqual(b, read[i]) {
				t.Fatalf("bet %d: DecodeBatch %+v, ParseBatch %+v", i, read[i], b)
			}
			i++
		}
		if want := min(int(stop), v.Count); len(read) != want {
			t.Fatalf("read %d bets, want %d of %d", len(read), want, v.Count)
		}
	})
}

// TestFuzzCorpus checks that the seed corpus checked in under
// testdata/fuzz is the one seedFrames makes; PROTOCOL_FUZZ_CORPUS=write
// rewrites it after a change to the protocol.
func TestFuzzCorpus(t *testing.T) {
	files := map[string]string{}
	for name, frame := range seedFrames(t) {
		files["FuzzReaderNext/"+name] = fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", frame)
		files["FuzzDecode/"+name] = fmt.Sprintf("go test fuzz v1\nbyte(%q)\n[]byte(%q)\n", frame[1], frame[protocol.HeaderSize:])
		if frame[1] == byte(protocol.TypeBatch) {
			files["FuzzParseBatch/"+name] = fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", frame[protocol.HeaderSize:])
			files["FuzzDecodeBatch/"+name] = fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(%d)\n", frame[protocol.HeaderSize:], math.MaxUint16)
		}
	}
	files["FuzzReaderNext/Stream"] = fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seedStream(t))
	write := os.Getenv("PROTOCOL_FUZZ_CORPUS") == "write"
	for name, content := range files {
		path := filepath.Join("testdata", "fuzz", filepath.FromSlash(name))
		if write {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Errorf("%s is missing or stale (%v): run PROTOCOL_FUZZ_CORPUS=write go test -run TestFuzzCorpus ./protocol", path, err)
		}
	}
}
