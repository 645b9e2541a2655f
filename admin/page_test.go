package admin

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestPage_Policy: the embedded page has the one inline script and style
// its policy hashes, and loads nothing from anywhere else.
func TestPage_Policy(t *testing.T) {
	if _, err := policyFor(statusPage); err != nil {
		t.Fatal(err)
	}
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import|url\(\s*["']?https?:`)
	if m := external.Find(statusPage); m != nil {
		t.Errorf("the page loads something from elsewhere: %q", m)
	}
	for _, attr := range []string{" style=", " onclick=", " onload=", "javascript:"} {
		if bytes.Contains(statusPage, []byte(attr)) {
			t.Errorf("the page has %q, which its policy forbids", attr)
		}
	}
	// The elements the browser test and operators' scripts read.
	for _, id := range []string{"phase", "agencies", "total-bets", "chart", "store-size", "fsync", "nodes", "checkpoint", "audit", "cluster", "prev", "next", "page"} {
		if !bytes.Contains(statusPage, []byte(`id="`+id+`"`)) {
			t.Errorf("the page has no #%s", id)
		}
	}
}

func TestPolicyFor(t *testing.T) {
	tests := []struct {
		name string
		page string
		err  bool
	}{
		{"OK", "<style>a{}</style><script>1</script>", false},
		{"ErrNoScript", "<style>a{}</style>", true},
		{"ErrNoStyle", "<script>1</script>", true},
		{"ErrTwoScripts", "<style></style><script>1</script><script>2</script>", true},
		{"ErrCR", "<style>a{}\r\n</style><script>1</script>", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csp, err := policyFor([]byte(tt.page))
			if (err != nil) != tt.err {
				t.Fatalf("policyFor: %q, %v", csp, err)
			}
			if err == nil && !strings.Contains(csp, hashSource([]byte("1"))) {
				t.Errorf("policy %q lacks the script's hash", csp)
			}
		})
	}
	// The hash of "1", as a browser computes it (sha256, base64).
	if got := hashSource([]byte("1")); got != "'sha256-a4ayc/80/OGda4BO/1o/V0etpOqiLx1JwB5S3beHW0s='" {
		t.Errorf("hashSource(1) = %s", got)
	}
}
