package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math"
	"strconv"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"lottery"
)

// Statement is what the central signs at the draw, with the log's key: the
// tree that holds every bet, the number drawn, and per agency what it
// uploaded and a hash of its winners; in committed mode also the secret the
// number came from. Each agency checks its own line; an auditor checks them
// all against the files.
type Statement struct {
	Checkpoint Checkpoint     // the tree at the draw; its Origin is the statement's
	Number     int            // 0 … 9999
	Agencies   []AgencyResult // agencies 1 … K, in order
	Reveal     *Reveal        // committed mode only
}

// AgencyResult is one agency's line of a statement.
type AgencyResult struct {
	Agency      uint32            // its number: its place in Statement.Agencies, plus one
	Batches     uint64            // its last batch (batches are numbered from 1)
	Bets        uint64            // bets in its batches
	Winners     uint64            // how many of its stored bets won
	WinnersHash [sha256.Size]byte // WinnersHash(its salt, their documents)
}

// Reveal is the committed mode's line: the commitment leaf 1 holds and the
// secret it commits to.
type Reveal struct {
	Commitment [sha256.Size]byte
	Secret     []byte
}

// statementTag is a statement's second line. A checkpoint's second line is
// its size, a decimal number, so no statement reads as a checkpoint, nor a
// checkpoint (three lines) as a statement.
const statementTag = "sorteo v1"

// MaxStatementSize bounds a signed statement: about 80 bytes per agency, so
// 1 MiB is over ten thousand agencies.
const MaxStatementSize = 1 << 20

// Words of a statement's lines (it is in Spanish, like the log lines).
const (
	wordCheckpoint = "checkpoint"
	wordNumber     = "numero"
	wordAgencies   = "agencias"
	wordAgency     = "agencia"
	wordBatches    = "lotes"
	wordBets       = "apuestas"
	wordWinners    = "ganadores"
	wordHash       = "hash"
	wordCommitment = "compromiso"
	wordSecret     = "secreto"
)

// Body is the statement's text, what the note signs:
//
//	<origin>
//	sorteo v1
//	checkpoint <size> <root in base64>
//	numero <NNNN>
//	agencias <K>
//	agencia <n> lotes <last batch> apuestas <bets> ganadores <winners> hash <base64>   (n = 1 … K)
//	compromiso <base64> secreto <base64>                                              (committed mode only)
//
// Numbers are decimal without leading zeros but the drawn number, which has
// four digits; hashes and the secret are padded standard base64.
func (s Statement) Body() []byte {
	var b []byte
	b = append(b, s.Checkpoint.Origin...)
	b = append(b, "\n"+statementTag+"\n"+wordCheckpoint+" "...)
	b = strconv.AppendUint(b, s.Checkpoint.Size, 10)
	b = append(b, ' ')
	b = base64.StdEncoding.AppendEncode(b, s.Checkpoint.Root[:])
	b = fmt.Appendf(b, "\n%s %04d\n%s %d\n", wordNumber, s.Number, wordAgencies, len(s.Agencies))
	for _, a := range s.Agencies {
		b = fmt.Appendf(b, "%s %d %s %d %s %d %s %d %s ", wordAgency, a.Agency, wordBatches, a.Batches, wordBets, a.Bets, wordWinners, a.Winners, wordHash)
		b = base64.StdEncoding.AppendEncode(b, a.WinnersHash[:])
		b = append(b, '\n')
	}
	if r := s.Reveal; r != nil {
		b = append(b, wordCommitment+" "...)
		b = base64.StdEncoding.AppendEncode(b, r.Commitment[:])
		b = append(b, " "+wordSecret+" "...)
		b = base64.StdEncoding.AppendEncode(b, r.Secret)
		b = append(b, '\n')
	}
	return b
}

// Check reports a statement that ParseStatement would not read back from
// its Body: agencies numbered out of order, a number out of range, a
// secret of a size outside MinSecretSize … MaxSecretSize.
func (s Statement) Check() error {
	const what = "statement"
	if err := checkOrigin(s.Checkpoint.Origin); err != nil {
		return err
	}
	switch {
	case s.Checkpoint.Size > maxTreeSize:
		return malformed(what, "tree size %d beyond what tlog addresses", s.Checkpoint.Size)
	case s.Number < 0 || s.Number >= NumberSpace:
		return malformed(what, "number %d out of 0 … %d", s.Number, NumberSpace-1)
	case uint64(len(s.Agencies)) > lottery.MaxAgency:
		return malformed(what, "%d agencies (at most %d)", len(s.Agencies), lottery.MaxAgency)
	case s.Reveal != nil && (len(s.Reveal.Secret) < MinSecretSize || len(s.Reveal.Secret) > MaxSecretSize):
		return malformed(what, "a secret of %d bytes (%d to %d)", len(s.Reveal.Secret), MinSecretSize, MaxSecretSize)
	}
	for i, a := range s.Agencies {
		if a.Agency != uint32(i+1) {
			return malformed(what, "line %d of the agencies is agency %d", i+1, a.Agency)
		}
	}
	return nil
}

// Line is agency n's line of the statement; ok is false when it has none.
func (s Statement) Line(n uint32) (a AgencyResult, ok bool) {
	if n == 0 || uint64(n) > uint64(len(s.Agencies)) {
		return AgencyResult{}, false
	}
	return s.Agencies[n-1], true
}

// SignStatement signs the statement with the log's key, whose name must be
// the statement's origin, and returns the signed note.
func SignStatement(s Statement, signer note.Signer) ([]byte, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	return signNote(s.Body(), s.Checkpoint.Origin, signer, "statement")
}

// OpenStatement verifies a signed statement against the log's key and
// parses it strictly (ParseStatement); its origin must be the key's name.
func OpenStatement(msg []byte, key note.Verifier) (Statement, error) {
	if len(msg) > MaxStatementSize {
		return Statement{}, malformed("statement", "%d bytes (at most %d)", len(msg), MaxStatementSize)
	}
	text, err := openNote(msg, key, "statement")
	if err != nil {
		return Statement{}, err
	}
	s, err := ParseStatement([]byte(text))
	if err != nil {
		return Statement{}, err
	}
	if s.Checkpoint.Origin != key.Name() {
		return Statement{}, malformed("statement", "origin %q, but the log's key is named %q", s.Checkpoint.Origin, key.Name())
	}
	return s, nil
}

// ParseStatement parses a statement's body strictly, so that it has
// exactly one spelling: the lines of Body in that order, each ended by a
// newline, words separated by one space, agencies numbered 1 … K, nothing
// after the last line.
func ParseStatement(body []byte) (Statement, error) {
	const what = "statement"
	if len(body) == 0 || body[len(body)-1] != '\n' {
		return Statement{}, malformed(what, "does not end with a newline")
	}
	lines := bytes.Split(body[:len(body)-1], []byte("\n"))
	if len(lines) < 5 {
		return Statement{}, malformed(what, "%d lines, at least 5", len(lines))
	}
	if err := checkOrigin(string(lines[0])); err != nil {
		return Statement{}, err
	}
	if string(lines[1]) != statementTag {
		return Statement{}, malformed(what, "line 2 is %q, want %q", lines[1], statementTag)
	}
	s := Statement{Checkpoint: Checkpoint{Origin: string(lines[0])}}
	f, ok := fields(lines[2], wordCheckpoint, "", "")
	if ok {
		s.Checkpoint.Size, ok = parseDecimal(f[1], maxTreeSize)
	}
	if ok {
		s.Checkpoint.Root, ok = parseHash(f[2])
	}
	if !ok {
		return Statement{}, malformed(what, "line 3 %q is not \"checkpoint <size> <root>\"", lines[2])
	}
	if f, ok = fields(lines[3], wordNumber, ""); ok {
		s.Number, ok = parseNumber(f[1])
	}
	if !ok {
		return Statement{}, malformed(what, "line 4 %q is not \"numero <NNNN>\"", lines[3])
	}
	var k uint64
	if f, ok = fields(lines[4], wordAgencies, ""); ok {
		k, ok = parseDecimal(f[1], lottery.MaxAgency)
	}
	if !ok {
		return Statement{}, malformed(what, "line 5 %q is not \"agencias <K>\"", lines[4])
	}
	rest := lines[5:]
	if uint64(len(rest)) < k || uint64(len(rest)) > k+1 {
		return Statement{}, malformed(what, "%d agencies but %d lines after line 5", k, len(rest))
	}
	s.Agencies = make([]AgencyResult, k)
	for i := range s.Agencies {
		a, ok := parseAgencyLine(rest[i], uint32(i+1))
		if !ok {
			return Statement{}, malformed(what, "line %d %q is not agency %d's \"agencia %d lotes <n> apuestas <n> ganadores <n> hash <base64>\"", 6+i, rest[i], i+1, i+1)
		}
		s.Agencies[i] = a
	}
	if uint64(len(rest)) == k+1 {
		r, ok := parseReveal(rest[k])
		if !ok {
			return Statement{}, malformed(what, "line %d %q is not \"compromiso <base64> secreto <base64>\"", 6+k, rest[k])
		}
		s.Reveal = r
	}
	return s, nil
}

// fields splits a line on single spaces into exactly len(pattern) fields;
// a non-empty pattern entry is a word the field must be, an empty one a
// value.
func fields(line []byte, pattern ...string) ([][]byte, bool) {
	f := bytes.Split(line, []byte(" "))
	if len(f) != len(pattern) {
		return nil, false
	}
	for i, w := range pattern {
		if w != "" && string(f[i]) != w {
			return nil, false
		}
	}
	return f, true
}

// parseNumber reads the drawn number: exactly four digits.
func parseNumber(b []byte) (int, bool) {
	if len(b) != 4 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func parseAgencyLine(line []byte, n uint32) (AgencyResult, bool) {
	f, ok := fields(line, wordAgency, "", wordBatches, "", wordBets, "", wordWinners, "", wordHash, "")
	if !ok {
		return AgencyResult{}, false
	}
	a := AgencyResult{Agency: n}
	if got, ok := parseDecimal(f[1], lottery.MaxAgency); !ok || got != uint64(n) {
		return AgencyResult{}, false
	}
	var ok1, ok2, ok3, ok4 bool
	a.Batches, ok1 = parseDecimal(f[3], math.MaxUint64)
	a.Bets, ok2 = parseDecimal(f[5], math.MaxUint64)
	a.Winners, ok3 = parseDecimal(f[7], math.MaxUint64)
	var h tlog.Hash
	h, ok4 = parseHash(f[9])
	a.WinnersHash = h
	return a, ok1 && ok2 && ok3 && ok4
}

func parseReveal(line []byte) (*Reveal, bool) {
	f, ok := fields(line, wordCommitment, "", wordSecret, "")
	if !ok {
		return nil, false
	}
	c, ok := parseHash(f[1])
	if !ok {
		return nil, false
	}
	secret, err := base64.StdEncoding.Strict().DecodeString(string(f[3]))
	if err != nil || len(secret) < MinSecretSize || len(secret) > MaxSecretSize || base64.StdEncoding.EncodeToString(secret) != string(f[3]) {
		return nil, false
	}
	return &Reveal{Commitment: c, Secret: secret}, true
}

// OwnResult is what an agency knows of its own part of a draw, without
// trusting the central: its batches, its bets, the winners it was answered
// and the salt of its rows digests.
type OwnResult struct {
	Agency  uint32
	LastSeq uint64            // its last batch acked
	Bets    uint64            // bets in its acked batches
	Winners []string          // the documents it was answered, in that order
	Salt    [sha256.Size]byte // AgencySalt of its batches' rows digests
}

// VerifyStatement checks a statement as one agency can: that its tree
// extends last, the last checkpoint the agency accepted (consistency is the
// proof from last's size to the statement's); that the agency's line says
// what the agency knows (its batches, its bets, how many winners and their
// hash); and that the number is the course's fixed one, or in committed
// mode the one the revealed secret and the statement's root derive, the
// secret matching its commitment. Only an auditor holding the files checks
// the other agencies' lines and that the commitment is leaf 1.
func VerifyStatement(st Statement, own OwnResult, last Checkpoint, consistency []tlog.Hash) error {
	if last.Origin != "" && last.Origin != st.Checkpoint.Origin {
		return malformed("statement", "origin %q, but the agency's checkpoints are of %q", st.Checkpoint.Origin, last.Origin)
	}
	if err := CheckConsistency(consistency, last, st.Checkpoint); err != nil {
		return relabel(err, "", "the draw statement")
	}
	if err := checkNumber(st); err != nil {
		return err
	}
	what := fmt.Sprintf("agency %d's line of the draw statement", own.Agency)
	a, ok := st.Line(own.Agency)
	if !ok {
		return failf(ErrMissing, what, "", "the statement has lines for agencies 1 to %d", len(st.Agencies))
	}
	switch {
	case a.Batches != own.LastSeq:
		return failf(ErrMismatch, what, "", "lotes %d, but the agency's last batch acked is %d", a.Batches, own.LastSeq)
	case a.Bets != own.Bets:
		return failf(ErrMismatch, what, "", "apuestas %d, but the agency's acked batches hold %d bets", a.Bets, own.Bets)
	case a.Winners != uint64(len(own.Winners)):
		return failf(ErrMismatch, what, "", "ganadores %d, but the agency was answered %d winners", a.Winners, len(own.Winners))
	case a.WinnersHash != WinnersHash(own.Salt, own.Winners):
		return failf(ErrMismatch, what, "", "the hash of its winners is not that of the %d documents the agency was answered", len(own.Winners))
	}
	return nil
}

// checkNumber checks the statement's number: the fixed one, or the one
// the revealed secret derives.
func checkNumber(st Statement) error {
	const what = "the number of the draw statement"
	r := st.Reveal
	if r == nil {
		if st.Number != lottery.WinningNumber {
			return failf(ErrMismatch, what, "", "%04d, but without a commitment the number is %04d", st.Number, lottery.WinningNumber)
		}
		return nil
	}
	if Commitment(r.Secret) != r.Commitment {
		return failf(ErrMismatch, what, "", "the secret revealed is not the one committed to")
	}
	if want := DrawNumber(r.Secret, st.Checkpoint.Root); st.Number != want {
		return failf(ErrMismatch, what, "", "%04d, but the secret and the root derive %04d", st.Number, want)
	}
	return nil
}
