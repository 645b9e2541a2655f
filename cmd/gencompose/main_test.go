package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"lottery/compose"
	"lottery/pki"
)

// pkiFiles lists the files of dir/.pki, nil when there is none.
func pkiFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, pkiDir))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestRun_OK(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "docker-compose-dev.yaml")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run([]string{out, "3"}, &stderr); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := compose.Write(&want, compose.Options{Agencies: 3}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("file:\n%s\nwant:\n%s", got, want.Bytes())
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("left %d files in the directory, want only the output and %s", len(entries), pkiDir)
	}

	// Everything the file mounts is there.
	files := pkiFiles(t, dir)
	for _, f := range []string{pki.CAFile, pki.CAKeyFile, pki.CentralCertFile, pki.CentralKeyFile,
		pki.AgencyCertFile(1), pki.AgencyKeyFile(1), pki.AgencyCertFile(3), pki.AgencyKeyFile(3)} {
		if !slices.Contains(files, f) {
			t.Errorf("%s/%s is missing (have %q)", pkiDir, f, files)
		}
	}

	// The central's user can read its key now: nothing left to do.
	if runtime.GOOS == "linux" {
		if !strings.Contains(stderr.String(), "central.key made readable by uid 10001") {
			t.Errorf("stderr does not say the key was made readable: %s", stderr.String())
		}
		if access, err := compose.ShareCentralKey(filepath.Join(dir, pkiDir)); err != nil || access != compose.Readable {
			t.Errorf("ShareCentralKey after a run = %v, %v; want Readable", access, err)
		}
	}

	// A second run keeps the keys and adds the new agencies' only.
	key := filepath.Join(dir, pkiDir, pki.AgencyKeyFile(1))
	before, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if code := run([]string{out, "4"}, &stderr); code != exitOK {
		t.Fatalf("second run: exit %d, stderr %s", code, stderr.String())
	}
	if after, _ := os.ReadFile(key); !bytes.Equal(before, after) {
		t.Errorf("a second run replaced %s", key)
	}
	if files := pkiFiles(t, dir); !slices.Contains(files, pki.AgencyKeyFile(4)) {
		t.Errorf("no key for agency 4 after a run with N=4: %q", files)
	}
}

// TestRun_Keep is what make docker-compose-up runs: an existing file is
// left as it is, a missing one is written, and the PKI is seen to either way.
func TestRun_Keep(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "docker-compose-dev.yaml")
	if err := os.WriteFile(out, []byte("edited by hand"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run([]string{"-keep", out, "2"}, &stderr); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	if got, _ := os.ReadFile(out); string(got) != "edited by hand" {
		t.Errorf("-keep replaced the file with:\n%s", got)
	}
	if files := pkiFiles(t, dir); !slices.Contains(files, pki.CentralKeyFile) || !slices.Contains(files, pki.AgencyKeyFile(2)) {
		t.Errorf("-keep did not issue the PKI: %q", files)
	}
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"-keep", out, "2"}, &stderr); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	var want bytes.Buffer
	if err := compose.Write(&want, compose.Options{Agencies: 2}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("-keep with no file wrote:\n%s\nwant:\n%s", got, want.Bytes())
	}
}

func TestRun_PlainText(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "compose.yaml")
	var stderr bytes.Buffer
	if code := run([]string{"-tls=false", out, "2"}, &stderr); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := compose.Write(&want, compose.Options{Agencies: 2, PlainText: true}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("file:\n%s\nwant:\n%s", got, want.Bytes())
	}
	if files := pkiFiles(t, dir); files != nil {
		t.Errorf("-tls=false issued a PKI: %q", files)
	}
}

func TestRun_Help(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-h"}, &stderr); code != exitOK {
		t.Errorf("exit %d, want %d", code, exitOK)
	}
	for _, want := range []string{"-tls=false", "-keep", "uid 10001", "lottery_central_data",
		"<N> [<K>]", "1, 3 or 5", "server1", "lottery_server1_data", "CLUSTER_NODES", "CLI_SERVER_ADDRESS"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the usage does not say %s:\n%s", want, stderr.String())
		}
	}
}

func TestRun_ErrUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"NoArgs", nil},
		{"MissingN", []string{"OUT"}},
		{"NotANumber", []string{"OUT", "five"}},
		{"Negative", []string{"OUT", "-1"}},
		{"Plus", []string{"OUT", "+3"}},
		{"Decimal", []string{"OUT", "2.5"}},
		{"Space", []string{"OUT", " 3"}},
		{"Empty", []string{"OUT", ""}},
		{"TooMany", []string{"OUT", "99999999999999999999"}},
		{"Extra", []string{"OUT", "3", "4"}},
		{"EmptyName", []string{"", "3"}},
		{"UnknownFlag", []string{"-tsl=false", "OUT", "3"}},
		{"BadFlagValue", []string{"-tls=maybe", "OUT", "3"}},
		{"FlagAfterArgs", []string{"OUT", "3", "-tls=false"}},
		{"KeepAfterArgs", []string{"OUT", "3", "-keep"}},
		{"KeepValue", []string{"-keep=sometimes", "OUT", "3"}},
		{"CentralsZero", []string{"OUT", "3", "0"}},
		{"CentralsTwo", []string{"OUT", "3", "2"}},
		{"CentralsFour", []string{"OUT", "3", "4"}},
		{"CentralsSix", []string{"OUT", "3", "6"}},
		{"CentralsNegative", []string{"OUT", "3", "-3"}},
		{"CentralsPlus", []string{"OUT", "3", "+3"}},
		{"CentralsSpace", []string{"OUT", "3", "3 "}},
		{"CentralsEmpty", []string{"OUT", "3", ""}},
		{"CentralsNotANumber", []string{"OUT", "3", "three"}},
		{"CentralsHuge", []string{"OUT", "3", "99999999999999999999"}},
		{"FourArgs", []string{"OUT", "3", "3", "1"}},
		{"TLSAfterCentrals", []string{"OUT", "3", "3", "-tls=false"}},
		{"AdminPortZero", []string{"-admin-port=0", "OUT", "3"}},
		{"AdminPortNegative", []string{"-admin-port=-1", "OUT", "3"}},
		{"AdminPortTooBig", []string{"-admin-port=65536", "OUT", "3"}},
		{"AdminPortNoRoomForNodes", []string{"-admin-port=65534", "OUT", "3", "3"}},
		{"AdminPortNotANumber", []string{"-admin-port=http", "OUT", "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "compose.yaml")
			if err := os.WriteFile(out, []byte("untouched"), 0o644); err != nil {
				t.Fatal(err)
			}
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.ReplaceAll(a, "OUT", out)
			}
			var stderr bytes.Buffer
			if code := run(args, &stderr); code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(stderr.String(), "usage: generar-compose.sh <output-file> <N>") {
				t.Errorf("stderr has no usage:\n%s", stderr.String())
			}
			if got, _ := os.ReadFile(out); string(got) != "untouched" {
				t.Errorf("output file changed to %q", got)
			}
			if files := pkiFiles(t, dir); files != nil {
				t.Errorf("a bad call issued a PKI: %q", files)
			}
		})
	}
}

func TestRun_ErrWrite(t *testing.T) {
	out := filepath.Join(t.TempDir(), "missing-dir", "compose.yaml")
	var stderr bytes.Buffer
	if code := run([]string{out, "1"}, &stderr); code != exitFailed {
		t.Errorf("exit %d, want %d (stderr %s)", code, exitFailed, stderr.String())
	}
}

// TestRun_Cluster: a third argument of 3 writes the replicated central's
// file, issues the nodes' keys and certificates and makes each node's key
// readable by the central's user; 1 is the single central, byte for byte.
func TestRun_Cluster(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "docker-compose-cluster.yaml")
	var stderr bytes.Buffer
	if code := run([]string{out, "2", "3"}, &stderr); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := compose.Write(&want, compose.Options{Agencies: 2, Centrals: 3}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("file:\n%s\nwant:\n%s", got, want.Bytes())
	}
	files := pkiFiles(t, dir)
	for _, name := range []string{"server1", "server2", "server3"} {
		for _, f := range []string{pki.NodeCertFile(name), pki.NodeKeyFile(name)} {
			if !slices.Contains(files, f) {
				t.Errorf("%s/%s is missing (have %q)", pkiDir, f, files)
			}
		}
		if runtime.GOOS == "linux" {
			if !strings.Contains(stderr.String(), pki.NodeKeyFile(name)+" made readable by uid 10001") {
				t.Errorf("stderr does not say %s was made readable: %s", pki.NodeKeyFile(name), stderr.String())
			}
			if access, err := compose.ShareNodeKey(filepath.Join(dir, pkiDir), name); err != nil || access != compose.Readable {
				t.Errorf("ShareNodeKey(%s) after a run = %v, %v; want Readable", name, access, err)
			}
		}
	}
	if slices.Contains(files, pki.NodeKeyFile("server4")) {
		t.Errorf("K=3 issued server4: %q", files)
	}

	// K=1 is the single central, as with two arguments.
	if code := run([]string{out, "2", "1"}, &stderr); code != exitOK {
		t.Fatalf("K=1: exit %d, stderr %s", code, stderr.String())
	}
	want.Reset()
	if err := compose.Write(&want, compose.Options{Agencies: 2}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("K=1 wrote:\n%s\nwant the single central:\n%s", got, want.Bytes())
	}

	// -tls=false with K=5: every node TLS=off, nothing more issued.
	before := pkiFiles(t, dir)
	if code := run([]string{"-tls=false", out, "1", "5"}, &stderr); code != exitOK {
		t.Fatalf("-tls=false K=5: exit %d, stderr %s", code, stderr.String())
	}
	want.Reset()
	if err := compose.Write(&want, compose.Options{Agencies: 1, Centrals: 5, PlainText: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("-tls=false K=5 wrote:\n%s\nwant:\n%s", got, want.Bytes())
	}
	if after := pkiFiles(t, dir); !slices.Equal(before, after) {
		t.Errorf("-tls=false changed the PKI: %q, then %q", before, after)
	}
}

// TestRun_AdminPort: -admin-port moves the central's published admin port
// (each node's after it); without it the file is the default one.
func TestRun_AdminPort(t *testing.T) {
	tests := []struct {
		name          string
		flags, counts []string // before and after the output file
		opt           compose.Options
	}{
		{"OK/Default", nil, []string{"3"}, compose.Options{Agencies: 3}},
		{"OK/Single", []string{"-admin-port=19090"}, []string{"3"}, compose.Options{Agencies: 3, AdminHostPort: 19090}},
		{"OK/Cluster", []string{"-admin-port=65533"}, []string{"1", "3"}, compose.Options{Agencies: 1, Centrals: 3, AdminHostPort: 65533}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "compose.yaml")
			args := slices.Concat([]string{"-tls=false"}, tt.flags, []string{out}, tt.counts)
			var stderr bytes.Buffer
			if code := run(args, &stderr); code != exitOK {
				t.Fatalf("run %q: exit %d\n%s", args, code, stderr.String())
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			tt.opt.PlainText = true
			var want bytes.Buffer
			if err := compose.Write(&want, tt.opt); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Errorf("run %q wrote:\n%s\nwant:\n%s", args, got, want.Bytes())
			}
		})
	}
}
