package main

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"lottery"
	"lottery/internal/testutil"
	"lottery/protocol"
)

func lookupOf(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

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
			c, err := loadConfig("config.yaml", lookupOf(tt.env))
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
	if code := run(&out, lookupOf(map[string]string{"CLI_ID": "2"})); code != exitConfig {
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
	if code := run(&out, lookupOf(map[string]string{"CLI_ID": "2", "CLI_TLS": "off", "CLI_SERVER_ADDRESS": ln.Addr().String()})); code != exitFailed {
		t.Fatalf("exit %d, want %d:\n%s", code, exitFailed, out.String())
	}
	if l, ok := testutil.FindOne(testutil.Lines(out.String()), "tls", ""); !ok || l.Level != "WARNING" || !strings.Contains(l.Raw, "open to anyone") {
		t.Fatalf("no WARNING tls line:\n%s", out.String())
	}
}
