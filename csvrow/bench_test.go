package csvrow

import (
	"bytes"
	"io"
	"testing"
)

// benchRows is an agency-file-like input: short unquoted fields, CRLF.
func benchRows(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = append(b, "Tiago Nicolás,Rivera,34407251,2001-08-29,1033\r\n"...)
	}
	return b
}

func BenchmarkReader_Read(b *testing.B) {
	data := benchRows(10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(data), 0)
		for {
			if _, err := r.Read(); err == io.EOF {
				break
			}
		}
	}
}

func BenchmarkSplit(b *testing.B) {
	line := []byte("1,Tiago Nicolás,Rivera,34407251,2001-08-29,1033")
	fields := make([][]byte, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		fields, _, _ = Split(line, fields, nil)
	}
}
