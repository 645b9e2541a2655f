package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun_Help(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		t.Run("OK"+arg, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			var stdout, stderr bytes.Buffer
			if code := run([]string{arg}, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d, want %d", code, exitOK)
			}
			if !strings.HasPrefix(stdout.String(), "usage: gendata") || !strings.Contains(stdout.String(), "-winners") || stderr.Len() > 0 {
				t.Fatalf("stdout %q, stderr %q; want the usage on stdout", stdout.String(), stderr.String())
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Fatalf("-h wrote %v", entries)
			}
		})
	}
}

func TestRun_ErrUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"UnknownFlag":     {"-nope"},
		"NegativeBets":    {"-bets", "-1"},
		"NegativeWinners": {"-winners", "-1"},
		"NotANumber":      {"-agencies", "five"},
		"ExtraArg":        {"extra"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var stdout, stderr bytes.Buffer
			if code := run(append([]string{"-out", filepath.Join(dir, "out")}, args...), &stdout, &stderr); code != exitUsage {
				t.Fatalf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(stderr.String(), "usage: gendata") {
				t.Errorf("stderr %q: no usage", stderr.String())
			}
			if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
				t.Error("a usage error created the output directory")
			}
		})
	}
}

func TestRun_OK(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"-out", dir, "-agencies", "2", "-bets", "10", "-winners", "1"}
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, f := range []string{"agency-1.csv", "agency-2.csv"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || strings.Count(string(b), "\n") != 10 {
			t.Errorf("%s: %v, %d lines", f, err, strings.Count(string(b), "\n"))
		}
	}
	stdout.Reset()
	if code := run(args, &stdout, &stderr); code != exitOK || strings.Count(stdout.String(), "exists: kept") != 2 {
		t.Errorf("second run: exit %d, %q; want both files kept", code, stdout.String())
	}
}
