package admin_test

import (
	"net"
	"net/url"
	"strconv"
	"testing"

	"lottery/admin"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in      string
		addr    string
		enabled bool
		err     bool
	}{
		{"", admin.DefaultAddress, true, false},
		{"  ", admin.DefaultAddress, true, false},
		{"off", "", false, false},
		{"OFF", "", false, false},
		{" Off ", "", false, false},
		{"127.0.0.1:9090", "127.0.0.1:9090", true, false},
		{"0.0.0.0:9100", "0.0.0.0:9100", true, false},
		{":9090", ":9090", true, false},
		{"[::1]:9090", "[::1]:9090", true, false},
		{"localhost:0", "localhost:0", true, false},
		{"server:65535", "server:65535", true, false},
		{"127.0.0.1", "", false, true},
		{"127.0.0.1:", "", false, true},
		{"127.0.0.1:http", "", false, true},
		{"127.0.0.1:65536", "", false, true},
		{"127.0.0.1:-1", "", false, true},
		{"127.0.0.1:+80", "", false, true},
		{"127.0.0.1:080", "", false, true},
		{"no", "", false, true},
		{"::1:9090", "", false, true},
		{"a b:9090", "", false, true},
		{"http://127.0.0.1:9090", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			addr, enabled, err := admin.ParseAddress(tt.in)
			if (err != nil) != tt.err || addr != tt.addr || enabled != tt.enabled {
				t.Errorf("ParseAddress(%q) = %q, %v, %v; want %q, %v, error %v", tt.in, addr, enabled, err, tt.addr, tt.enabled, tt.err)
			}
		})
	}
}

// FuzzParseAddress: never a panic; an enabled address always splits into
// a host and a port in range, and reads back as itself.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"", "off", "127.0.0.1:9090", ":0", "[::1]:1", "x:65536", "a:b:c", "[::1", "\x00:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, enabled, err := admin.ParseAddress(s)
		if err != nil || !enabled {
			if addr != "" || (err == nil && enabled) {
				t.Fatalf("%q: %q %v %v", s, addr, enabled, err)
			}
			return
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%q gave %q: %v", s, addr, err)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			t.Fatalf("%q gave port %q", s, port)
		}
		again, enabled, err := admin.ParseAddress(addr)
		if again != addr || !enabled || err != nil {
			t.Fatalf("%q gave %q, which reads back as %q %v %v", s, addr, again, enabled, err)
		}
	})
}

func TestParsePage(t *testing.T) {
	tests := []struct {
		query         string
		page, perPage int
	}{
		{"", 0, 0},
		{"page=2&per_page=25", 2, 25},
		{"page=-3", -3, 0},
		{"page=abc&per_page=", 0, 0},
		{"page=1234567890", 0, 0}, // longer than any real page
		{"page=999999999", 999999999, 0},
		{"page=2&page=5", 2, 0}, // the first one
		{"per_page=0x10", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			page, perPage := admin.ParsePage(q)
			if page != tt.page || perPage != tt.perPage {
				t.Errorf("ParsePage(%q) = %d, %d; want %d, %d", tt.query, page, perPage, tt.page, tt.perPage)
			}
		})
	}
}

// FuzzParsePage: any query decodes to numbers that fit the digits allowed
// and that Snapshot brings in range.
func FuzzParsePage(f *testing.F) {
	for _, s := range []string{"page=1&per_page=50", "page=-1", "per_page=999999999", "page=%zz", "page=1;per_page=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		page, perPage := admin.ParsePage(q)
		const limit = 999_999_999
		if page < -limit/10 || page > limit || perPage < -limit/10 || perPage > limit {
			t.Fatalf("%q: page %d per_page %d", raw, page, perPage)
		}
	})
}
