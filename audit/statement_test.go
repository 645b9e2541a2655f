package audit_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"lottery/audit"
)

func sampleStatement() audit.Statement {
	salt := audit.AgencySalt([][32]byte{audit.RowsDigest([]byte("rows"))})
	return audit.Statement{
		Checkpoint: sampleCheckpoint,
		Number:     7574,
		Agencies: []audit.AgencyResult{
			{Agency: 1, Batches: 3, Bets: 250, Winners: 2, WinnersHash: audit.WinnersHash(salt, []string{"30904465", "01234567"})},
			{Agency: 2, WinnersHash: audit.WinnersHash(audit.AgencySalt(nil), nil)},
		},
	}
}

func committedStatement() audit.Statement {
	st := sampleStatement()
	secret := bytes.Repeat([]byte{0x5e}, audit.SecretSize)
	st.Reveal = &audit.Reveal{Commitment: audit.Commitment(secret), Secret: secret}
	st.Number = audit.DrawNumber(secret, st.Checkpoint.Root)
	return st
}

func TestStatement_RoundTrip(t *testing.T) {
	signer, key := testKey(t, testOrigin, 1)
	for _, st := range []audit.Statement{sampleStatement(), committedStatement(), {Checkpoint: sampleCheckpoint, Number: 42, Agencies: []audit.AgencyResult{}}} {
		body := st.Body()
		got, err := audit.ParseStatement(body)
		if err != nil || !reflect.DeepEqual(got, st) {
			t.Fatalf("%s parsed as %+v, %v", body, got, err)
		}
		msg, err := audit.SignStatement(st, signer)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := audit.OpenStatement(msg, key); err != nil || !reflect.DeepEqual(got, st) {
			t.Errorf("opened %+v, %v", got, err)
		}
		if _, err := audit.ParseCheckpoint(body); err == nil {
			t.Errorf("%q parses as a checkpoint", body)
		}
		if _, err := audit.OpenCheckpoint(msg, key); !errors.Is(err, audit.ErrMalformed) {
			t.Errorf("a signed statement opens as a checkpoint: %v", err)
		}
	}
	if !strings.Contains(string(sampleStatement().Body()), "\nnumero 7574\n") {
		t.Error("no numero line")
	}
	if st := (audit.Statement{Checkpoint: sampleCheckpoint, Number: 42}); !strings.Contains(string(st.Body()), "\nnumero 0042\n") {
		t.Errorf("a small number is not four digits: %s", st.Body())
	}
}

func TestStatement_ErrSign(t *testing.T) {
	signer, _ := testKey(t, testOrigin, 1)
	other, _ := testKey(t, "other", 1)
	edit := func(f func(*audit.Statement)) audit.Statement {
		st := committedStatement()
		st.Agencies = append([]audit.AgencyResult(nil), st.Agencies...)
		f(&st)
		return st
	}
	tests := []struct {
		name   string
		st     audit.Statement
		signer note.Signer
	}{
		{"ErrOtherSignerName", sampleStatement(), other},
		{"ErrNumberNegative", edit(func(s *audit.Statement) { s.Number = -1 }), signer},
		{"ErrNumberTooBig", edit(func(s *audit.Statement) { s.Number = 10000 }), signer},
		{"ErrAgenciesOutOfOrder", edit(func(s *audit.Statement) { s.Agencies[1].Agency = 3 }), signer},
		{"ErrShortSecret", edit(func(s *audit.Statement) { s.Reveal.Secret = make([]byte, audit.MinSecretSize-1) }), signer},
		{"ErrLongSecret", edit(func(s *audit.Statement) { s.Reveal.Secret = make([]byte, audit.MaxSecretSize+1) }), signer},
		{"ErrBadOrigin", edit(func(s *audit.Statement) { s.Checkpoint.Origin = "a b" }), signer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if msg, err := audit.SignStatement(tt.st, tt.signer); !errors.Is(err, audit.ErrMalformed) {
				t.Errorf("signed %q, err %v", msg, err)
			}
		})
	}
}

func TestParseStatement_Err(t *testing.T) {
	good := string(committedStatement().Body())
	lines := strings.SplitAfter(good, "\n")
	replace := func(i int, s string) string {
		l := append([]string(nil), lines...)
		l[i] = s
		return strings.Join(l, "")
	}
	tests := []struct {
		name string
		body string
	}{
		{"ErrEmpty", ""},
		{"ErrNoFinalNewline", strings.TrimSuffix(good, "\n")},
		{"ErrTooFewLines", strings.Join(lines[:4], "")},
		{"ErrTag", replace(1, "sorteo v2\n")},
		{"ErrCheckpointWord", replace(2, strings.Replace(lines[2], "checkpoint", "arbol", 1))},
		{"ErrCheckpointSize", replace(2, strings.Replace(lines[2], " 12 ", " 012 ", 1))},
		{"ErrNumberThreeDigits", replace(3, "numero 757\n")},
		{"ErrNumberFiveDigits", replace(3, "numero 07574\n")},
		{"ErrNumberSign", replace(3, "numero -757\n")},
		{"ErrAgenciesMore", replace(4, "agencias 3\n")},
		{"ErrAgenciesFewer", replace(4, "agencias 1\n")},
		{"ErrAgenciesHuge", replace(4, "agencias 99999999999\n")},
		{"ErrAgencyNumber", replace(6, strings.Replace(lines[6], "agencia 2", "agencia 3", 1))},
		{"ErrAgencyWord", replace(5, strings.Replace(lines[5], "lotes", "lote", 1))},
		{"ErrAgencyDoubleSpace", replace(5, strings.Replace(lines[5], "lotes ", "lotes  ", 1))},
		{"ErrAgencyLeadingZero", replace(5, strings.Replace(lines[5], "apuestas 250", "apuestas 0250", 1))},
		{"ErrAgencyHash", replace(5, strings.Replace(lines[5], "hash ", "hash x", 1))},
		{"ErrAgencyTrailingSpace", replace(5, strings.TrimSuffix(lines[5], "\n")+" \n")},
		{"ErrRevealWord", replace(7, strings.Replace(lines[7], "secreto", "secret", 1))},
		{"ErrRevealShortSecret", replace(7, lines[7][:strings.Index(lines[7], "secreto ")]+"secreto AAAA\n")},
		{"ErrTrailingLine", good + "extra\n"},
		{"ErrCRLF", strings.ReplaceAll(good, "\n", "\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := audit.ParseStatement([]byte(tt.body))
			if !errors.Is(err, audit.ErrMalformed) {
				t.Errorf("parsed %+v, err %v", st, err)
			}
		})
	}
}

// FuzzParseStatement: ParseStatement never panics, a body that parses is
// exactly what Body writes, and no body is both a statement and a
// checkpoint.
func FuzzParseStatement(f *testing.F) {
	f.Add(sampleStatement().Body())
	f.Add(committedStatement().Body())
	f.Add([]byte(testOrigin + "\nsorteo v1\ncheckpoint 0 " + hashOf("").String() + "\nnumero 7574\nagencias 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := audit.ParseStatement(b)
		if err != nil {
			return
		}
		if err := st.Check(); err != nil {
			t.Fatalf("%q parsed as %+v, which Check refuses: %v", b, st, err)
		}
		if got := st.Body(); !bytes.Equal(got, b) {
			t.Fatalf("%q parsed as %+v, whose body is %q", b, st, got)
		}
		if _, err := audit.ParseCheckpoint(b); err == nil {
			t.Fatalf("%q parses as a statement and as a checkpoint", b)
		}
	})
}

// TestVerifyStatement: what one agency can check of the draw.
func TestVerifyStatement(t *testing.T) {
	tr := treeOf(t, leafHashes(30))
	last := audit.Checkpoint{Origin: testOrigin, Size: 20, Root: mustRoot(t, tr, 20)}
	proof, err := tr.ProveConsistency(20, 30)
	if err != nil {
		t.Fatal(err)
	}
	salt := audit.AgencySalt([][32]byte{audit.RowsDigest([]byte("rows 1")), audit.RowsDigest([]byte("rows 2"))})
	winners := []string{"30904465", "01234567"}
	own := audit.OwnResult{Agency: 2, LastSeq: 2, Bets: 40, Winners: winners, Salt: salt}
	statement := func(committed bool) audit.Statement {
		st := audit.Statement{Checkpoint: tr.Checkpoint(testOrigin), Number: 7574, Agencies: []audit.AgencyResult{
			{Agency: 1, Batches: 1, Bets: 1, WinnersHash: hashOfBytes([]byte("agency 1's"))},
			{Agency: 2, Batches: 2, Bets: 40, Winners: 2, WinnersHash: audit.WinnersHash(salt, winners)},
		}}
		if committed {
			secret := bytes.Repeat([]byte{7}, audit.SecretSize)
			st.Reveal = &audit.Reveal{Commitment: audit.Commitment(secret), Secret: secret}
			st.Number = audit.DrawNumber(secret, st.Checkpoint.Root)
		}
		return st
	}
	edit := func(committed bool, f func(*audit.Statement)) audit.Statement {
		st := statement(committed)
		f(&st)
		return st
	}
	ownWith := func(f func(*audit.OwnResult)) audit.OwnResult {
		o := own
		o.Winners = append([]string(nil), winners...)
		f(&o)
		return o
	}
	otherTree := treeOf(t, leafHashes(31)[1:])
	tests := []struct {
		name  string
		st    audit.Statement
		own   audit.OwnResult
		last  audit.Checkpoint
		proof []tlog.Hash
		want  error
	}{
		{"OK", statement(false), own, last, proof, nil},
		{"OKCommitted", statement(true), own, last, proof, nil},
		{"OKNoCheckpointYet", statement(false), own, audit.Checkpoint{}, nil, nil},
		{"ErrOtherHistory", edit(false, func(s *audit.Statement) { s.Checkpoint = otherTree.Checkpoint(testOrigin) }), own, last, proof, audit.ErrNotConsistent},
		{"ErrShrank", statement(false), own, audit.Checkpoint{Origin: testOrigin, Size: 31, Root: hashOf("x")}, nil, audit.ErrShrank},
		{"ErrOtherOrigin", statement(false), own, audit.Checkpoint{Origin: "other", Size: 20, Root: last.Root}, proof, audit.ErrMalformed},
		{"ErrNoLine", statement(false), ownWith(func(o *audit.OwnResult) { o.Agency = 3 }), last, proof, audit.ErrMissing},
		{"ErrBatches", statement(false), ownWith(func(o *audit.OwnResult) { o.LastSeq = 3 }), last, proof, audit.ErrMismatch},
		{"ErrBets", statement(false), ownWith(func(o *audit.OwnResult) { o.Bets = 41 }), last, proof, audit.ErrMismatch},
		{"ErrWinnerCount", statement(false), ownWith(func(o *audit.OwnResult) { o.Winners = o.Winners[:1] }), last, proof, audit.ErrMismatch},
		{"ErrWinnerSwapped", statement(false), ownWith(func(o *audit.OwnResult) { o.Winners[1] = "99999999" }), last, proof, audit.ErrMismatch},
		{"ErrWinnerOrder", statement(false), ownWith(func(o *audit.OwnResult) { o.Winners[0], o.Winners[1] = o.Winners[1], o.Winners[0] }), last, proof, audit.ErrMismatch},
		{"ErrOtherSalt", statement(false), ownWith(func(o *audit.OwnResult) { o.Salt = audit.AgencySalt(nil) }), last, proof, audit.ErrMismatch},
		{"ErrNumber", edit(false, func(s *audit.Statement) { s.Number = 1 }), own, last, proof, audit.ErrMismatch},
		{"ErrCommittedNumber", edit(true, func(s *audit.Statement) { s.Number = (s.Number + 1) % 10000 }), own, last, proof, audit.ErrMismatch},
		{"ErrCommittedOtherSecret", edit(true, func(s *audit.Statement) { s.Reveal.Secret = bytes.Repeat([]byte{8}, audit.SecretSize) }), own, last, proof, audit.ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := audit.VerifyStatement(tt.st, tt.own, tt.last, tt.proof)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
}
