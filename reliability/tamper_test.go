package reliability

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"lottery/audit"
	"lottery/internal/testutil"
	"lottery/pki"
)

// The tamper suite's upload: small enough to run in seconds, big enough
// that the log has many group commits and every agency many checkpoints.
const (
	tmpAgencies  = 3
	tmpPerAgency = 5_000
	tmpBatch     = 100
	// tmpWinning is the number every case that edits a row writes.
	tmpWinning = 7574

	// Where a journal record's chain and CRC go (storage/journal.go): the
	// chain covers bytes 0-43, the CRC-32C bytes 0-59; and where a commit
	// header's audit log root goes (storage/header.go), which dmgHeader
	// leaves zero.
	tmpChained = 44
	tmpCRC     = 60
	tmpRootAt  = 104
)

// tamperRun is what a clean run over TLS left, as bytes: the central's
// files, each agency's receipts file and the log's keys.
type tamperRun struct {
	bets, journal, tree, statement []byte
	receipts                       [][]byte // index agency-1
	recs                           []dmgRecord
	leaves                         []audit.Leaf // leaf i: journal record i, recomputed from the files
	pub                            string       // the path of log.pub
	key                            note.Verifier
	signer                         note.Signer // log.key: what a dishonest operator holds
	root                           string      // the sorteo line's raiz
	size                           int         // the sorteo line's arbol
}

// tamperFiles are one case's copies, tampered with in memory, then
// written.
type tamperFiles struct {
	bets, journal, tree, statement []byte
	receipts                       [][]byte
}

func (r *tamperRun) files() *tamperFiles {
	f := &tamperFiles{bets: slices.Clone(r.bets), journal: slices.Clone(r.journal), tree: slices.Clone(r.tree), statement: slices.Clone(r.statement)}
	for _, b := range r.receipts {
		f.receipts = append(f.receipts, slices.Clone(b))
	}
	return f
}

// write puts the case's files in a new directory, named as the central
// and the agencies name them, and returns it.
func (f *tamperFiles) write(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{"bets.csv": f.bets, "bets.csv.journal": f.journal, "bets.csv.tlog": f.tree, "bets.csv.sorteo": f.statement}
	for i, b := range f.receipts {
		files[tmpReceiptsName(i+1)] = b
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func tmpReceiptsName(agency int) string { return fmt.Sprintf("agency-%d.receipts", agency) }

// uploadWithReceipts runs the built central and three agencies over TLS,
// with receipts, to the end: every agency verifies the signed statement
// (verificar_sorteo success, the central's root and size) and exits 0.
// Then it stops the central with SIGTERM and reads every file.
func uploadWithReceipts(t *testing.T) *tamperRun {
	t.Helper()
	d := writeDataset(t, t.TempDir(), tmpAgencies, tmpPerAgency)
	dir := t.TempDir()
	path := filepath.Join(dir, "bets.csv")
	srv := testutil.StartServer(t, dir, dmgServerEnv(path))
	agencies := make([]*testutil.Proc, tmpAgencies)
	dirs := make([]string, tmpAgencies)
	for a := 1; a <= tmpAgencies; a++ {
		dirs[a-1] = t.TempDir() // its receipts go to ./.data/agency-<ID>.receipts, the default
		agencies[a-1] = testutil.StartClient(t, "agency-"+strconv.Itoa(a), dirs[a-1],
			agencyEnv(d, a, srv.Addr, map[string]string{"CLI_BATCH_MAXAMOUNT": strconv.Itoa(tmpBatch)}))
	}
	for _, p := range agencies {
		p.Wait(t, 3*testutil.ExitTimeout)
	}
	draw, ok := testutil.FindOne(srv.Lines(), "sorteo", "success")
	if !ok || draw.Get("raiz") == "" {
		t.Fatalf("the central logged no single `sorteo | result: success` line with its root:\n%s", tail(srv.Output(), 20))
	}
	dmgStop(t, srv)
	run := &tamperRun{root: draw.Get("raiz")}
	run.size, _ = draw.Int("arbol")
	for a, p := range agencies {
		checkAgency(t, p, a+1, dmgWinners[a])
		l, ok := testutil.FindOne(p.Lines(), "verificar_sorteo", "")
		if !ok || l.Result != "success" || l.Get("raiz") != run.root || l.Get("arbol") != strconv.Itoa(run.size) ||
			l.Get("apuestas") != strconv.Itoa(tmpAgencies*tmpPerAgency) || l.Get("apuestas_agencia") != strconv.Itoa(tmpPerAgency) {
			t.Errorf("agency %d: %s; want verificar_sorteo success with the central's raiz %s, arbol %d and apuestas %d (%d its own)",
				a+1, l.Raw, run.root, run.size, tmpAgencies*tmpPerAgency, tmpPerAgency)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	run.bets, run.journal, run.tree = dmgRead(t, path), dmgRead(t, path+".journal"), dmgRead(t, path+".tlog")
	run.statement = dmgRead(t, path+".sorteo")
	for a := 1; a <= tmpAgencies; a++ {
		run.receipts = append(run.receipts, dmgRead(t, filepath.Join(dirs[a-1], ".data", tmpReceiptsName(a))))
	}
	keys := testutil.PKI(t, tmpAgencies)
	run.pub = filepath.Join(keys, pki.LogPubFile)
	var err error
	if run.key, err = pki.ReadLogVerifier(run.pub); err != nil {
		t.Fatal(err)
	}
	if run.signer, err = pki.ReadLogSigner(filepath.Join(keys, pki.LogKeyFile)); err != nil {
		t.Fatal(err)
	}
	run.recs = parseJournal(t, run.journal)
	run.leaves = tmpLeaves(run.bets, run.recs)
	if len(run.leaves) != run.size {
		t.Fatalf("the journal holds %d records, the draw's tree %d leaves", len(run.leaves), run.size)
	}
	// The test rewrites the journal and the tree as the central writes
	// them: rewriting the acked files unchanged gives the same bytes.
	journal, tree := tmpForge(t, run.journal, run.bets, tmpRecords(run.journal, run.recs))
	if !bytes.Equal(journal, run.journal) || !bytes.Equal(tree, run.tree) {
		t.Fatalf("the acked files rewritten unchanged differ from the central's: journal at byte %d, bets.csv.tlog at byte %d",
			dmgFirstDiff(journal, run.journal), dmgFirstDiff(tree, run.tree))
	}
	t.Logf("clean run: bets.csv %d bytes, %d journal records, draw over tree %d root %s", len(run.bets), len(run.recs), run.size, run.root)
	return run
}

// tmpLeaves are the audit log's leaves of the journal's records over the
// bets file, as bin/audit recomputes them.
func tmpLeaves(bets []byte, recs []dmgRecord) []audit.Leaf {
	leaves := make([]audit.Leaf, len(recs))
	for i, r := range recs {
		l := audit.Leaf{Kind: audit.LeafKind(r.kind), Agency: r.agency, Seq: r.seq, Count: r.count}
		if r.kind != dmgKindDone {
			l.Digest = sha256.Sum256(bets[r.start:r.end])
		}
		leaves[i] = l
	}
	return leaves
}

// tmpRecord is a journal record as the forger lays it out again: its
// group is renumbered, its chain and CRC recomputed.
type tmpRecord struct {
	raw   []byte // the record's 64 bytes as they were
	group int    // its group in the original journal
	seq   uint64
	end   int64
	count uint32
}

// tmpRecords are the records of journal (parsed as recs) as tmpForge
// takes them.
func tmpRecords(journal []byte, recs []dmgRecord) []tmpRecord {
	out := make([]tmpRecord, len(recs))
	group := 0
	for i, r := range recs {
		out[i] = tmpRecord{raw: journal[r.off:][:dmgRecordSize], group: group, seq: r.seq, end: r.end, count: r.count}
		if r.flags&dmgGroupEnd != 0 {
			group++
		}
	}
	return out
}

// tmpForge writes a journal and its audit log's hashes for recs over bets,
// as the central would have written them, every byte consistent: records
// (groups numbered from 0, group-end flags, bets ends, chain, CRC), both
// commit header slots (the newest group's and the one before, with their
// states, chains and roots), and bets.csv.tlog. The magic block is orig's.
// It is what an attacker who holds the files but not the log's key can do.
func tmpForge(t *testing.T, orig, bets []byte, recs []tmpRecord) (journal, tree []byte) {
	t.Helper()
	journal = slices.Clone(orig[:dmgRecordsStart])
	clear(journal[dmgBlock:])
	var chain [16]byte
	var leaves audit.Tree
	type groupEnd struct {
		st    dmgState
		chain [16]byte
		root  tlog.Hash
	}
	var ends []groupEnd
	st := dmgState{journal: dmgRecordsStart}
	gen := -1
	for i, r := range recs {
		if i == 0 || r.group != recs[i-1].group {
			gen++
		}
		last := i == len(recs)-1 || recs[i+1].group != r.group
		b := slices.Clone(r.raw)
		b[1] = 0
		if last {
			b[1] = dmgGroupEnd
		}
		binary.BigEndian.PutUint16(b[2:4], uint16(gen))
		binary.BigEndian.PutUint64(b[8:16], r.seq)
		binary.BigEndian.PutUint64(b[16:24], uint64(r.end))
		h := sha256.New()
		h.Write(chain[:])
		h.Write(b[:tmpChained])
		copy(chain[:], h.Sum(nil))
		copy(b[tmpChained:tmpCRC], chain[:])
		binary.BigEndian.PutUint32(b[tmpCRC:], crc32.Checksum(b[:tmpCRC], dmgCastagnoli))
		journal = append(journal, b...)

		start := st.bets
		l := audit.Leaf{Kind: audit.LeafKind(b[0]), Agency: binary.BigEndian.Uint32(b[4:8]), Seq: r.seq, Count: r.count}
		switch b[0] {
		case dmgKindDone:
			st.finished++
		case dmgKindBatch:
			st.batches++
			fallthrough
		default:
			st.count += int64(r.count)
			l.Digest = sha256.Sum256(bets[start:r.end])
		}
		st.journal += dmgRecordSize
		st.bets = r.end
		if err := leaves.AppendLeaf(l); err != nil {
			t.Fatal(err)
		}
		if last {
			ends = append(ends, groupEnd{st: st, chain: chain, root: leaves.Root()})
		}
	}
	for g := max(len(ends)-2, 0); g < len(ends); g++ {
		h := dmgHeader{gen: uint64(g), after: ends[g].st, chain: ends[g].chain}
		h.before = dmgState{journal: dmgRecordsStart}
		if g > 0 {
			h.before = ends[g-1].st
		}
		b := h.encode()
		copy(b[tmpRootAt:], ends[g].root[:])
		binary.BigEndian.PutUint32(b[dmgHeaderSize-4:], crc32.Checksum(b[:dmgHeaderSize-4], dmgCastagnoli))
		copy(journal[dmgSlot(h.gen):], b)
	}
	n := tlog.StoredHashCount(int64(leaves.Size()))
	for i := range n {
		hs, err := leaves.ReadHashes([]int64{i})
		if err != nil {
			t.Fatal(err)
		}
		tree = append(tree, hs[0][:]...)
	}
	return journal, tree
}

// tmpAudit runs the built bin/audit in dir on the files a case wrote and
// every agency's receipts file, and returns its exit code, its FAIL lines
// and its whole output.
func tmpAudit(t *testing.T, dir, pub string) (int, []string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testutil.Context(t), testutil.ExitTimeout)
	defer cancel()
	args := []string{"-pub", pub, "-bets", "bets.csv", "-statement", "bets.csv.sorteo"}
	for a := 1; a <= tmpAgencies; a++ {
		args = append(args, tmpReceiptsName(a))
	}
	cmd := exec.CommandContext(ctx, filepath.Join(testutil.Binaries(t), testutil.AuditBin), args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("audit: %v", err)
	}
	var fails []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "FAIL: ") {
			fails = append(fails, line)
		}
	}
	return cmd.ProcessState.ExitCode(), fails, string(out)
}

// receiptsLines splits a receipts file into its lines (without newlines);
// joinLines puts them back.
func receiptsLines(b []byte) []string {
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func joinLines(lines []string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }

// readReceipts parses agency a's receipts file of the clean run.
func (r *tamperRun) readReceipts(t *testing.T, a int) *audit.ReceiptFile {
	t.Helper()
	f, err := audit.ReadReceipts(bytes.NewReader(r.receipts[a-1]))
	if err != nil {
		t.Fatalf("%s: %v", tmpReceiptsName(a), err)
	}
	return f
}

// receiptOf returns the line of agency a's receipts file that holds its
// record kind of sequence seq.
func (r *tamperRun) receiptOf(t *testing.T, a int, kind audit.LeafKind, seq uint64) audit.FileRecord {
	t.Helper()
	for _, rec := range r.readReceipts(t, a).Records {
		if rec.Kind == kind && rec.Seq == seq {
			return rec
		}
	}
	t.Fatalf("%s holds no %s %d", tmpReceiptsName(a), kind, seq)
	return audit.FileRecord{}
}

// checkpointLine is a receipts file's checkpoint line for a signed note.
func checkpointLine(msg []byte) string {
	return "checkpoint " + base64.StdEncoding.EncodeToString(msg)
}

// otherSigner is a note key of the log's own name that is not the log's:
// what signs a forgery that merely looks right.
func otherSigner(t *testing.T) note.Signer {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, pki.DefaultLogOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keyName is how audit names a note key: <name>+<hash>.
func keyName(name string, hash uint32) string { return fmt.Sprintf("%s+%08x", name, hash) }

// batchRecords returns agency a's batch records, in order.
func (r *tamperRun) batchRecords(a int) []dmgRecord {
	var out []dmgRecord
	for _, rec := range r.recs {
		if rec.kind == dmgKindBatch && rec.agency == uint32(a) {
			out = append(out, rec)
		}
	}
	return out
}

// rowsOf returns the starts of the rows of bets[start:end].
func rowsOf(bets []byte, start, end int64) []int64 {
	var out []int64
	for at := start; at < end; {
		out = append(out, at)
		i := bytes.IndexByte(bets[at:end], '\n')
		if i < 0 {
			break
		}
		at += int64(i) + 1
	}
	return out
}

// tamperCase is one tamper and what bin/audit must say: each entry of want
// is the parts one of its FAIL lines holds, all of them; the line that
// matches want[0] is the verdict the table shows.
type tamperCase struct {
	name, tamper string
	apply        func(t *testing.T, f *tamperFiles)
	want         [][]string
}

// TestAudit_Tamper runs a real draw over TLS with receipts (a central and
// three agencies, each verifying the signed statement), checks that
// bin/audit passes it, then tampers with copies of its files the way an
// attacker would and checks that bin/audit refuses each, exit 1, with a
// FAIL line that names what was changed and where: a row edited after the
// draw, a row inserted, a batch removed with every file of the central
// rewritten to agree (so that the central's own -check passes: only the
// receipts catch it), a checkpoint or the statement signed by another key
// of the log's name, a statement whose winners were changed and signed by
// another key or by the log's own, and a fork: a checkpoint signed by the
// log's key over another tree of a size another agency holds. The table
// of what bin/audit said for each case is logged at the end.
func TestAudit_Tamper(t *testing.T) {
	testutil.Long(t)
	var run *tamperRun
	if !t.Run("Upload", func(t *testing.T) { run = uploadWithReceipts(t) }) {
		t.FailNow()
	}
	tb := &caseTable{title: "tamper table", header: "case\ttamper\tbin/audit's verdict\texit"}
	defer tb.log(t)

	t.Run("Clean", func(t *testing.T) {
		code, fails, out := tmpAudit(t, run.files().write(t), run.pub)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		verdict := lines[len(lines)-1]
		tb.add("Clean", "none (the files and receipts as the run left them)", verdict, strconv.Itoa(code))
		want := fmt.Sprintf("audit: OK: a log of %d leaves, root %s, %d bets, number %04d, %d receipts files",
			run.size, run.root, tmpAgencies*tmpPerAgency, tmpWinning, tmpAgencies)
		if code != 0 || len(fails) != 0 || verdict != want {
			t.Fatalf("exit %d, last line %q; want exit 0 and %q:\n%s", code, verdict, want, out)
		}
	})

	for _, c := range tamperCases(t, run) {
		t.Run(c.name, func(t *testing.T) {
			f := run.files()
			c.apply(t, f)
			code, fails, out := tmpAudit(t, f.write(t), run.pub)
			verdict := "(no FAIL line names it)"
			for i, parts := range c.want {
				at := slices.IndexFunc(fails, func(l string) bool {
					return !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(l, p) })
				})
				if at < 0 {
					t.Errorf("no FAIL line holds all of %q", parts)
					continue
				}
				if i == 0 {
					verdict = fails[at]
				}
			}
			if len(fails) > 1 {
				verdict += fmt.Sprintf(" (+%d more FAIL lines)", len(fails)-1)
			}
			tb.add(c.name, c.tamper, verdict, strconv.Itoa(code))
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if last := lines[len(lines)-1]; code != 1 || !strings.HasPrefix(last, fmt.Sprintf("audit: FAILED: %d of ", len(fails))) {
				t.Errorf("exit %d, last line %q; want exit 1 and the count of its %d FAIL lines", code, last, len(fails))
			}
			if t.Failed() {
				t.Logf("bin/audit said:\n%s", out)
			}
		})
	}
}

// tamperCases are the tampers, each computed from the clean run.
func tamperCases(t *testing.T, run *tamperRun) []tamperCase {
	return []tamperCase{
		rowEdited(t, run),
		rowInserted(t, run),
		batchRemoved(t, run),
		statementOtherKey(t, run),
		checkpointOtherKey(t, run),
		winnersOtherKey(t, run),
		winnersLogKey(t, run),
		fork(t, run),
	}
}

// leafWhere is how bin/audit names a leaf of the journal.
func leafWhere(r dmgRecord) string {
	return fmt.Sprintf("leaf %d (journal offset %d, bets.csv bytes %d to %d)", r.index, r.off, r.start, r.end)
}

// rowEdited changes a losing bet's number to the winning one in place
// (four digits for four), in agency 1's middle batch, after the draw.
func rowEdited(t *testing.T, run *tamperRun) tamperCase {
	const agency = 1
	batches := run.batchRecords(agency)
	rec := batches[len(batches)/2]
	var at int64 = -1
	for _, row := range rowsOf(run.bets, rec.start, rec.end)[1:] {
		line := run.bets[row:]
		line = line[:bytes.IndexByte(line, '\r')]
		num := line[bytes.LastIndexByte(line, ',')+1:]
		if len(num) == 4 && string(num) != strconv.Itoa(tmpWinning) {
			at = row + int64(bytes.LastIndexByte(line, ',')) + 1
			break
		}
	}
	if at < 0 {
		t.Fatalf("batch %d of agency %d has no four-digit losing number", rec.seq, agency)
	}
	receipt := run.receiptOf(t, agency, audit.KindBatch, rec.seq)
	return tamperCase{
		name:   "RowEdited",
		tamper: fmt.Sprintf("bets.csv: the number at byte %d (agency %d's batch %d, %s) changed to %d, same length", at, agency, rec.seq, leafWhere(rec), tmpWinning),
		apply:  func(_ *testing.T, f *tamperFiles) { copy(f.bets[at:], strconv.Itoa(tmpWinning)) },
		want: [][]string{
			{fmt.Sprintf("batch %d of agency %d (%d bets) at %s line %d", rec.seq, agency, rec.count, tmpReceiptsName(agency), receipt.Line),
				leafWhere(rec), "altered"},
			{fmt.Sprintf("agency %d's winners", agency), fmt.Sprintf("ganadores %d, but bets.csv holds %d winning rows", dmgWinners[agency-1], dmgWinners[agency-1]+1)},
			{"the draw statement's tree", "the log was rewritten"},
		},
	}
}

// rowInserted inserts a whole row of agency 3 at a row boundary inside its
// middle batch.
func rowInserted(t *testing.T, run *tamperRun) tamperCase {
	const agency = 3
	batches := run.batchRecords(agency)
	rec := batches[len(batches)/2]
	at := rowsOf(run.bets, rec.start, rec.end)[1]
	row := []byte(fmt.Sprintf("%d,Conan,Doyle,30000000,1990-01-01,%d\r\n", agency, tmpWinning))
	receipt := run.receiptOf(t, agency, audit.KindBatch, rec.seq)
	rows := tmpAgencies * tmpPerAgency
	return tamperCase{
		name:   "RowInserted",
		tamper: fmt.Sprintf("bets.csv: a row of agency %d inserted at byte %d (inside its batch %d, %s)", agency, at, rec.seq, leafWhere(rec)),
		apply:  func(_ *testing.T, f *tamperFiles) { f.bets = slices.Concat(run.bets[:at], row, run.bets[at:]) },
		want: [][]string{
			{fmt.Sprintf("batch %d of agency %d (%d bets) at %s line %d", rec.seq, agency, rec.count, tmpReceiptsName(agency), receipt.Line),
				leafWhere(rec), "altered"},
			{"the rows of bets.csv", fmt.Sprintf("%d rows, but the log's leaves count %d", rows+1, rows)},
		},
	}
}

// batchRemoved removes agency 2's last batch as an attacker who holds the
// files but not the log's key: its rows from bets.csv, its record from the
// journal, the agency's finished record saying the batch before, and every
// record after it, the chain, the CRCs, both commit headers and their
// roots, and bets.csv.tlog rewritten to agree. The central's own -check
// passes on the result: the files prove each other. Only what the central
// signed (the receipts, the statement) catches it.
func batchRemoved(t *testing.T, run *tamperRun) tamperCase {
	const agency = 2
	batches := run.batchRecords(agency)
	rec := batches[len(batches)-1]
	receipt := run.receiptOf(t, agency, audit.KindBatch, rec.seq)
	finished := run.receiptOf(t, agency, audit.KindFinished, rec.seq)
	removed := rec.end - rec.start
	return tamperCase{
		name: "BatchRemoved",
		tamper: fmt.Sprintf("agency %d's last batch %d (%s) removed: its rows cut from bets.csv, the journal and bets.csv.tlog rewritten to agree, without the log's key",
			agency, rec.seq, leafWhere(rec)),
		apply: func(t *testing.T, f *tamperFiles) {
			recs := tmpRecords(run.journal, run.recs)
			for i := range recs {
				if recs[i].end >= rec.end {
					recs[i].end -= removed
				}
				if r := run.recs[i]; r.kind == dmgKindDone && r.agency == agency {
					recs[i].seq--
				}
			}
			recs = slices.Delete(recs, rec.index, rec.index+1)
			f.bets = slices.Concat(run.bets[:rec.start], run.bets[rec.end:])
			f.journal, f.tree = tmpForge(t, run.journal, f.bets, recs)

			// The central's own check finds nothing wrong.
			dir := t.TempDir()
			path := filepath.Join(dir, "bets.csv")
			for name, b := range map[string][]byte{"": f.bets, ".journal": f.journal, ".tlog": f.tree} {
				if err := os.WriteFile(path+name, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			code, lines, out := runServerFlag(t, path, "-check")
			l, ok := testutil.FindOne(lines, "verificar", "success")
			if want := strconv.Itoa(tmpAgencies*tmpPerAgency - int(rec.count)); code != 0 || !ok || l.Get("apuestas") != want {
				t.Errorf("server -check on the rewritten files: exit %d; want 0 and verificar success with apuestas %s:\n%s", code, want, out)
			} else {
				t.Logf("server -check on the rewritten files: exit 0, %s", l.Raw)
			}
		},
		want: [][]string{
			{fmt.Sprintf("batch %d of agency %d (%d bets) at %s line %d", rec.seq, agency, rec.count, tmpReceiptsName(agency), receipt.Line),
				fmt.Sprintf("acked at leaf %d in the signed tree %d", rec.index, receipt.TreeSize), "dropped"},
			{fmt.Sprintf("agency %d's finished after batch %d at %s line %d", agency, rec.seq, tmpReceiptsName(agency), finished.Line),
				fmt.Sprintf("the log's agency %d's finished after batch %d at leaf", agency, rec.seq-1), "altered"},
			{"the draw statement's tree", fmt.Sprintf("%d leaves signed, but the log holds %d", run.size, run.size-1)},
		},
	}
}

// resign signs the statement's text again, with fix applied to it, by
// signer.
func (r *tamperRun) resign(t *testing.T, signer note.Signer, fix func(*audit.Statement)) []byte {
	t.Helper()
	st, err := audit.OpenStatement(r.statement, r.key)
	if err != nil {
		t.Fatal(err)
	}
	fix(&st)
	msg, err := audit.SignStatement(st, signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// wrongKey is the parts of audit's refusal of a note signed by signer.
func (r *tamperRun) wrongKey(signer note.Signer) []string {
	return []string{"not signed by the log's key", "signed by " + keyName(signer.Name(), signer.KeyHash()),
		"not by " + keyName(r.key.Name(), r.key.KeyHash())}
}

// statementOtherKey signs the statement as it is with another key of the
// log's name.
func statementOtherKey(t *testing.T, run *tamperRun) tamperCase {
	other := otherSigner(t)
	return tamperCase{
		name:   "StatementOtherKey",
		tamper: fmt.Sprintf("bets.csv.sorteo re-signed, unchanged, by another key named %s (%08x)", other.Name(), other.KeyHash()),
		apply:  func(t *testing.T, f *tamperFiles) { f.statement = run.resign(t, other, func(*audit.Statement) {}) },
		want:   [][]string{append([]string{"the draw statement:"}, run.wrongKey(other)...)},
	}
}

// checkpointOtherKey replaces a checkpoint of agency 3's receipts file
// with the same checkpoint signed by another key of the log's name.
func checkpointOtherKey(t *testing.T, run *tamperRun) tamperCase {
	const agency = 3
	other := otherSigner(t)
	cps := run.readReceipts(t, agency).Checkpoints
	fc := cps[len(cps)/2]
	return tamperCase{
		name: "CheckpointOtherKey",
		tamper: fmt.Sprintf("%s line %d: its checkpoint (tree %d) re-signed, unchanged, by another key named %s (%08x)",
			tmpReceiptsName(agency), fc.Line, fc.Checkpoint.Size, other.Name(), other.KeyHash()),
		apply: func(t *testing.T, f *tamperFiles) {
			msg, err := audit.Sign(fc.Checkpoint, other)
			if err != nil {
				t.Fatal(err)
			}
			lines := receiptsLines(f.receipts[agency-1])
			lines[fc.Line-1] = checkpointLine(msg)
			f.receipts[agency-1] = joinLines(lines)
		},
		want: [][]string{append([]string{fmt.Sprintf("the checkpoint of tree %d at %s line %d:", fc.Checkpoint.Size, tmpReceiptsName(agency), fc.Line)},
			run.wrongKey(other)...)},
	}
}

// winnersOtherKey hides agency 1's winners in the statement and signs it
// with another key of the log's name.
func winnersOtherKey(t *testing.T, run *tamperRun) tamperCase {
	other := otherSigner(t)
	return tamperCase{
		name:   "WinnersOtherKey",
		tamper: fmt.Sprintf("bets.csv.sorteo: agency 1's ganadores %d → 0, signed by another key named %s (%08x)", dmgWinners[0], other.Name(), other.KeyHash()),
		apply: func(t *testing.T, f *tamperFiles) {
			f.statement = run.resign(t, other, func(st *audit.Statement) { st.Agencies[0].Winners = 0 })
		},
		want: [][]string{append([]string{"the draw statement:"}, run.wrongKey(other)...)},
	}
}

// winnersLogKey hides agency 1's winners in the statement and signs it
// with the log's own key, as a dishonest operator can: the signature
// verifies, the winners recomputed from bets.csv do not.
func winnersLogKey(t *testing.T, run *tamperRun) tamperCase {
	return tamperCase{
		name:   "WinnersLogKey",
		tamper: fmt.Sprintf("bets.csv.sorteo: agency 1's ganadores %d → 0, signed by the log's key (a dishonest operator)", dmgWinners[0]),
		apply: func(t *testing.T, f *tamperFiles) {
			f.statement = run.resign(t, run.signer, func(st *audit.Statement) { st.Agencies[0].Winners = 0 })
		},
		want: [][]string{
			{"agency 1's winners", fmt.Sprintf("ganadores 0, but bets.csv holds %d winning rows of the agency", dmgWinners[0])},
			{"the draw statement at " + tmpReceiptsName(1), "the central signed another draw than the one audited"},
		},
	}
}

// fork shows agency B a checkpoint, signed by the log's key, of another
// tree of the size of a checkpoint agency A holds: the real leaves with one
// of A's batches changed. It replaces one of B's checkpoint lines, and its
// batch and finished lines cite the forged tree's size, as B would have
// stored them. A size both files hold is taken when there is one.
func fork(t *testing.T, run *tamperRun) tamperCase {
	type choice struct {
		a, b     int
		size     uint64
		bIndex   int // of B's checkpoints, the one replaced
		sameSize bool
	}
	var best *choice
	for a := 1; a <= tmpAgencies && (best == nil || !best.sameSize); a++ {
		for b := 1; b <= tmpAgencies && (best == nil || !best.sameSize); b++ {
			if a == b {
				continue
			}
			fa, fb := run.readReceipts(t, a), run.readReceipts(t, b)
			for _, ca := range fa.Checkpoints {
				s := ca.Checkpoint.Size
				// B's checkpoint i such that s fits in its place: at
				// least its size, at most the next one's.
				i := -1
				for j, cb := range fb.Checkpoints {
					if cb.Checkpoint.Size <= s {
						i = j
					}
				}
				if i < 0 || i+1 < len(fb.Checkpoints) && fb.Checkpoints[i+1].Checkpoint.Size < s {
					continue
				}
				c := &choice{a: a, b: b, size: s, bIndex: i, sameSize: fb.Checkpoints[i].Checkpoint.Size == s}
				if best == nil || c.sameSize && !best.sameSize {
					best = c
				}
				if c.sameSize {
					break
				}
			}
		}
	}
	if best == nil {
		t.Fatalf("no agency's checkpoint size fits among another's: the run has too few checkpoints")
	}
	c := *best
	fb := run.readReceipts(t, c.b)
	replaced := fb.Checkpoints[c.bIndex]
	nextLine := 1 << 30
	if c.bIndex+1 < len(fb.Checkpoints) {
		nextLine = fb.Checkpoints[c.bIndex+1].Line
	}
	// The forged tree: the real leaves, but agency A's first batch below
	// the size changed.
	var forged audit.Tree
	changed := -1
	for i, l := range run.leaves[:c.size] {
		if changed < 0 && l.Kind == audit.KindBatch && l.Agency == uint32(c.a) {
			l.Digest = sha256.Sum256([]byte("rows agency B was never shown"))
			changed = i
		}
		if err := forged.AppendLeaf(l); err != nil {
			t.Fatal(err)
		}
	}
	if changed < 0 {
		t.Fatalf("agency %d has no batch below tree %d", c.a, c.size)
	}
	// bin/audit compares each file's checkpoints with the first file's,
	// in its arguments' order, that held the size: the fork names B and the
	// first other agency whose file holds the real tree of that size.
	other, otherLine := 0, 0
	for x := 1; x <= tmpAgencies && other == 0; x++ {
		if x == c.b {
			continue
		}
		for _, cx := range run.readReceipts(t, x).Checkpoints {
			if cx.Checkpoint.Size == c.size {
				other, otherLine = x, cx.Line
				break
			}
		}
	}
	how := "the same size"
	if !c.sameSize {
		how = fmt.Sprintf("tree %d there, its batch and finished lines now citing tree %d", replaced.Checkpoint.Size, c.size)
	}
	return tamperCase{
		name: "Fork",
		tamper: fmt.Sprintf("%s line %d: a checkpoint signed by the log's key of another tree %d (leaf %d, agency %d's batch, changed) than the one %s line %d holds (%s)",
			tmpReceiptsName(c.b), replaced.Line, c.size, changed, c.a, tmpReceiptsName(other), otherLine, how),
		apply: func(t *testing.T, f *tamperFiles) {
			msg, err := audit.Sign(forged.Checkpoint(run.key.Name()), run.signer)
			if err != nil {
				t.Fatal(err)
			}
			lines := receiptsLines(f.receipts[c.b-1])
			lines[replaced.Line-1] = checkpointLine(msg)
			for i := replaced.Line; i < len(lines) && i+1 < nextLine; i++ {
				w := strings.Split(lines[i], " ")
				switch w[0] {
				case "batch":
					w[4] = strconv.FormatUint(c.size, 10)
				case "finished":
					w[3] = strconv.FormatUint(c.size, 10)
				}
				lines[i] = strings.Join(w, " ")
			}
			f.receipts[c.b-1] = joinLines(lines)
		},
		want: [][]string{
			{fmt.Sprintf("%s line %d", tmpReceiptsName(other), otherLine), fmt.Sprintf("%s line %d", tmpReceiptsName(c.b), replaced.Line),
				"two agencies were shown two logs", fmt.Sprintf("tree %d", c.size)},
			{fmt.Sprintf("at %s line %d", tmpReceiptsName(c.b), replaced.Line), "a fork or a rewritten log"},
		},
	}
}
