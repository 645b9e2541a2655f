package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
)

// pageFiles holds the status page: one HTML file with its script and style
// inline, so the binary (FROM scratch) serves it with nothing beside it.
//
//go:embed page/index.html
var pageFiles embed.FS

// statusPage is the page's bytes; pagePolicy the Content-Security-Policy
// it is served with.
var statusPage, pagePolicy = mustPage()

func mustPage() ([]byte, string) {
	b, err := pageFiles.ReadFile("page/index.html")
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	csp, err := policyFor(b)
	if err != nil {
		panic(err) // TestPage_Policy fails first
	}
	return b, csp
}

// policyFor returns the Content-Security-Policy of a page with exactly one
// inline <script> and one inline <style>: those two, by their SHA-256 (so
// nothing injected could run or restyle the page), fetches to the page's
// own origin, images only as data: URIs (the favicon), and nothing else —
// no frames, no forms, no base URI, no plugin.
func policyFor(page []byte) (string, error) {
	script, err := inline(page, "script")
	if err != nil {
		return "", err
	}
	style, err := inline(page, "style")
	if err != nil {
		return "", err
	}
	return "default-src 'none'; script-src " + hashSource(script) + "; style-src " + hashSource(style) +
		"; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", nil
}

// inline returns the text of the one <tag>…</tag> element in page, as the
// browser hashes it (the page has LF line endings, which HTML parsing
// keeps).
func inline(page []byte, tag string) ([]byte, error) {
	open, end := []byte("<"+tag+">"), []byte("</"+tag+">")
	if bytes.Count(page, open) != 1 || bytes.Count(page, end) != 1 {
		return nil, fmt.Errorf("admin: the status page needs exactly one inline <%s>", tag)
	}
	_, rest, _ := bytes.Cut(page, open)
	text, _, _ := bytes.Cut(rest, end)
	if bytes.ContainsRune(text, '\r') {
		return nil, fmt.Errorf("admin: the status page's <%s> has CR line endings, which the browser's hash drops", tag)
	}
	return text, nil
}

// hashSource is a CSP hash-source for text.
func hashSource(text []byte) string {
	sum := sha256.Sum256(text)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}
