package protocol_test

import (
	"testing"

	"lottery/protocol"
)

// fullBatch is a batch frame of realistic bets packed up to the frame limit.
func fullBatch(b *testing.B) ([]byte, int) {
	b.Helper()
	frames := pack(b, 1, sampleBets(2000, 1), 0)
	_, _, bets := parseBatchFrame(b, frames[0])
	return frames[0], len(bets)
}

// BenchmarkParseBatch parses a full batch and visits every bet, as the
// central does before validating and storing it.
func BenchmarkParseBatch(b *testing.B) {
	frame, n := fullBatch(b)
	payload := frame[protocol.HeaderSize:]
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		v, err := protocol.ParseBatch(payload)
		if err != nil {
			b.Fatal(err)
		}
		sum := 0
		for bv := range v.Bets() {
			sum += bv.Number + len(bv.FirstName)
		}
		if sum == 0 {
			b.Fatal("no bets")
		}
	}
	b.ReportMetric(float64(n), "bets/batch")
}

// BenchmarkDecodeBatch decodes a full batch in one pass and visits every
// bet, as the central does: the same work as BenchmarkParseBatch.
func BenchmarkDecodeBatch(b *testing.B) {
	frame, n := fullBatch(b)
	payload := frame[protocol.HeaderSize:]
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := protocol.DecodeBatch(payload)
		if err != nil {
			b.Fatal(err)
		}
		sum := 0
		for bv := range d.Bets() {
			sum += bv.Number + len(bv.FirstName)
		}
		if err := d.Err(); err != nil {
			b.Fatal(err)
		}
		if sum == 0 {
			b.Fatal("no bets")
		}
	}
	b.ReportMetric(float64(n), "bets/batch")
}

// BenchmarkBatchBuilder packs bets into full batches, as the agency does.
func BenchmarkBatchBuilder(b *testing.B) {
	bets := sampleBets(2000, 1)
	first := make([][]byte, len(bets))
	last := make([][]byte, len(bets))
	doc := make([][]byte, len(bets))
	birth := make([][]byte, len(bets))
	for i, bet := range bets {
		first[i], last[i], doc[i], birth[i] = []byte(bet.FirstName), []byte(bet.LastName), []byte(bet.Document), []byte(bet.Birthdate)
	}
	var bb protocol.BatchBuilder
	b.ReportAllocs()
	packed := 0
	for b.Loop() {
		bb.Reset(1, 1, 0)
		i := 0
		for i < len(bets) && bb.Add(first[i], last[i], doc[i], birth[i], bets[i].Number) {
			i++
		}
		if len(bb.Frame()) > protocol.MaxFrameSize {
			b.Fatal("frame too large")
		}
		packed += i
	}
	b.ReportMetric(float64(packed)/float64(b.N), "bets/batch")
}

// repeat is an endless reader of the same bytes.
type repeat struct {
	data []byte
	off  int
}

func (r *repeat) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

// BenchmarkReaderNext reads frames from a stream of mixed messages.
func BenchmarkReaderNext(b *testing.B) {
	frame, _ := fullBatch(b)
	var data []byte
	for _, tt := range goldenMessages {
		data = append(data, encode(b, tt.msg)...)
	}
	data = append(data, frame...)
	frames := len(goldenMessages) + 1
	r := protocol.NewReader(&repeat{data: data})
	b.SetBytes(int64(len(data)) / int64(frames))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendFrame encodes small replies, as the central does per batch.
func BenchmarkAppendFrame(b *testing.B) {
	buf := make([]byte, 0, 64)
	ack := protocol.BatchAck{Seq: 42, Count: 300}
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = protocol.AppendFrame(buf[:0], ack); err != nil {
			b.Fatal(err)
		}
	}
	if len(buf) != protocol.HeaderSize+11 {
		b.Fatalf("ack frame of %d bytes", len(buf))
	}
}
