package metrics_test

import (
	"encoding/json"
	"testing"
	"time"

	"lottery"
	"lottery/metrics"
)

func TestLottery_SnapshotPhase(t *testing.T) {
	tests := []struct {
		name     string
		finished []uint32
		drawn    bool
		phase    string
		text     string
	}{
		{"Receiving", nil, false, metrics.PhaseReceiving, "receiving"},
		{"WaitingMany", []uint32{1}, false, metrics.PhaseWaiting, "waiting for 2 agencies"},
		{"WaitingOne", []uint32{1, 3}, false, metrics.PhaseWaiting, "waiting for 1 agency"},
		{"Drawing", []uint32{1, 2, 3}, false, metrics.PhaseWaiting, "waiting for the draw"},
		{"Drawn", []uint32{1, 2, 3}, true, metrics.PhaseDrawn, "drawn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := metrics.New(3)
			for _, a := range tt.finished {
				l.AgencyFinished(a)
			}
			if tt.drawn {
				l.DrawCompleted(drawTime, nil)
			}
			st := l.Snapshot(1, 0)
			if st.Phase != tt.phase || st.PhaseText != tt.text {
				t.Errorf("phase %q %q, want %q %q", st.Phase, st.PhaseText, tt.phase, tt.text)
			}
			if st.Pending != 3-len(tt.finished) || st.Finished != len(tt.finished) {
				t.Errorf("finished %d pending %d", st.Finished, st.Pending)
			}
			if (st.DrawnAt != nil) != tt.drawn {
				t.Errorf("drawn at %v", st.DrawnAt)
			}
		})
	}
}

func TestLottery_SnapshotPages(t *testing.T) {
	tests := []struct {
		name            string
		agencies        int
		page, perPage   int
		wantPage, pages int
		first, rows     int
	}{
		{"FirstPage", 1000, 1, 50, 1, 20, 1, 50},
		{"Middle", 1000, 7, 50, 7, 20, 301, 50},
		{"LastPartial", 1001, 21, 50, 21, 21, 1001, 1},
		{"PastTheEnd", 1000, 99, 50, 20, 20, 951, 50},
		{"PageZero", 10, 0, 3, 1, 4, 1, 3},
		{"NegativePage", 10, -5, 3, 1, 4, 1, 3},
		{"DefaultPerPage", 120, 2, 0, 2, 3, 51, 50},
		{"PerPageCapped", 2000, 1, 1 << 30, 1, 4, 1, metrics.MaxPerPage},
		{"Few", 3, 1, 50, 1, 1, 1, 3},
		{"NoAgencies", 0, 1, 50, 1, 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := metrics.New(tt.agencies)
			st := l.Snapshot(tt.page, tt.perPage)
			if st.Page != tt.wantPage || st.Pages != tt.pages || len(st.Rows) != tt.rows {
				t.Fatalf("page %d of %d with %d rows, want %d of %d with %d", st.Page, st.Pages, len(st.Rows),
					tt.wantPage, tt.pages, tt.rows)
			}
			for i, r := range st.Rows {
				if int(r.Agency) != tt.first+i {
					t.Fatalf("row %d is agency %d, want %d", i, r.Agency, tt.first+i)
				}
			}
		})
	}
}

// TestLottery_SnapshotTotals: the totals cover every agency, not only the
// page; winners appear with the draw.
func TestLottery_SnapshotTotals(t *testing.T) {
	l := metrics.New(100)
	for a := range uint32(100) {
		l.BatchStored(a+1, int(a+1))
	}
	l.BatchRefused(100, lottery.EConflict)
	l.BatchRefused(5000, lottery.EUnknownAgency)
	l.BatchDuplicate(2)
	l.AgencyConnected(7)
	st := l.Snapshot(2, 10)
	if st.Totals.Bets != 5050 || st.Totals.Batches != 100 || st.Totals.Refused != 2 || st.Totals.Duplicates != 1 {
		t.Errorf("totals %+v", st.Totals)
	}
	if st.Refusals["conflict"] != 1 || st.Refusals["unknown_agency"] != 1 {
		t.Errorf("refusals %v", st.Refusals)
	}
	if st.Connected != 1 || st.Rows[0].Agency != 11 || st.Rows[0].Bets != 11 || st.Rows[0].Winners != nil {
		t.Errorf("snapshot %+v", st)
	}
	l.DrawCompleted(drawTime, map[uint32]int{11: 4, 12: 1, 99: 2})
	st = l.Snapshot(2, 10)
	if st.Totals.Winners != 7 || *st.Rows[0].Winners != 4 || *st.Rows[2].Winners != 0 {
		t.Errorf("winners: totals %d, rows %v", st.Totals.Winners, st.Rows[:3])
	}
	if !st.DrawnAt.Equal(drawTime) {
		t.Errorf("drawn at %v", st.DrawnAt)
	}
}

// TestLottery_SnapshotJSON: the page reads these names; null and empty
// lists are distinguished as the page expects.
func TestLottery_SnapshotJSON(t *testing.T) {
	l := metrics.New(2)
	l.Fsync(1500 * time.Microsecond)
	l.StoreSize(2048, 10)
	l.SetCheckpoint(3, []byte{0xfb, 0xff})
	l.Nodes([]metrics.NodeStatus{{Name: "server1", Addr: "10.0.0.1:12345", Role: "leader", Applied: 9, Self: true}})
	b, err := json.Marshal(l.Snapshot(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"phase": "receiving", "agencies": 2.0, "pages": 1.0, "per_page": 50.0, "replicated": true,
		"drawn_at": nil,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if cp := got["checkpoint"].(map[string]any); cp["root"] != "+/8=" || cp["size"] != 3.0 {
		t.Errorf("checkpoint %v", cp)
	}
	if s := got["store"].(map[string]any); s["last_fsync_seconds"] != 0.0015 || s["bytes"] != 2048.0 {
		t.Errorf("store %v", s)
	}
	rows := got["rows"].([]any)
	if r := rows[0].(map[string]any); r["winners"] != nil || r["agency"] != 1.0 {
		t.Errorf("row %v", r)
	}
	if n := got["nodes"].([]any)[0].(map[string]any); n["role"] != "leader" || n["self"] != true {
		t.Errorf("node %v", n)
	}
}

// TestLottery_Nodes: the list given is copied, not kept.
func TestLottery_Nodes(t *testing.T) {
	l := metrics.New(1)
	nodes := []metrics.NodeStatus{{Name: "a", Role: "leader"}}
	l.Nodes(nodes)
	nodes[0].Role = "follower"
	if got := l.Snapshot(1, 1).Nodes[0].Role; got != "leader" {
		t.Errorf("role %q: the caller's slice was kept", got)
	}
}
