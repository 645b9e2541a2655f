package testutil

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"lottery/logline"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		ok     bool
		action string
		result string
		keys   []string
		values map[string]string
	}{
		{name: "details", line: "2024-03-01 10:11:12 INFO     action: apuesta_recibida | result: success | cantidad: 100 | agency: 1 | batch: 7",
			ok: true, action: "apuesta_recibida", result: "success", keys: []string{"cantidad", "agency", "batch"},
			values: map[string]string{"cantidad": "100", "agency": "1", "batch": "7"}},
		{name: "no details", line: "2024-03-01 10:11:12 INFO     action: sorteo | result: success", ok: true, action: "sorteo", result: "success"},
		{name: "warning crlf", line: "2024-03-01 10:11:12 WARNING  action: leer_apuesta | result: fail | linea: 3 | error: row has 4 fields: bad\r",
			ok: true, action: "leer_apuesta", result: "fail", keys: []string{"linea", "error"},
			values: map[string]string{"linea": "3", "error": "row has 4 fields: bad"}},
		{name: "empty value at end", line: "2024-03-01 10:11:12 INFO     action: config | result: success | ip:", ok: true,
			action: "config", result: "success", keys: []string{"ip"}, values: map[string]string{"ip": ""}},
		{name: "empty value with space", line: "2024-03-01 10:11:12 INFO     action: config | result: success | ip: | port: 1", ok: true,
			action: "config", result: "success", keys: []string{"ip", "port"}, values: map[string]string{"ip": "", "port": "1"}},
		{name: "in progress", line: "2024-03-01 10:11:12 INFO     action: shutdown | result: in_progress | resource: listener", ok: true,
			action: "shutdown", result: "in_progress", keys: []string{"resource"}, values: map[string]string{"resource": "listener"}},
		{name: "no result", line: "2024-03-01 10:11:12 INFO     action: sorteo | ganadores: 3"},
		{name: "bad result", line: "2024-03-01 10:11:12 INFO     action: sorteo | result: ok"},
		{name: "bad level", line: "2024-03-01 10:11:12 NOTICE   action: sorteo | result: success"},
		{name: "bad date", line: "24-03-01 10:11:12 INFO     action: sorteo | result: success"},
		{name: "detail without colon", line: "2024-03-01 10:11:12 INFO     action: sorteo | result: success | ganadores"},
		{name: "reserved key", line: "2024-03-01 10:11:12 INFO     action: sorteo | result: success | source: x"},
		{name: "empty detail", line: "2024-03-01 10:11:12 INFO     action: sorteo | result: success | "},
		{name: "no level gap", line: "2024-03-01 10:11:12 INFOaction: sorteo | result: success"},
		{name: "not a log line", line: "panic: runtime error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, ok := ParseLine(tt.line)
			if ok != tt.ok {
				t.Fatalf("ParseLine(%q) ok = %v, want %v", tt.line, ok, tt.ok)
			}
			if !ok {
				return
			}
			if l.Action != tt.action || l.Result != tt.result {
				t.Errorf("action, result = %q, %q; want %q, %q", l.Action, l.Result, tt.action, tt.result)
			}
			if !slices.Equal(l.Keys, tt.keys) {
				t.Errorf("keys = %q, want %q", l.Keys, tt.keys)
			}
			for k, v := range tt.values {
				if l.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, l.Get(k), v)
				}
			}
		})
	}
}

// TestParseAll_Logline checks the parser against what the real handler
// writes, including values that need cleaning.
func TestParseAll_Logline(t *testing.T) {
	var buf bytes.Buffer
	log := logline.New(&buf, slog.LevelDebug)
	log.Info("config", logline.OK, "ip", "", "port", 12345)
	log.Warn("leer_apuesta", logline.Failed, "linea", 4, "error", "a | b\nc")
	log.Debug("apuesta_almacenada", logline.OK, "dni", "00012345", "numero", 7574)
	log.Info("shutdown", logline.OK)
	text := buf.String() + "some line without the keyword\n"
	lines, err := ParseAll(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 4 {
		t.Fatalf("parsed %d lines, want 4:\n%s", len(lines), text)
	}
	if l, ok := FindOne(lines, "leer_apuesta", "fail"); !ok || l.Get("linea") != "4" || l.Level != "WARNING" {
		t.Errorf("leer_apuesta line = %+v", l)
	}
	if n, ok := lines[2].Int("numero"); !ok || n != 7574 {
		t.Errorf("numero = %d, %v", n, ok)
	}
	if got := len(Find(lines, "shutdown", "")); got != 1 {
		t.Errorf("Find shutdown = %d lines", got)
	}
}

func TestParseAll_Rejects(t *testing.T) {
	text := "2024-03-01 10:11:12 INFO     action: sorteo | result: success\n" +
		"2024-03-01 10:11:12 INFO     action: sorteo | ganadores: 3\n"
	lines, err := ParseAll(text)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("ParseAll error = %v, want one naming line 2", err)
	}
	if len(lines) != 1 {
		t.Errorf("kept %d good lines, want 1", len(lines))
	}
	if got := Lines(text); len(got) != 1 {
		t.Errorf("Lines kept %d, want 1", len(got))
	}
}
