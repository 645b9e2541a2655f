package agency

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCountRows(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"a,b\n", 1},
		{"a,b", 1},
		{"a\r\nb\r\n", 2},
		{"a\r\n\r\n\nb", 2},
		{"\n\n\r\n", 0},
		{"a\nb\nc\n", 3},
		{strings.Repeat("a", 1<<20), 1},
		{strings.Repeat(",", 1<<20) + "\nx\n", 2},
	}
	for _, tt := range tests {
		for name, r := range map[string]io.Reader{
			"whole":    strings.NewReader(tt.in),
			"one byte": iotest.OneByteReader(strings.NewReader(tt.in)),
		} {
			got, err := countRows(r)
			if err != nil || got != tt.want {
				t.Errorf("countRows(%.20q) %s = %d, %v; want %d", tt.in, name, got, err, tt.want)
			}
		}
	}
}
