package main

import (
	"bytes"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"lottery"
	"lottery/internal/testutil"
	"lottery/protocol"
)

// TestLoadConfig_TLS checks the agency's TLS settings: on by default, with
// the agency's own files; CLI_TLS=off; each file overridable.
func TestLoadConfig_TLS(t *testing.T) {
	t.Chdir(t.TempDir())
	tests := []struct {
		name string
		env  map[string]string
		want TLSConfig
		err  string
	}{
		{"OK/SecureDefaults", map[string]string{"CLI_ID": "3"}, TLSConfig{Enabled: true, Cert: "./.pki/agency-3.crt", Key: "./.pki/agency-3.key", CA: "./.pki/ca.crt"}, ""},
		{"OK/Off", map[string]string{"CLI_ID": "3", "CLI_TLS": "off"}, TLSConfig{Cert: "./.pki/agency-3.crt", Key: "./.pki/agency-3.key", CA: "./.pki/ca.crt"}, ""},
		{"OK/Files", map[string]string{"CLI_ID": "1", "CLI_TLS_CERT": "/a", "CLI_TLS_KEY": "/b", "CLI_TLS_CA": "/c"}, TLSConfig{Enabled: true, Cert: "/a", Key: "/b", CA: "/c"}, ""},
		{"ErrValue", map[string]string{"CLI_ID": "1", "CLI_TLS": "perhaps"}, TLSConfig{}, "CLI_TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig("config.yaml", testutil.EnvLookup(tt.env))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one naming %s", err, tt.err)
				}
				return
			}
			if err != nil || c.TLS != tt.want {
				t.Fatalf("TLS = %+v, %v; want %+v", c.TLS, err, tt.want)
			}
		})
	}
}

// TestRun_TLSMaterial: without its files the agency stops with exit 2 and
// one config fail line; with CLI_TLS=off it warns at start.
func TestRun_TLSMaterial(t *testing.T) {
	t.Chdir(t.TempDir())
	var out bytes.Buffer
	if code := run(&out, testutil.EnvLookup(map[string]string{"CLI_ID": "2"})); code != exitConfig {
		t.Fatalf("exit %d, want %d:\n%s", code, exitConfig, out.String())
	}
	if l, ok := testutil.FindOne(testutil.Lines(out.String()), "config", "fail"); !ok || !strings.Contains(l.Get("error"), "CLI_TLS_CERT") {
		t.Fatalf("no config fail line naming CLI_TLS_CERT:\n%s", out.String())
	}
	out.Reset()
	// CLI_TLS=off against a central that refuses the agency: it warns,
	// then stops.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Read(make([]byte, 64))
		frame, _ := protocol.AppendFrame(nil, protocol.Error{Code: lottery.EUnknownAgency, Message: "no"})
		conn.Write(frame)
	}()
	if code := run(&out, testutil.EnvLookup(map[string]string{"CLI_ID": "2", "CLI_TLS": "off", "CLI_SERVER_ADDRESS": ln.Addr().String()})); code != exitFailed {
		t.Fatalf("exit %d, want %d:\n%s", code, exitFailed, out.String())
	}
	if l, ok := testutil.FindOne(testutil.Lines(out.String()), "tls", ""); !ok || l.Level != "WARNING" || !strings.Contains(l.Raw, "open to anyone") {
		t.Fatalf("no WARNING tls line:\n%s", out.String())
	}
}

// TestLoadConfig_ServerAddress: a server address that cannot be dialled is
// a configuration error naming the key, not connection attempts forever. A
// replicated central is a comma-separated list of its nodes, each checked
// as a single address is, none empty, none twice.
func TestLoadConfig_ServerAddress(t *testing.T) {
	t.Chdir(t.TempDir())
	tests := []struct {
		addr string
		want string // the address kept, or "" for an error naming the key
		err  string // part of that error
	}{
		{"server:12345", "server:12345", ""},
		{"127.0.0.1:1", "127.0.0.1:1", ""},
		{"[::1]:65535", "[::1]:65535", ""},
		{"nohost", "", "missing port"},
		{":99999", "", "port"},
		{":12345", "", "no host"},
		{"server:0", "", "port"},
		{"server:65536", "", "port"},
		{"server:port", "", "port"},
		{"server1:12345,server2:12345,server3:12345", "server1:12345,server2:12345,server3:12345", ""},
		{"a:1,b:2", "a:1,b:2", ""},
		{" a:1 , b:2 ", "a:1,b:2", ""},
		{"a:1,[::1]:2,10.0.0.3:3,d:4,e:5", "a:1,[::1]:2,10.0.0.3:3,d:4,e:5", ""},
		{"a:1,,b:2", "", "address 2 of 3 is empty"},
		{"a:1,b:2,", "", "address 3 of 3 is empty"},
		{",a:1", "", "address 1 of 2 is empty"},
		{",", "", "empty"},
		{"a:1,b:2,a:1", "", `"a:1" is listed twice`},
		{"a:1,b", "", `"b" is not host:port`},
		{"a:1,b:0", "", `"b:0" is not host:port`},
		{"a:1;b:2", "", "port"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			c, err := loadConfig("config.yaml", testutil.EnvLookup(map[string]string{"CLI_ID": "1", "CLI_SERVER_ADDRESS": tt.addr}))
			if tt.want != "" {
				if err != nil || c.Agency.ServerAddress != tt.want {
					t.Fatalf("address %q: %q, %v; want %q", tt.addr, c.Agency.ServerAddress, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "server.address (CLI_SERVER_ADDRESS)") || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("address %q: err = %v, want one naming server.address (CLI_SERVER_ADDRESS) and saying %q", tt.addr, err, tt.err)
			}
		})
	}
}

// TestRun_ServerAddressList: the config line logs the whole list, and the
// agency dials its first node.
func TestRun_ServerAddressList(t *testing.T) {
	t.Chdir(t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // a central that refuses the agency, so that run returns
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Read(make([]byte, 64))
		conn.Write(testutil.Frame(t, protocol.Error{Code: lottery.EUnknownAgency, Message: "no"}))
	}()
	list := ln.Addr().String() + ",127.0.0.1:1,localhost:2"
	var out bytes.Buffer
	if code := run(&out, testutil.EnvLookup(map[string]string{"CLI_ID": "1", "CLI_TLS": "off", "CLI_SERVER_ADDRESS": list})); code != exitFailed {
		t.Fatalf("exit %d, want %d:\n%s", code, exitFailed, out.String())
	}
	lines := testutil.Lines(out.String())
	if l, ok := testutil.FindOne(lines, "config", "success"); !ok || l.Get("server_address") != list {
		t.Errorf("config line %q, want server_address: %s", l.Raw, list)
	}
	if l, ok := testutil.FindOne(lines, "conectar", "fail"); !ok || l.Get("server_address") != ln.Addr().String() {
		t.Errorf("conectar fail line %q, want server_address: %s", l.Raw, ln.Addr())
	}
}

// TestLoadConfig_DataFile: only the default agency file may be absent; one
// named explicitly, in the file or the environment, must be there.
func TestLoadConfig_DataFile(t *testing.T) {
	t.Chdir(t.TempDir())
	testutil.WriteFile(t, "bets.csv", "Ana,Díaz,1,2000-01-01,5\n")
	if err := os.Mkdir("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want string // the data file, or "" for an error naming data.file
	}{
		{"OK/DefaultAbsent", "", nil, "./.data/agency-1.csv"},
		{"OK/Explicit", "", map[string]string{"CLI_DATA_FILE": "bets.csv"}, "bets.csv"},
		{"OK/ExplicitInFile", "data:\n  file: bets.csv\n", nil, "bets.csv"},
		{"OK/BlankIsDefault", "", map[string]string{"CLI_DATA_FILE": ""}, "./.data/agency-1.csv"},
		{"ErrExplicitAbsent", "", map[string]string{"CLI_DATA_FILE": "nope.csv"}, ""},
		{"ErrExplicitAbsentInFile", "data:\n  file: ./.data/agency-9.csv\n", nil, ""},
		{"ErrDirectory", "", map[string]string{"CLI_DATA_FILE": "dir"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.WriteFile(t, "config.yaml", tt.yaml)
			env := map[string]string{"CLI_ID": "1"}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := loadConfig("config.yaml", testutil.EnvLookup(env))
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), "data.file (CLI_DATA_FILE)") {
					t.Fatalf("err = %v, want one naming data.file (CLI_DATA_FILE)", err)
				}
				return
			}
			if err != nil || c.Agency.DataFile != tt.want {
				t.Fatalf("data file %q, %v; want %q", c.Agency.DataFile, err, tt.want)
			}
		})
	}
}

// TestLoadConfig_Warnings: the repository's config.yaml reads without a
// warning; a blank value, an unknown key and a key in the wrong case each
// warn, naming the key.
func TestLoadConfig_Warnings(t *testing.T) {
	repo, err := os.ReadFile("../../client/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	tests := []struct {
		name string
		yaml string
		want []string // the keys warned about, in order
	}{
		{"OK/Repository", string(repo), nil},
		{"Blank", "loop:\n  amount:\n  period: ''\n", []string{"loop.amount", "loop.period"}},
		{"Unknown", "server:\n  adress: x:1\nloops: 3\n", []string{"loops", "server.adress"}},
		{"WrongCase", "batch:\n  maxamount: 5\n", []string{"batch.maxamount"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.WriteFile(t, "config.yaml", tt.yaml)
			c, err := loadConfig("config.yaml", testutil.EnvLookup(map[string]string{"CLI_ID": "1"}))
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, w := range c.Warnings {
				keys = append(keys, w.Key)
			}
			if !slices.Equal(keys, tt.want) {
				t.Fatalf("warnings %v, want about %v", c.Warnings, tt.want)
			}
		})
	}
}

// TestRun_ConfigFails: each bad setting stops the agency with exit 2 and
// one config fail line naming its key, before it connects anywhere.
func TestRun_ConfigFails(t *testing.T) {
	t.Chdir(t.TempDir())
	for name, tt := range map[string]struct {
		env map[string]string
		key string
	}{
		"NoPort":        {map[string]string{"CLI_SERVER_ADDRESS": "nohost"}, "CLI_SERVER_ADDRESS"},
		"PortTooLarge":  {map[string]string{"CLI_SERVER_ADDRESS": ":99999"}, "CLI_SERVER_ADDRESS"},
		"DataFileGone":  {map[string]string{"CLI_DATA_FILE": "./missing.csv"}, "CLI_DATA_FILE"},
		"DataFileIsDir": {map[string]string{"CLI_DATA_FILE": "."}, "CLI_DATA_FILE"},
		"EmptyInList":   {map[string]string{"CLI_SERVER_ADDRESS": "a:1,,b:2"}, "CLI_SERVER_ADDRESS"},
		"TwiceInList":   {map[string]string{"CLI_SERVER_ADDRESS": "a:1,b:2,a:1"}, "CLI_SERVER_ADDRESS"},
		"BadInList":     {map[string]string{"CLI_SERVER_ADDRESS": "a:1,b:99999"}, "CLI_SERVER_ADDRESS"},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"CLI_ID": "1", "CLI_TLS": "off"}
			for k, v := range tt.env {
				env[k] = v
			}
			var out bytes.Buffer
			if code := run(&out, testutil.EnvLookup(env)); code != exitConfig {
				t.Fatalf("exit %d, want %d:\n%s", code, exitConfig, out.String())
			}
			lines := testutil.Lines(out.String())
			if l, ok := testutil.FindOne(lines, "config", "fail"); !ok || len(lines) != 1 || !strings.Contains(l.Get("error"), tt.key) {
				t.Fatalf("want one config fail line naming %s:\n%s", tt.key, out.String())
			}
		})
	}
}

// TestRun_ConfigWarnings: a warning is a WARNING config line naming the
// key, after the config line, and the agency goes on.
func TestRun_ConfigWarnings(t *testing.T) {
	t.Chdir(t.TempDir())
	testutil.WriteFile(t, "config.yaml", "loop:\n  amount:\nbatch:\n  maxamount: 5\n")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // a central that refuses the agency, so that run returns
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Read(make([]byte, 64))
		conn.Write(testutil.Frame(t, protocol.Error{Code: lottery.EUnknownAgency, Message: "no"}))
	}()
	var out bytes.Buffer
	if code := run(&out, testutil.EnvLookup(map[string]string{"CLI_ID": "1", "CLI_TLS": "off", "CLI_SERVER_ADDRESS": ln.Addr().String()})); code != exitFailed {
		t.Fatalf("exit %d, want %d:\n%s", code, exitFailed, out.String())
	}
	lines := testutil.Lines(out.String())
	warned := map[string]testutil.Line{}
	for _, l := range testutil.Find(lines, "config", "in_progress") {
		warned[l.Get("key")] = l
	}
	if l := warned["loop.amount"]; l.Level != "WARNING" || l.Get("env") != "CLI_LOOP_AMOUNT" || !strings.Contains(l.Get("warning"), "blank") {
		t.Errorf("no WARNING about the blank loop.amount:\n%s", out.String())
	}
	if l := warned["batch.maxamount"]; l.Level != "WARNING" || !strings.Contains(l.Get("warning"), "batch.maxAmount") {
		t.Errorf("no WARNING about the unknown batch.maxamount:\n%s", out.String())
	}
	if len(lines) == 0 || lines[0].Action != "config" || lines[0].Result != "success" {
		t.Errorf("the first line is not the config success line:\n%s", out.String())
	}
}

// TestDispatch_Help: -h and --help print the usage, with every setting, on
// stdout and exit 0 without starting the agency; anything else is a usage
// error.
func TestDispatch_Help(t *testing.T) {
	t.Chdir(t.TempDir())
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"-h"}, exitOK},
		{[]string{"--help"}, exitOK},
		{[]string{"-help"}, exitOK},
		{[]string{"-x"}, exitConfig},
		{[]string{"extra"}, exitConfig},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			// CLI_ID set: were the agency started, it would try to connect.
			code := dispatch(tt.args, &stdout, &stderr, testutil.EnvLookup(map[string]string{"CLI_ID": "1", "CLI_TLS": "off", "CLI_SERVER_ADDRESS": "127.0.0.1:1"}))
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
			if tt.code != exitOK {
				if !strings.Contains(stderr.String(), "usage: client") || stdout.Len() > 0 {
					t.Fatalf("stdout %q, stderr %q; want the usage on stderr", stdout.String(), stderr.String())
				}
				return
			}
			if stderr.Len() > 0 || !strings.HasPrefix(stdout.String(), "usage: client") {
				t.Fatalf("stdout %q, stderr %q; want the usage on stdout", stdout.String(), stderr.String())
			}
			for _, key := range []string{"CLI_ID", "CLI_SERVER_ADDRESS", "CLI_LOOP_AMOUNT", "CLI_LOOP_PERIOD", "CLI_LOG_LEVEL",
				"CLI_BATCH_MAXAMOUNT", "CLI_BATCH_WINDOW", "CLI_RECONNECT_INITIAL", "CLI_RECONNECT_MAX", "CLI_TIMEOUT_REPLY",
				"CLI_TIMEOUT_WRITE", "CLI_DATA_FILE", "CLI_TLS", "CLI_TLS_CERT", "CLI_TLS_KEY", "CLI_TLS_CA", "NOMBRE"} {
				if !strings.Contains(stdout.String(), key) {
					t.Errorf("the usage does not list %s", key)
				}
			}
		})
	}
}

// TestLoadConfig_AuditKey: the default log key may be absent (nothing is
// checked), and so may a blank one, which falls back to the default; a key
// named explicitly must be there.
func TestLoadConfig_AuditKey(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, tt := range []struct {
		name   string
		env    map[string]string
		failed bool
	}{
		{"DefaultAbsent", map[string]string{"CLI_ID": "1"}, false},
		{"BlankIsTheDefault", map[string]string{"CLI_ID": "1", "CLI_AUDIT_KEY": ""}, false},
		{"ExplicitMissing", map[string]string{"CLI_ID": "1", "CLI_AUDIT_KEY": "/nowhere/log.pub"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig("config.yaml", testutil.EnvLookup(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			key, on, err := c.Audit.load()
			if (err != nil) != tt.failed || on || key != nil {
				t.Fatalf("load: %v, %v, %v; want an error: %v", key, on, err, tt.failed)
			}
		})
	}
}
