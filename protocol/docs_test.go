package protocol_test

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"lottery"
	"lottery/internal/testutil"
	"lottery/protocol"
)

// TestDocs_ExampleBytes pins the example bytes of docs/protocol.md to the
// encoder: a doc that disagrees with the code is a bug.
func TestDocs_ExampleBytes(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	var batch protocol.BatchBuilder
	batch.Reset(1, 7, 0)
	if !batch.AddBet(lottery.Bet{Agency: 1, FirstName: "Ana", LastName: "Paz", Document: "01234567", Birthdate: "1990-05-17", Number: 7574}) {
		t.Fatal("the example bet does not fit")
	}
	tests := []struct {
		intro string // the line that introduces the example
		want  []byte
	}{
		{"`Hello{agency: 3}`:", testutil.Frame(t, protocol.Hello{Agency: 3})},
		{"`Hello{agency: 3, receipts, tree_size: 5}`:", testutil.Frame(t, protocol.Hello{Agency: 3, Receipts: true, TreeSize: 5})},
		{"`Echo{\"ping\"}`", testutil.Frame(t, protocol.Echo{Data: []byte("ping")})},
		{"A batch of agency 1, sequence 7", batch.Frame()},
	}
	for _, tt := range tests {
		t.Run(tt.intro, func(t *testing.T) {
			got := exampleBytes(t, string(doc), tt.intro)
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("docs/protocol.md shows\n% x\nthe encoder writes\n% x", got, tt.want)
			}
		})
	}
}

// exampleBytes returns the hex bytes of the fenced block that follows the
// line starting with intro: on each line, the hex pairs before the comment.
func exampleBytes(t *testing.T, doc, intro string) []byte {
	t.Helper()
	i := strings.Index(doc, "\n"+intro)
	if i < 0 {
		t.Fatalf("no example introduced by %q", intro)
	}
	rest := doc[i+1:]
	start := strings.Index(rest, "```\n")
	end := strings.Index(rest[start+4:], "```")
	var out []byte
	for _, line := range strings.Split(rest[start+4:start+4+end], "\n") {
		for _, tok := range strings.Fields(line) {
			b, err := hex.DecodeString(tok)
			if err != nil || len(tok) != 2 {
				break // the comment after the bytes
			}
			out = append(out, b...)
		}
	}
	return out
}
