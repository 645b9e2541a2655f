package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"lottery/bench"
)

// lastJSON parses the last line of out as a JSON object.
func lastJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("last line %q is not a JSON object: %v", lines[len(lines)-1], err)
	}
	return m
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		fields []string
		want   map[string]float64
	}{
		{
			name:   "OKScenario",
			args:   []string{"-agencies", "2", "-bets", "500", "-runs", "2"},
			fields: []string{"bets_per_second", "e2e_seconds", "ack_p50_ms", "ack_p99_ms", "central_peak_rss_bytes", "fsyncs", "cpu_seconds"},
			want:   map[string]float64{"total_bets": 1000, "stored_bets": 1000, "runs": 2, "winners": 6},
		},
		{
			name:   "OKNoSync",
			args:   []string{"-agencies", "1", "-bets", "300", "-maxamount", "50", "-window", "2", "-nosync"},
			fields: []string{"bets_per_second", "e2e_seconds"},
			want:   map[string]float64{"total_bets": 300, "fsyncs": 0, "max_amount": 50, "window": 2, "batches": 6},
		},
		{
			name:   "OKCentrals3",
			args:   []string{"-agencies", "2", "-bets", "300", "-centrals", "3", "-heartbeat", "300ms"},
			fields: []string{"bets_per_second", "e2e_seconds", "fsyncs"},
			want:   map[string]float64{"total_bets": 600, "stored_bets": 600, "centrals": 3, "winners": 6},
		},
		{
			name:   "OKFailover",
			args:   []string{"-agencies", "1", "-bets", "2000", "-maxamount", "20", "-window", "4", "-centrals", "3", "-failover", "1", "-heartbeat", "300ms"},
			fields: []string{"failover_p50_ms", "failover_p99_ms", "failover_max_ms", "commit_p50_ms", "elected_p50_ms"},
			want:   map[string]float64{"centrals": 3, "kills": 1, "stored_bets": 2000, "winners": 3},
		},
		{
			name:   "OKDrawOnly",
			args:   []string{"-draw-only", "-bets", "3000"},
			fields: []string{"draw_seconds", "draw_cpu_seconds", "rows_per_second", "go_heap_peak_bytes", "peak_rss_bytes"},
			want:   map[string]float64{"stored_bets": 3000, "winners": 3},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"-json", "-quiet", "-dir", t.TempDir()}, tc.args...)
			if code := run(args, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
			}
			m := lastJSON(t, stdout.String())
			for _, f := range tc.fields {
				if v, ok := m[f].(float64); !ok || v < 0 {
					t.Errorf("field %s = %v, want a number >= 0", f, m[f])
				}
			}
			for f, want := range tc.want {
				if m[f] != want {
					t.Errorf("field %s = %v, want %v", f, m[f], want)
				}
			}
		})
	}
}

func TestRun_ErrUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"UnknownFlag":   {"-nope"},
		"ZeroAgencies":  {"-agencies", "0"},
		"ZeroRuns":      {"-runs", "0"},
		"NegWindow":     {"-window", "-1"},
		"ExtraArg":      {"extra"},
		"Centrals2":     {"-centrals", "2"},
		"CentralsTwice": {"-centrals", "1,1"},
		"CentralsBlank": {"-centrals", ""},
		"CentralsBin":   {"-centrals", "3", "-server-bin", "bin/server"},
		"FailoverOne":   {"-failover", "2"},
		"FailoverBoth":  {"-failover", "2", "-centrals", "1,3"},
		"AdminBad":      {"-admin", "maybe"},
		"AdminTwice":    {"-admin", "on,on"},
		"AdminCluster":  {"-admin", "off,on", "-centrals", "3"},
		"AdminDrawOnly": {"-admin", "on", "-draw-only"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
		})
	}
}

// TestRun_CentralsSideBySide: -centrals 1,3 alternates the single central
// and the group and reports both, side by side and in one JSON object.
func TestRun_CentralsSideBySide(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"-json", "-quiet", "-dir", t.TempDir(), "-agencies", "2", "-bets", "300", "-runs", "2", "-centrals", "1,3", "-heartbeat", "300ms"}
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"run 1: 1 central(s)", "run 1: 3 central(s)", "run 2: 1 central(s)", "run 2: 3 central(s)", "side by side"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	rs, _ := lastJSON(t, out)["results"].([]any)
	if len(rs) != 2 {
		t.Fatalf("results = %v, want two", rs)
	}
	for i, k := range []float64{1, 3} {
		m, _ := rs[i].(map[string]any)
		if m["centrals"] != k || m["stored_bets"] != 600.0 || m["runs"] != 2.0 {
			t.Errorf("result %d: centrals %v, stored %v, runs %v; want %v, 600, 2", i, m["centrals"], m["stored_bets"], m["runs"], k)
		}
	}
}

func TestRun_ErrServerFails(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"-quiet", "-agencies", "1", "-bets", "10", "-dir", t.TempDir(), "-server-bin", "/nonexistent/server"}
	if code := run(args, &stdout, &stderr); code != exitFailed {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitFailed, stderr.String())
	}
}

// TestRun_Help: -h and --help print the usage on stdout and exit 0
// without running anything; a usage error prints it on stderr.
func TestRun_Help(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"-h"}, exitOK},
		{[]string{"--help"}, exitOK},
		{[]string{"-help"}, exitOK},
		{[]string{"-nope"}, exitUsage},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit %d, want %d", code, tt.code)
			}
			out, other := stdout.String(), stderr.String()
			if tt.code != exitOK {
				out, other = other, out
			}
			if !strings.HasPrefix(out, "usage: bench") && !strings.Contains(out, "\nusage: bench") || !strings.Contains(out, "-agencies") || other != "" {
				t.Fatalf("stdout %q, stderr %q", stdout.String(), stderr.String())
			}
		})
	}
}

// TestRun_AdminSideBySide: -admin off,on alternates the central without
// and with its admin listener and reports both.
func TestRun_AdminSideBySide(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"-json", "-quiet", "-dir", t.TempDir(), "-agencies", "2", "-bets", "300", "-runs", "2", "-admin", "off,on"}
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"run 1: 1 central(s), admin off", "run 2: 1 central(s), admin on", "side by side", "vs 1 central(s), admin off"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	rs, _ := lastJSON(t, out)["results"].([]any)
	if len(rs) != 2 {
		t.Fatalf("results = %v, want two", rs)
	}
	for i, admin := range []bool{false, true} {
		m, _ := rs[i].(map[string]any)
		polls, _ := m["admin_polls"].(float64)
		if m["admin"] != admin || m["stored_bets"] != 600.0 || (polls > 0) != admin {
			t.Errorf("result %d: admin %v, polls %v, stored %v; want admin %v, polled only when on, 600", i, m["admin"], polls, m["stored_bets"], admin)
		}
	}
}

func TestPairedRatio(t *testing.T) {
	runs := func(rates ...float64) []bench.Result {
		var rs []bench.Result
		for _, r := range rates {
			rs = append(rs, bench.Result{BetsPerSecond: r})
		}
		return rs
	}
	tests := []struct {
		name     string
		rs, base []bench.Result
		want     float64
	}{
		{"OK/Odd", runs(90, 300, 100), runs(100, 200, 100), 1},           // 0.9, 1.5, 1
		{"OK/Even", runs(90, 110, 120, 80), runs(100, 100, 100, 100), 1}, // 0.8 0.9 1.1 1.2
		{"OK/Drift", runs(300, 150), runs(310, 140), (300.0/310 + 150.0/140) / 2},
		{"OK/None", nil, nil, 1},
		{"OK/ZeroBase", runs(5), runs(0), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pairedRatio(tt.rs, tt.base); got < tt.want-1e-9 || got > tt.want+1e-9 {
				t.Errorf("pairedRatio = %v, want %v", got, tt.want)
			}
		})
	}
}
