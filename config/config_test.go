package config_test

import (
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"lottery/config"
	"lottery/internal/testutil"
)

func TestReadINI(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"Course", "[DEFAULT]\nSERVER_PORT = 12345\nSERVER_IP = server\nSERVER_LISTEN_BACKLOG = 5\nLOGGING_LEVEL = INFO\n",
			map[string]string{"SERVER_PORT": "12345", "SERVER_IP": "server", "SERVER_LISTEN_BACKLOG": "5", "LOGGING_LEVEL": "INFO"}},
		{"CommentsAndBlanks", "# a comment\n; another\n\n[DEFAULT]\n  # indented comment\nA=1\n\n", map[string]string{"A": "1"}},
		{"OtherSectionsApart", "[DEFAULT]\nA = 1\n[other]\nA = 2\nB = 3\n[DEFAULT]\nC = 4\n", map[string]string{"A": "1", "C": "4", "[other] A": "2", "[other] B": "3"}},
		{"LowercaseSectionIsAnother", "[default]\nA = 1\n", map[string]string{"[default] A": "1"}},
		{"KeysBeforeAnySection", "A = 1\n[x]\nB = 2\n", map[string]string{"A": "1", "[x] B": "2"}},
		{"KeysUppercased", "[DEFAULT]\nserver_port = 1\n", map[string]string{"SERVER_PORT": "1"}},
		{"ColonSeparator", "[DEFAULT]\nA: 1\n", map[string]string{"A": "1"}},
		{"EqualsInValue", "[DEFAULT]\nA = b=c\n", map[string]string{"A": "b=c"}},
		{"EmptyValue", "[DEFAULT]\nA =\n", map[string]string{"A": ""}},
		{"Spaces", "  [ DEFAULT ]  \n   A   =   x y   \n", map[string]string{"A": "x y"}},
		{"CRLF", "[DEFAULT]\r\nA = 1\r\nB = 2\r\n", map[string]string{"A": "1", "B": "2"}},
		{"Empty", "", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.ini")
			testutil.WriteFile(t, path, tt.in)
			got, err := config.ReadINI(path)
			if err != nil {
				t.Fatalf("ReadINI: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ReadINI = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReadINI_Err(t *testing.T) {
	tests := []struct {
		name, in, line string
	}{
		{"NoEquals", "[DEFAULT]\nA = 1\njust some words\n", ":3:"},
		{"EmptyKey", "[DEFAULT]\n = 1\n", ":2:"},
		{"BadSection", "[DEFAULT\nA = 1\n", ":1:"},
		{"DuplicateKey", "[DEFAULT]\nA = 1\nA = 2\n", ":3: A is set again (first at line 2)"},
		{"DuplicateKeyOtherCase", "[DEFAULT]\nserver_port = 1\n\nSERVER_PORT = 2\n", ":4: SERVER_PORT is set again (first at line 2)"},
		{"DuplicateKeyReopenedSection", "A = 1\n[x]\nB = 2\n[DEFAULT]\nA = 1\n", ":5: A is set again"},
		{"DuplicateKeyOtherSection", "[x]\nB = 2\nB = 3\n", ":3: [x] B is set again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.ini")
			testutil.WriteFile(t, path, tt.in)
			got, err := config.ReadINI(path)
			if err == nil {
				t.Fatalf("ReadINI = %v, nil; want an error", got)
			}
			if !strings.Contains(err.Error(), path+tt.line) {
				t.Fatalf("error %q does not name %s%s", err, path, tt.line)
			}
		})
	}
}

func TestReadINI_Missing(t *testing.T) {
	got, err := config.ReadINI(filepath.Join(t.TempDir(), "config.ini"))
	if err != nil || len(got) != 0 {
		t.Fatalf("ReadINI of a missing file = %v, %v; want no values, no error", got, err)
	}
	if _, err := config.ReadINI(t.TempDir()); err == nil {
		t.Fatal("ReadINI of a directory gave no error")
	}
}

func TestReadYAML(t *testing.T) {
	in := `
server:
  address: "server:12345"
loop:
  amount: 5
  period: "5s"
log:
  level: DEBUG
batch:
  maxAmount: 100
  window: ~
reconnect:
  initial: 100ms
  nested:
    deeper: true
top: plain
`
	want := map[string]string{
		"server.address": "server:12345", "loop.amount": "5", "loop.period": "5s", "log.level": "DEBUG",
		"batch.maxAmount": "100", "batch.window": "", "reconnect.initial": "100ms", "reconnect.nested.deeper": "true",
		"top": "plain",
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, path, in)
	got, err := config.ReadYAML(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadYAML =\n%v\nwant\n%v", got, want)
	}
}

func TestReadYAML_MissingOrEmpty(t *testing.T) {
	got, err := config.ReadYAML(filepath.Join(t.TempDir(), "config.yaml"))
	if err != nil || len(got) != 0 {
		t.Fatalf("missing file: %v, %v; want no values, no error", got, err)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, path, "# nothing\n")
	got, err = config.ReadYAML(path)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty file: %v, %v; want no values, no error", got, err)
	}
}

func TestReadYAML_Err(t *testing.T) {
	for name, in := range map[string]string{
		"BadIndent":   "server:\n  address: x\n bad: y\n",
		"Unclosed":    "server: {address: x\n",
		"TopLevelSeq": "- a\n- b\n",
		"Tab":         "server:\n\taddress: x\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			testutil.WriteFile(t, path, in)
			got, err := config.ReadYAML(path)
			if err == nil {
				t.Fatalf("ReadYAML = %v, nil; want an error", got)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
}

// cliKey maps an agency key to its environment variable, as cmd/client
// does: log.level -> CLI_LOG_LEVEL.
func cliKey(k string) string {
	return "CLI_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(k))
}

func TestValues_EnvOverrides(t *testing.T) {
	file := map[string]string{"server.address": "server:12345", "loop.amount": "5", "log.level": "INFO", "id": "1"}
	v := config.New(file, cliKey, testutil.EnvLookup(map[string]string{
		"CLI_SERVER_ADDRESS": "  127.0.0.1:9999 ",
		"CLI_LOOP_AMOUNT":    "7",
		"SERVER_ADDRESS":     "ignored:1", // not the key's variable
	}))
	if got := v.String("server.address", "def"); got != "127.0.0.1:9999" {
		t.Errorf("String(server.address) = %q, want the trimmed environment value", got)
	}
	if got := v.Int("loop.amount", 0, 0, 100); got != 7 {
		t.Errorf("Int(loop.amount) = %d, want 7 from the environment", got)
	}
	if got := v.Level("log.level", slog.LevelError); got != slog.LevelInfo {
		t.Errorf("Level(log.level) = %v, want INFO from the file", got)
	}
	if got := v.Int("id", 0, 1, 10); got != 1 {
		t.Errorf("Int(id) = %d, want 1 from the file", got)
	}
	if got := v.String("missing", "def"); got != "def" {
		t.Errorf("String(missing) = %q, want the default", got)
	}
	if s, ok := v.Raw("missing"); ok || s != "" {
		t.Errorf("Raw(missing) = %q, %v", s, ok)
	}
	if err := v.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}

	// A nil file is fine: everything can come from the environment.
	v = config.New(nil, func(k string) string { return k }, testutil.EnvLookup(map[string]string{"AGENCIES": "3"}))
	if got := v.Int("AGENCIES", 5, 1, 100); got != 3 || v.Err() != nil {
		t.Errorf("Int(AGENCIES) = %d, %v; want 3", got, v.Err())
	}
}

func TestValues_Getters(t *testing.T) {
	file := map[string]string{
		"int": "42", "int_neg": "-3", "int_empty": "",
		"dur": "500ms", "dur_zero": "0", "dur_min": "1m30s",
		"bool_t": "true", "bool_1": "1", "bool_f": "FALSE", "bool_on": "On", "bool_off": "off", "bool_no": "no",
		"lvl_debug": "debug", "lvl_warning": "WARNING", "lvl_critical": "Critical",
	}
	v := config.New(file, strings.ToUpper, testutil.EnvLookup(nil))
	if got := v.Int("int", 0, 0, 100); got != 42 {
		t.Errorf("Int(int) = %d", got)
	}
	if got := v.Int("int_neg", 0, -5, 5); got != -3 {
		t.Errorf("Int(int_neg) = %d", got)
	}
	if got := v.Int("int_empty", 9, 0, 100); got != 9 {
		t.Errorf("Int(int_empty) = %d, want the default", got)
	}
	if got := v.Int("absent", 9, 0, 100); got != 9 {
		t.Errorf("Int(absent) = %d, want the default", got)
	}
	for key, want := range map[string]time.Duration{"dur": 500 * time.Millisecond, "dur_zero": 0, "dur_min": 90 * time.Second, "absent": time.Hour} {
		if got := v.Duration(key, time.Hour); got != want {
			t.Errorf("Duration(%s) = %v, want %v", key, got, want)
		}
	}
	for key, want := range map[string]bool{"bool_t": true, "bool_1": true, "bool_f": false, "bool_on": true, "bool_off": false, "bool_no": false} {
		if got := v.Bool(key, !want); got != want {
			t.Errorf("Bool(%s) = %v, want %v", key, got, want)
		}
	}
	for key, want := range map[string]slog.Level{"lvl_debug": slog.LevelDebug, "lvl_warning": slog.LevelWarn, "lvl_critical": slog.LevelError + 4} {
		if got := v.Level(key, slog.LevelInfo); got != want {
			t.Errorf("Level(%s) = %v, want %v", key, got, want)
		}
	}
	if err := v.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

// TestValues_Err checks that every bad value is reported, each naming its
// key and environment variable, and that each getter returns its default.
func TestValues_Err(t *testing.T) {
	file := map[string]string{
		"loop.amount":    "many",
		"loop.period":    "5",
		"log.level":      "verbose",
		"batch.window":   "-1s",
		"storage.nosync": "maybe",
		"agencies":       "0",
		"port":           "70000",
		"ok":             "3",
	}
	v := config.New(file, cliKey, testutil.EnvLookup(map[string]string{"CLI_BATCH_MAXAMOUNT": "1.5"}))
	if got := v.Int("loop.amount", 1, 0, 1000); got != 1 {
		t.Errorf("bad Int gave %d, want the default", got)
	}
	if got := v.Duration("loop.period", time.Second); got != time.Second {
		t.Errorf("bad Duration gave %v, want the default", got)
	}
	if got := v.Level("log.level", slog.LevelInfo); got != slog.LevelInfo {
		t.Errorf("bad Level gave %v, want the default", got)
	}
	if got := v.Duration("batch.window", time.Minute); got != time.Minute {
		t.Errorf("negative Duration gave %v, want the default", got)
	}
	if got := v.Bool("storage.nosync", false); got {
		t.Errorf("bad Bool gave true, want the default")
	}
	if got := v.Int("agencies", 5, 1, 100); got != 5 {
		t.Errorf("Int below range gave %d", got)
	}
	if got := v.Int("port", 12345, 1, 65535); got != 12345 {
		t.Errorf("Int above range gave %d", got)
	}
	if got := v.Int("batch.maxAmount", 100, 1, 1000); got != 100 {
		t.Errorf("bad environment Int gave %d", got)
	}
	if got := v.Int("ok", 0, 0, 10); got != 3 {
		t.Errorf("good Int gave %d", got)
	}
	err := v.Err()
	if err == nil {
		t.Fatal("Err() = nil after 8 bad values")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 8 {
		t.Fatalf("Err() has %d lines, want 8:\n%v", len(lines), err)
	}
	for _, want := range []string{
		`loop.amount (CLI_LOOP_AMOUNT): "many"`, `loop.period (CLI_LOOP_PERIOD): "5"`, `log.level (CLI_LOG_LEVEL)`,
		`batch.window (CLI_BATCH_WINDOW): "-1s"`, `storage.nosync (CLI_STORAGE_NOSYNC): "maybe"`,
		`agencies (CLI_AGENCIES): "0"`, `port (CLI_PORT): "70000"`, `batch.maxAmount (CLI_BATCH_MAXAMOUNT): "1.5"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Err() does not mention %s:\n%v", want, err)
		}
	}
}

func TestValues_Address(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" when refused (the default comes back)
	}{
		{"server:12345", "server:12345"},
		{"127.0.0.1:1", "127.0.0.1:1"},
		{"lottery.example:65535", "lottery.example:65535"},
		{"[::1]:12345", "[::1]:12345"},
		{"  server:12345 ", "server:12345"},
		{"nohost", ""},
		{":99999", ""},
		{":12345", ""},
		{"server:", ""},
		{"server:0", ""},
		{"server:65536", ""},
		{"server:99999", ""},
		{"server:-1", ""},
		{"server:+80", ""},
		{"server:http", ""},
		{"server:12345:1", ""},
		{"::1:12345", ""},
		{"a:1,b:2", ""},
		{"my server:1", ""},
		{"http://server:1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v := config.New(nil, cliKey, testutil.EnvLookup(map[string]string{"CLI_SERVER_ADDRESS": tt.in}))
			got := v.Address("server.address", "def:1")
			err := v.Err()
			if tt.want == "" {
				if err == nil || got != "def:1" || !strings.Contains(err.Error(), "server.address (CLI_SERVER_ADDRESS)") {
					t.Fatalf("Address(%q) = %q, %v; want the default and an error naming the key", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Address(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestValues_Warnings checks what warns: a blank value that falls back to
// a default (not one whose blank is the default), and a key of the file no
// getter asked for, with a hint when only its case is wrong.
func TestValues_Warnings(t *testing.T) {
	file := map[string]string{
		"loop.amount": "", "log.level": "", "loop.period": "", "tls.enabled": "", "data.file": "",
		"server.ip": "", "server.address": "server:1", "batch.maxamount": "5", "sever.address": "x:1",
		"[other] A": "1",
	}
	v := config.New(file, cliKey, testutil.EnvLookup(map[string]string{"CLI_BATCH_WINDOW": " "}))
	v.Int("loop.amount", 0, 0, 10)
	v.Level("log.level", slog.LevelInfo)
	v.Duration("loop.period", 5*time.Second)
	v.Bool("tls.enabled", true)
	v.String("data.file", "./.data/agency-1.csv")
	v.String("server.ip", "") // blank is its default: no warning
	v.Address("server.address", "server:12345")
	v.Int("batch.maxAmount", 100, 1, 1000)
	v.Int("batch.window", 16, 1, 100)
	v.String("absent", "x")
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range v.Warnings() {
		got = append(got, w.String())
	}
	want := []string{
		"loop.amount (CLI_LOOP_AMOUNT): blank in the file: the default 0 is used",
		"log.level (CLI_LOG_LEVEL): blank in the file: the default INFO is used",
		"loop.period (CLI_LOOP_PERIOD): blank in the file: the default 5s is used",
		"tls.enabled (CLI_TLS_ENABLED): blank in the file: the default on is used",
		"data.file (CLI_DATA_FILE): blank in the file: the default ./.data/agency-1.csv is used",
		"batch.window (CLI_BATCH_WINDOW): blank in CLI_BATCH_WINDOW: the default 16 is used",
		"[other] A: outside [DEFAULT], the only section read: ignored",
		"batch.maxamount: unknown key: ignored (did you mean batch.maxAmount?)",
		"sever.address: unknown key: ignored",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Warnings() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The course's config.ini: SERVER_IP blank means all addresses.
	v = config.New(map[string]string{"SERVER_IP": "", "SERVER_PORT": "12345"}, func(k string) string { return k }, testutil.EnvLookup(nil))
	v.String("SERVER_IP", "")
	v.Int("SERVER_PORT", 12345, 1, 65535)
	if w := v.Warnings(); len(w) != 0 {
		t.Fatalf("Warnings() = %v for the course's config.ini", w)
	}
}
