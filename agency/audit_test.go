package agency_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"lottery"
	"lottery/agency"
	"lottery/audit"
	"lottery/gendata"
	"lottery/internal/testutil"
	"lottery/pki"
)

// The agency's side of the audit log (issue 16), against the fake central
// and its fakeLog: receipts checked before a batch counts as acked, kept in
// the receipts file, the draw statement checked; and every way a central
// can lie makes the agency say so and stop.

// logKeys returns a log key pair named as bin/pki names it, drawn from
// seed: two seeds give two keys of the same name.
func logKeys(t testing.TB, seed byte) (note.Signer, note.Verifier) {
	t.Helper()
	return testutil.LogKeys(t, pki.DefaultLogOrigin, seed)
}

// auditedBatches of auditedPerBatch bets are what the audit tests upload.
const auditedBatches, auditedPerBatch = 4, 10

// TestAgency_Distrust: a receipt or a statement that does not check out
// stops the agency for good: one ERROR line (verificar_recibo or
// verificar_sorteo, result fail) whose error names what failed, Run
// returns the error, and the agency neither reconnects nor sends anything
// after it (one batch in flight at a time, so the batches the central got
// are exactly those up to the lie).
func TestAgency_Distrust(t *testing.T) {
	signer, key := logKeys(t, 1)
	other, _ := logKeys(t, 2) // another key of the same name
	const all = auditedBatches
	tests := []struct {
		name string
		log  fakeLog
		// What the agency says.
		action string
		cause  error  // the audit sentinel the error wraps (nil: none)
		text   string // in the error
		// How far it went: batch frames sent, whether it finished (it
		// then queried the winners when the lie is in the statement).
		batches  int
		finished bool
		queried  bool
	}{
		{name: "a receipt signed by another key", log: fakeLog{signer: other},
			action: "verificar_recibo", cause: audit.ErrWrongKey, text: "checkpoint of batch 1 of agency 1", batches: 1},
		{name: "a receipt for rows the agency did not send", log: fakeLog{otherRows: 2},
			action: "verificar_recibo", cause: audit.ErrNotIncluded, text: "inclusion of batch 2 of agency 1", batches: 2},
		{name: "an ack without its receipt", log: fakeLog{omit: 3},
			action: "verificar_recibo", text: "the ack of batch 3 of agency 1 carries no receipt", batches: 3},
		{name: "a tree that forked", log: fakeLog{fork: 2},
			action: "verificar_recibo", cause: audit.ErrNotConsistent, text: "consistency from size 2 to 3", batches: 2},
		{name: "a tree that shrank", log: fakeLog{shrink: 3},
			action: "verificar_recibo", cause: audit.ErrShrank, text: "the tree had 3 leaves, now 2", batches: 3},
		{name: "a FinishedAck without its receipt", log: fakeLog{omitFinished: true},
			action: "verificar_recibo", text: "agency 1's finished after batch 4 carries no receipt", batches: all, finished: true},
		{name: "a statement with another winners count", log: fakeLog{statement: func(st *audit.Statement) { st.Agencies[0].Winners++ }},
			action: "verificar_sorteo", cause: audit.ErrMismatch, text: "ganadores 3, but the agency was answered 2 winners", batches: all, finished: true, queried: true},
		{name: "a statement with another winners hash", log: fakeLog{statement: func(st *audit.Statement) { st.Agencies[0].WinnersHash[0] ^= 1 }},
			action: "verificar_sorteo", cause: audit.ErrMismatch, text: "the hash of its winners", batches: all, finished: true, queried: true},
		{name: "a statement with other bets", log: fakeLog{statement: func(st *audit.Statement) { st.Agencies[0].Bets-- }},
			action: "verificar_sorteo", cause: audit.ErrMismatch, text: "apuestas 39, but the agency's acked batches hold 40 bets", batches: all, finished: true, queried: true},
		{name: "a statement signed by another key", log: fakeLog{statementSigner: other},
			action: "verificar_sorteo", cause: audit.ErrWrongKey, text: "statement", batches: all, finished: true, queried: true},
		{name: "no statement", log: fakeLog{noStatement: true},
			action: "verificar_sorteo", text: "the winners came without the signed draw statement", batches: all, finished: true, queried: true},
	}
	data := writeBets(t, gendata.Bets(1, auditedBatches*auditedPerBatch, 0, seed))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(f *fakeCentral) {
				l := tt.log
				if l.signer == nil {
					l.signer = signer
				}
				f.log, f.winners = &l, []string{"30111222", "00001234"}
			})
			res, err, logs := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: f.addr, DataFile: data,
				MaxAmount: auditedPerBatch, Window: 1, LogKey: key, Receipts: filepath.Join(t.TempDir(), "agency-1.receipts")})
			if err == nil {
				t.Fatalf("Run trusted the central: %+v", res)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("Run = %v, want an error wrapping %q", err, tt.cause)
			}
			lines := logs.Lines(t)
			l, ok := testutil.FindOne(lines, tt.action, "fail")
			if !ok || l.Level != "ERROR" || !strings.Contains(l.Get("error"), tt.text) || l.Get("agency") != "1" {
				t.Errorf("%s fail line %q, want one at ERROR for agency 1 whose error says %q", tt.action, l.Raw, tt.text)
			}
			for _, ok := range []string{"verificar_sorteo", "consulta_ganadores"} {
				if l, found := testutil.FindOne(lines, ok, "success"); found {
					t.Errorf("a success line after the distrust: %s", l.Raw)
				}
			}
			s := f.snapshot()
			if s.connections != 1 || s.frames != tt.batches || len(s.finished) != btoi(tt.finished) || s.queries != btoi(tt.queried) {
				t.Errorf("the fake saw %d connections, %d batches, %d finished, %d queries; want 1, %d, %d, %d: the agency stops",
					s.connections, s.frames, len(s.finished), s.queries, tt.batches, btoi(tt.finished), btoi(tt.queried))
			}
			if want := min(tt.batches, auditedBatches); !tt.finished && res.Batches != want-1 {
				t.Errorf("%d batches counted as acked, want %d: not the one whose receipt failed", res.Batches, want-1)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestAgency_Receipts: an agency that checks the audit log keeps one line
// per acked batch, one for its finished and one for the statement, after
// the file's header and the checkpoint lines, in a file ReadReceipts reads
// back; each line holds the leaf the central's tree has at its index, and
// the statement is the one signed. After a lost connection it tells the
// central the tree it holds, and the resent batch's receipt is proven from
// it. A receipts file left by an earlier run is moved, whole, to
// <file>.prev-<time>. verificar_sorteo success names the statement's root,
// tree, number and the agency's counts.
func TestAgency_Receipts(t *testing.T) {
	signer, key := logKeys(t, 3)
	tests := []struct {
		name    string
		dropAt  uint64 // the fake drops the connection before this batch's ack
		earlier string // a receipts file of an earlier run ("": none)
	}{
		{name: "one connection"},
		{name: "a lost connection", dropAt: 2},
		{name: "an earlier receipts file", earlier: "lottery-receipts v1\norigin " + pki.DefaultLogOrigin + "\nagency 1\n"},
	}
	bets := gendata.Bets(1, auditedBatches*auditedPerBatch, 0, seed)
	data := writeBets(t, bets)
	winners := []string{"30111222", "00001234"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agency-1.receipts")
			if tt.earlier != "" {
				testutil.WriteFile(t, path, tt.earlier)
			}
			f := newFake(t, func(f *fakeCentral) {
				f.log, f.winners, f.dropAt = &fakeLog{signer: signer}, winners, tt.dropAt
			})
			res, err, logs := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: f.addr, DataFile: data,
				MaxAmount: auditedPerBatch, LogKey: key, Receipts: path, BackoffInitial: 1, BackoffMax: 1})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Winners, winners) || res.Batches != auditedBatches {
				t.Errorf("result %+v, want %d batches and winners %v", res, auditedBatches, winners)
			}
			if s := f.snapshot(); tt.dropAt != 0 && (s.connections != 2 || s.duplicates != 1) {
				t.Errorf("%d connections, %d duplicates; want the dropped batch resent on a second connection", s.connections, s.duplicates)
			}

			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			rf, err := audit.ReadReceipts(bytes.NewReader(text))
			if err != nil {
				t.Fatalf("ReadReceipts: %v\n%s", err, text)
			}
			var kinds []string
			for _, r := range rf.Records {
				kinds = append(kinds, r.Kind.String()+" "+strconv.FormatUint(r.Seq, 10))
			}
			if want := []string{"batch 1", "batch 2", "batch 3", "batch 4", "finished 4"}; !slices.Equal(kinds, want) {
				t.Errorf("receipts for %v, want %v", kinds, want)
			}
			if n, want := strings.Count(string(text), "\n"), 3+len(rf.Checkpoints)+len(rf.Records)+1; n != want {
				t.Errorf("%d lines, want %d: the header, %d checkpoints, one per receipt and the statement\n%s", n, want, len(rf.Checkpoints), text)
			}
			f.mu.Lock()
			tree := f.log.tree
			signed := slices.Clone(f.log.signed)
			f.mu.Unlock()
			for _, r := range rf.Records {
				if h, err := tree.LeafHash(r.Leaf); err != nil || h != r.Hash {
					t.Errorf("line %d: leaf %d hash %s, the tree has %s (%v)", r.Line, r.Leaf, r.Hash, h, err)
				}
			}
			if len(signed) != 1 || !bytes.Equal(rf.Statement, signed[0]) {
				t.Errorf("the file's statement is not the one signed (%d signed)", len(signed))
			}

			prev, err := filepath.Glob(path + ".prev-*")
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.earlier == "" && len(prev) != 0:
				t.Errorf("files %v beside a first receipts file", prev)
			case tt.earlier != "" && len(prev) != 1:
				t.Errorf("files %v, want the earlier receipts moved to one %s.prev-<time>", prev, filepath.Base(path))
			case tt.earlier != "":
				if b, err := os.ReadFile(prev[0]); err != nil || string(b) != tt.earlier {
					t.Errorf("%s holds %q (%v), want the earlier file whole", prev[0], b, err)
				}
			}

			lines := logs.Lines(t)
			l, ok := testutil.FindOne(lines, "verificar_sorteo", "success")
			want := map[string]string{"raiz": tree.Root().String(), "apuestas": "40", "arbol": strconv.FormatUint(tree.Size(), 10),
				"numero": strconv.Itoa(lottery.WinningNumber), "agency": "1", "apuestas_agencia": "40", "ganadores_agencia": "2"}
			for k, v := range want {
				if !ok || l.Get(k) != v {
					t.Errorf("verificar_sorteo success line %q: %s is %q, want %q", l.Raw, k, l.Get(k), v)
				}
			}
			if fails := testutil.Results(lines, "fail"); len(fails) > 0 {
				t.Errorf("the agency logged failures: %v", fails)
			}
		})
	}
}

// TestAgency_ReceiptsCentralForgot: after a central that forgot acked
// batches (central_olvido), during the upload or after the agency
// finished, the receipts it gave are kept in <file>.forgotten-<time>, and
// its new history is checked from no tree in a new file: a receipt for
// every batch sent again and for the finished, then the statement, which
// verifies with the rows of the batches the central kept.
func TestAgency_ReceiptsCentralForgot(t *testing.T) {
	signer, key := logKeys(t, 4)
	data := writeBets(t, gendata.Bets(1, 600, 2, seed))
	for _, tt := range forgetfulCentrals {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agency-1.receipts")
			f := newFake(t, func(f *fakeCentral) {
				tt.fake(f)
				f.log, f.winners = &fakeLog{signer: signer}, []string{"x"}
			})
			res, err, logs := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: f.addr, DataFile: data,
				MaxAmount: 10, Window: 1, BackoffInitial: 1, BackoffMax: 1, LogKey: key, Receipts: path})
			if err != nil {
				t.Fatal(err)
			}
			if res.Batches != 60 {
				t.Errorf("%d batches, want 60", res.Batches)
			}
			if _, ok := testutil.FindOne(logs.Lines(t), "verificar_sorteo", "success"); !ok {
				t.Error("no verificar_sorteo success line")
			}
			forgotten, err := filepath.Glob(path + ".forgotten-*")
			if err != nil || len(forgotten) != 1 {
				t.Fatalf("files %v (%v), want the receipts of the forgotten history in one .forgotten-<time>", forgotten, err)
			}
			for _, file := range []struct {
				path  string
				first uint64 // the first batch with a receipt in it
				last  uint64
				draw  bool // ends with the finished and the statement
			}{
				{path: forgotten[0], first: 1, last: tt.ack, draw: tt.ack == 60},
				{path: path, first: f.forgetTo + 1, last: 60, draw: true},
			} {
				text, err := os.ReadFile(file.path)
				if err != nil {
					t.Fatal(err)
				}
				rf, err := audit.ReadReceipts(bytes.NewReader(text))
				if err != nil {
					t.Fatalf("%s: %v", filepath.Base(file.path), err)
				}
				var want, got []string
				for seq := file.first; seq <= file.last; seq++ {
					want = append(want, "batch "+strconv.FormatUint(seq, 10))
				}
				if file.draw {
					want = append(want, "finished 60")
				}
				for _, r := range rf.Records {
					got = append(got, r.Kind.String()+" "+strconv.FormatUint(r.Seq, 10))
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s holds receipts for %v, want %v", filepath.Base(file.path), got, want)
				}
				if file.path == path && rf.Statement == nil {
					t.Errorf("%s holds no statement", filepath.Base(file.path))
				}
			}
		})
	}
}
