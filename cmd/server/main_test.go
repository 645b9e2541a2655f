package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"lottery/internal/testutil"
)

// TestLoadConfig checks the TLS settings and the limits' floors.
func TestLoadConfig(t *testing.T) {
	t.Chdir(t.TempDir()) // no config.ini: defaults and the environment
	tests := []struct {
		name string
		env  map[string]string
		err  string
		want func(Config) bool
	}{
		{"OK/SecureDefaults", nil, "", func(c Config) bool {
			return c.TLS.Enabled && c.TLS.Cert == "./.pki/central.crt" && c.TLS.Key == "./.pki/central.key" &&
				c.TLS.ClientCA == "./.pki/ca.crt" && c.TLS.CRL == "" && c.Central.MaxUnauthenticated == 256
		}},
		{"OK/TLSOff", map[string]string{"TLS": "off"}, "", func(c Config) bool { return !c.TLS.Enabled }},
		{"OK/Files", map[string]string{"TLS_CERT": "/a", "TLS_KEY": "/b", "TLS_CLIENT_CA": "/c", "TLS_CRL": "/d"}, "", func(c Config) bool {
			return c.TLS.Cert == "/a" && c.TLS.Key == "/b" && c.TLS.ClientCA == "/c" && c.TLS.CRL == "/d"
		}},
		{"OK/SmallConnectionLimit", map[string]string{"MAX_CONNECTIONS": "10"}, "", func(c Config) bool { return c.Central.MaxUnauthenticated == 10 }},
		{"OK/IdleFloor", map[string]string{"IDLE_TIMEOUT": "100ms"}, "", func(c Config) bool { return c.Central.IdleTimeout == 100*time.Millisecond }},
		{"ErrIdleBelowFloor", map[string]string{"IDLE_TIMEOUT": "1ns"}, "IDLE_TIMEOUT", nil},
		{"ErrTLSValue", map[string]string{"TLS": "maybe"}, "TLS", nil},
		{"ErrUnauthenticatedAboveTotal", map[string]string{"MAX_CONNECTIONS": "10", "MAX_UNAUTHENTICATED": "11"}, "MAX_UNAUTHENTICATED", nil},
		{"ErrHandshakeTimeout", map[string]string{"HANDSHAKE_TIMEOUT": "0s"}, "HANDSHAKE_TIMEOUT", nil},
		{"OK/DrawNumberCourse", nil, "", func(c Config) bool { return c.DrawNumber == "course" }},
		{"OK/DrawNumberCommitted", map[string]string{"DRAW_NUMBER": "committed"}, "", func(c Config) bool { return c.DrawNumber == "committed" }},
		{"ErrDrawNumber", map[string]string{"DRAW_NUMBER": "7575"}, "DRAW_NUMBER", nil},
		{"OK/BlankLogKeyIsTheDefault", map[string]string{"LOG_KEY": ""}, "", func(c Config) bool {
			l, err := c.loadLog() // ./.pki/log.key is not there: no audit log, no error
			return c.LogKey == "./.pki/log.key" && l == nil && err == nil
		}},
		{"OK/ExplicitLogKeyMustExist", map[string]string{"LOG_KEY": "/nowhere/log.key"}, "", func(c Config) bool {
			_, err := c.loadLog()
			return err != nil
		}},
		{"ErrDrawNumberCluster", map[string]string{"DRAW_NUMBER": "committed", "NODE_NAME": "server1",
			"CLUSTER_NODES": "server1=127.0.0.1:12345,server2=127.0.0.1:2,server3=127.0.0.1:3"}, "replicated", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig("config.ini", testutil.EnvLookup(tt.env))
			switch {
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("err = %v, want one naming %s", err, tt.err)
			case tt.err == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.want != nil && !tt.want(c):
				t.Fatalf("config %+v", c)
			}
		})
	}
}

// TestRun_TLSMaterial: secure by default — without the files the central
// stops with exit 2 and one config fail line; TLS=off starts with a WARNING.
func TestRun_TLSMaterial(t *testing.T) {
	t.Chdir(t.TempDir())
	var out bytes.Buffer
	if code := run(&out, testutil.EnvLookup(map[string]string{"SERVER_PORT": "1"})); code != exitConfig {
		t.Fatalf("exit %d, want %d:\n%s", code, exitConfig, out.String())
	}
	l, ok := testutil.FindOne(testutil.Lines(out.String()), "config", "fail")
	if !ok || !strings.Contains(l.Get("error"), "TLS_CERT") {
		t.Fatalf("no config fail line naming TLS_CERT:\n%s", out.String())
	}

	out.Reset()
	// TLS=off, and a port that cannot be listened on, so run returns.
	code := run(&out, testutil.EnvLookup(map[string]string{"TLS": "off", "SERVER_IP": "256.0.0.1"}))
	if code != exitFailed {
		t.Fatalf("exit %d, want %d:\n%s", code, exitFailed, out.String())
	}
	if l, ok := testutil.FindOne(testutil.Lines(out.String()), "tls", ""); !ok || l.Level != "WARNING" || !strings.Contains(l.Raw, "open to anyone") {
		t.Fatalf("no WARNING tls line:\n%s", out.String())
	}
}
