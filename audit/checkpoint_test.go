package audit_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"lottery/audit"
)

var sampleCheckpoint = audit.Checkpoint{Origin: testOrigin, Size: 12, Root: hashOf("root")}

func TestCheckpoint_Body(t *testing.T) {
	want := testOrigin + "\n12\n" + sampleCheckpoint.Root.String() + "\n"
	if got := string(sampleCheckpoint.Body()); got != want {
		t.Errorf("body %q, want %q", got, want)
	}
}

func TestSign_OpenCheckpoint(t *testing.T) {
	signer, key := testKey(t, testOrigin, 1)
	msg, err := audit.Sign(sampleCheckpoint, signer)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(msg, sampleCheckpoint.Body()) || len(msg) > audit.MaxCheckpointSize {
		t.Fatalf("signed note %q", msg)
	}
	got, err := audit.OpenCheckpoint(msg, key)
	if err != nil || got != sampleCheckpoint {
		t.Fatalf("opened %+v, %v", got, err)
	}

	t.Run("OKCosigned", func(t *testing.T) {
		witness, _ := testKey(t, "witness.example", 3)
		n, err := note.Open(msg, note.VerifierList(key))
		if err != nil {
			t.Fatal(err)
		}
		cosigned, err := note.Sign(n, witness)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := audit.OpenCheckpoint(cosigned, key); err != nil || got != sampleCheckpoint {
			t.Errorf("opened %+v, %v", got, err)
		}
	})

	otherSigner, _ := testKey(t, testOrigin, 2)
	otherName, _ := testKey(t, "other.origin", 1)
	byOther, _ := audit.Sign(sampleCheckpoint, otherSigner)
	forged := bytes.Replace(msg, []byte("\n12\n"), []byte("\n13\n"), 1)
	// A note signed by the right key over a text whose origin is another
	// name: what a careless signer could produce.
	wrongOrigin, err := note.Sign(&note.Note{Text: "other.origin\n12\n" + sampleCheckpoint.Root.String() + "\n"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	notACheckpoint, _ := note.Sign(&note.Note{Text: testOrigin + "\nsorteo v1\n"}, signer)
	tests := []struct {
		name  string
		msg   []byte
		want  error
		words string
	}{
		{"ErrWrongKey", byOther, audit.ErrWrongKey, "signed by " + testOrigin + "+"},
		{"ErrBadSignature", forged, audit.ErrBadSignature, "does not verify"},
		{"ErrOriginNotKeyName", wrongOrigin, audit.ErrMalformed, "origin"},
		{"ErrNotACheckpoint", notACheckpoint, audit.ErrMalformed, "three lines"},
		{"ErrNotANote", sampleCheckpoint.Body(), audit.ErrMalformed, "not a signed note"},
		{"ErrTooBig", append(bytes.Repeat([]byte("x"), audit.MaxCheckpointSize), msg...), audit.ErrMalformed, "bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := audit.OpenCheckpoint(tt.msg, key)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.words) {
				t.Errorf("opened %+v, err %v; want %v naming %q", c, err, tt.want, tt.words)
			}
		})
	}
	t.Run("ErrSignWithOtherName", func(t *testing.T) {
		if _, err := audit.Sign(sampleCheckpoint, otherName); !errors.Is(err, audit.ErrMalformed) {
			t.Errorf("err %v", err)
		}
	})
}

func TestParseCheckpoint_Err(t *testing.T) {
	root := sampleCheckpoint.Root.String()
	tests := []struct {
		name string
		body string
	}{
		{"ErrEmpty", ""},
		{"ErrNoFinalNewline", testOrigin + "\n12\n" + root},
		{"ErrTwoLines", testOrigin + "\n12\n"},
		{"ErrExtensionLine", testOrigin + "\n12\n" + root + "\nextension\n"},
		{"ErrEmptyOrigin", "\n12\n" + root + "\n"},
		{"ErrOriginWithSpace", "a b\n12\n" + root + "\n"},
		{"ErrOriginWithPlus", "a+b\n12\n" + root + "\n"},
		{"ErrOriginWithTab", "a\tb\n12\n" + root + "\n"},
		{"ErrOriginNotUTF8", "a\xffb\n12\n" + root + "\n"},
		{"ErrOriginTooLong", strings.Repeat("a", audit.MaxOriginSize+1) + "\n12\n" + root + "\n"},
		{"ErrSizeLeadingZero", testOrigin + "\n012\n" + root + "\n"},
		{"ErrSizeSign", testOrigin + "\n+12\n" + root + "\n"},
		{"ErrSizeEmpty", testOrigin + "\n\n" + root + "\n"},
		{"ErrSizeHex", testOrigin + "\n0x12\n" + root + "\n"},
		{"ErrSizeTooBig", testOrigin + "\n9223372036854775808\n" + root + "\n"},
		{"ErrSizeOverflow", testOrigin + "\n99999999999999999999999\n" + root + "\n"},
		{"ErrRootShort", testOrigin + "\n12\n" + root[:40] + "\n"},
		{"ErrRootUnpadded", testOrigin + "\n12\n" + strings.TrimRight(root, "=") + "\n"},
		{"ErrRootURLAlphabet", testOrigin + "\n12\n" + strings.NewReplacer("+", "-", "/", "_").Replace(hashOf("/+?").String()) + "\n"},
		{"ErrRootNonCanonical", testOrigin + "\n12\n" + root[:42] + "B=\n"},
		{"ErrCRLF", testOrigin + "\r\n12\r\n" + root + "\r\n"},
		{"ErrRootNoPadding", testOrigin + "\n12\n" + strings.Repeat("A", 44) + "\n"}, // found by FuzzParseCheckpoint
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := audit.ParseCheckpoint([]byte(tt.body))
			if !errors.Is(err, audit.ErrMalformed) {
				t.Errorf("parsed %+v, err %v", c, err)
			}
		})
	}
	if _, err := audit.ParseCheckpoint([]byte(testOrigin + "\n0\n" + root + "\n")); err != nil {
		t.Errorf("size 0: %v", err)
	}
}

// FuzzParseCheckpoint: ParseCheckpoint never panics, a body that parses is
// exactly what Body writes (one spelling per checkpoint), and no body
// parses as both a checkpoint and a draw statement.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add(sampleCheckpoint.Body())
	f.Add([]byte(testOrigin + "\n0\n" + hashOf("").String() + "\n"))
	f.Add([]byte("a\n1\n" + hashOf("").String() + "\nextra\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := audit.ParseCheckpoint(b)
		if err != nil {
			return
		}
		if got := c.Body(); !bytes.Equal(got, b) {
			t.Fatalf("%q parsed as %+v, whose body is %q", b, c, got)
		}
		if _, err := audit.ParseStatement(b); err == nil {
			t.Fatalf("%q parses as a checkpoint and as a statement", b)
		}
	})
}

// FuzzOpenCheckpoint: opening arbitrary bytes never panics, and what opens
// was signed by the key over exactly the checkpoint's body.
func FuzzOpenCheckpoint(f *testing.F) {
	signer, key := testKey(f, testOrigin, 1)
	msg, err := audit.Sign(sampleCheckpoint, signer)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(msg)
	f.Add(sampleCheckpoint.Body())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := audit.OpenCheckpoint(b, key)
		if err != nil {
			return
		}
		resigned, err := audit.Sign(c, signer)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, c.Body()) || !bytes.Contains(b, resigned[len(c.Body()):]) {
			t.Fatalf("%q opened as %+v", b, c)
		}
	})
}
