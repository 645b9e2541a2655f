package compose_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"lottery/compose"
	"lottery/pki"
)

// parsed is the part of a compose file the tests read back.
type parsed struct {
	Services map[string]struct {
		ContainerName string   `yaml:"container_name"`
		Image         string   `yaml:"image"`
		Environment   []string `yaml:"environment"`
		Networks      []string `yaml:"networks"`
		Volumes       []string `yaml:"volumes"`
		DependsOn     []string `yaml:"depends_on"`
	} `yaml:"services"`
	Networks map[string]map[string]string `yaml:"networks"`
	Volumes  map[string]map[string]string `yaml:"volumes"`
}

func generate(t *testing.T, opt compose.Options) ([]byte, parsed) {
	t.Helper()
	var buf bytes.Buffer
	if err := compose.Write(&buf, opt); err != nil {
		t.Fatalf("Write(%+v): %v", opt, err)
	}
	var p parsed
	if err := yaml.Unmarshal(buf.Bytes(), &p); err != nil {
		t.Fatalf("the output is not YAML: %v\n%s", err, buf.String())
	}
	return buf.Bytes(), p
}

func TestWrite_Services(t *testing.T) {
	for _, n := range []int{0, 1, 3, 5, 10} {
		t.Run("N="+strconv.Itoa(n), func(t *testing.T) {
			out, p := generate(t, compose.Options{Agencies: n})
			if len(p.Services) != n+1 {
				t.Fatalf("%d services, want %d:\n%s", len(p.Services), n+1, out)
			}
			if len(p.Networks) != 1 {
				t.Fatalf("networks %v, want exactly one", p.Networks)
			}
			server, ok := p.Services["server"]
			if !ok {
				t.Fatalf("no service server:\n%s", out)
			}
			if server.ContainerName != "server" || server.Image != "server:latest" {
				t.Errorf("server: container %q image %q", server.ContainerName, server.Image)
			}
			wantEnv := []string{"AGENCIES=" + strconv.Itoa(n), "STORAGE_FILEPATH=/data/bets.csv"}
			if n == 0 {
				wantEnv = wantEnv[1:] // AGENCIES=0 is not a valid central: it keeps config.ini's
			}
			if !slices.Equal(server.Environment, wantEnv) {
				t.Errorf("server environment %q, want %q", server.Environment, wantEnv)
			}
			wantVolumes := []string{"./server/config.ini:/config.ini:ro", "central_data:/data",
				"./.pki/central.crt:/.pki/central.crt:ro", "./.pki/central.key:/.pki/central.key:ro", "./.pki/ca.crt:/.pki/ca.crt:ro"}
			if !slices.Equal(server.Volumes, wantVolumes) {
				t.Errorf("server volumes %q, want %q", server.Volumes, wantVolumes)
			}
			for id := 1; id <= n; id++ {
				name := "client" + strconv.Itoa(id)
				c, ok := p.Services[name]
				if !ok {
					t.Fatalf("no service %s:\n%s", name, out)
				}
				if c.ContainerName != name || c.Image != "client:latest" {
					t.Errorf("%s: container %q image %q", name, c.ContainerName, c.Image)
				}
				want := []string{"CLI_ID=" + strconv.Itoa(id), "NOMBRE=Santiago Lionel", "APELLIDO=Lorca",
					"DOCUMENTO=30904465", "NACIMIENTO=1999-03-17", "NUMERO=7574"}
				if !slices.Equal(c.Environment, want) {
					t.Errorf("%s environment %q, want %q", name, c.Environment, want)
				}
				key := "agency-" + strconv.Itoa(id)
				wantVolumes := []string{"./client/config.yaml:/config.yaml:ro", "./.data:/.data:ro",
					"./.pki/" + key + ".crt:/.pki/" + key + ".crt:ro", "./.pki/" + key + ".key:/.pki/" + key + ".key:ro",
					"./.pki/ca.crt:/.pki/ca.crt:ro"}
				if !slices.Equal(c.Volumes, wantVolumes) {
					t.Errorf("%s volumes %q, want %q", name, c.Volumes, wantVolumes)
				}
				if !slices.Equal(c.DependsOn, []string{"server"}) {
					t.Errorf("%s depends_on %q", name, c.DependsOn)
				}
				if !slices.Equal(c.Networks, server.Networks) || len(c.Networks) != 1 {
					t.Errorf("%s networks %q, server's %q", name, c.Networks, server.Networks)
				}
				if _, ok := p.Networks[c.Networks[0]]; !ok {
					t.Errorf("%s joins undeclared network %q", name, c.Networks[0])
				}
			}
		})
	}
}

func TestWrite_ServiceOrder(t *testing.T) {
	out, _ := generate(t, compose.Options{Agencies: 10})
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") && strings.HasSuffix(line, ":") {
			names = append(names, strings.TrimSuffix(strings.TrimSpace(line), ":"))
		}
	}
	want := []string{"server"}
	for i := 1; i <= 10; i++ {
		want = append(want, "client"+strconv.Itoa(i))
	}
	want = append(want, compose.DefaultNetwork, compose.DataVolume)
	if !slices.Equal(names, want) {
		t.Errorf("services in order %q, want %q", names, want)
	}
}

func TestWrite_Deterministic(t *testing.T) {
	a, _ := generate(t, compose.Options{Agencies: 7})
	b, _ := generate(t, compose.Options{Agencies: 7})
	if !bytes.Equal(a, b) {
		t.Errorf("two runs differ:\n%s\n---\n%s", a, b)
	}
}

func TestWrite_Options(t *testing.T) {
	_, p := generate(t, compose.Options{Agencies: 2, NamePrefix: "t1-", Network: "other"})
	for name, svc := range p.Services {
		if svc.ContainerName != "t1-"+name {
			t.Errorf("service %s: container %q, want %q", name, svc.ContainerName, "t1-"+name)
		}
		if !slices.Equal(svc.Networks, []string{"other"}) {
			t.Errorf("service %s: networks %q", name, svc.Networks)
		}
	}
	if _, ok := p.Networks["other"]; !ok || len(p.Networks) != 1 {
		t.Errorf("networks %v, want only other", p.Networks)
	}
	if got := p.Volumes[compose.DataVolume]["name"]; got != "t1-lottery_central_data" {
		t.Errorf("volume name %q, want the prefix before it", got)
	}
}

// TestWrite_DataVolume checks where the bets go: the central, and nobody
// else, mounts one named volume, read-write, on the directory of
// STORAGE_FILEPATH; its name is fixed (not the project's), so the
// documentation can name it.
func TestWrite_DataVolume(t *testing.T) {
	for _, opt := range []compose.Options{{Agencies: 0}, {Agencies: 3}, {Agencies: 2, PlainText: true}} {
		_, p := generate(t, opt)
		if len(p.Volumes) != 1 || p.Volumes["central_data"]["name"] != "lottery_central_data" {
			t.Errorf("%+v: volumes %v, want only central_data named lottery_central_data", opt, p.Volumes)
		}
		for name, svc := range p.Services {
			var named []string
			for _, v := range svc.Volumes {
				if !strings.HasPrefix(v, "./") {
					named = append(named, v)
				}
			}
			want := []string(nil)
			if name == compose.ServerService {
				want = []string{"central_data:/data"}
				if !slices.Contains(svc.Environment, "STORAGE_FILEPATH=/data/bets.csv") {
					t.Errorf("%+v: server environment %q has no STORAGE_FILEPATH on the volume", opt, svc.Environment)
				}
			}
			if !slices.Equal(named, want) {
				t.Errorf("%+v: %s mounts %q, want %q", opt, name, named, want)
			}
		}
	}
	if filepath.Dir(compose.BetsFile) != compose.CentralDataDir {
		t.Errorf("BetsFile %s is not in %s", compose.BetsFile, compose.CentralDataDir)
	}
}

// TestDockerfile_CentralUser keeps server/Dockerfile and the generator in
// step: the image runs the central as CentralUID:CentralGID, the user
// ShareCentralKey lets read the key, and gives it the volume's directory.
func TestDockerfile_CentralUser(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "server", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	user := strconv.Itoa(compose.CentralUID) + ":" + strconv.Itoa(compose.CentralGID)
	var users, copies []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "USER":
			users = append(users, strings.Join(f[1:], " "))
		case len(f) == 4 && f[0] == "COPY" && f[3] == compose.CentralDataDir:
			copies = append(copies, f[1]+" "+f[2])
		}
	}
	if !slices.Equal(users, []string{user}) {
		t.Errorf("server/Dockerfile USER %q, want exactly %q", users, user)
	}
	if want := "--chown=" + user + " server/data"; !slices.Equal(copies, []string{want}) {
		t.Errorf("server/Dockerfile copies %s with %q, want %q", compose.CentralDataDir, copies, want)
	}
	if st, err := os.Stat(filepath.Join("..", "server", "data")); err != nil || !st.IsDir() {
		t.Errorf("server/data, the directory the image copies to %s: %v", compose.CentralDataDir, err)
	}
}

// TestWrite_PKIMounts checks who sees which key: the central only its own,
// each agency only its own, nobody the CA's key, every mount read-only and
// of one file (never the whole directory).
func TestWrite_PKIMounts(t *testing.T) {
	const n = 12 // agency-1 is a prefix of agency-10, agency-11, agency-12
	_, p := generate(t, compose.Options{Agencies: n})
	for name, svc := range p.Services {
		var keys, certs []string
		sawCA := false
		for _, v := range svc.Volumes {
			parts := strings.Split(v, ":") // host:container:mode
			if !strings.Contains(v, ".pki") {
				continue
			}
			file := strings.TrimPrefix(parts[0], "./.pki/")
			if len(parts) != 3 || file == parts[0] || file == "" || strings.Contains(file, "/") {
				t.Errorf("%s: %q does not mount one file of ./.pki", name, v)
				continue
			}
			if parts[1] != "/.pki/"+file || parts[2] != "ro" {
				t.Errorf("%s: %q, want %s mounted read-only at /.pki/%s", name, v, file, file)
			}
			switch {
			case file == pki.CAKeyFile:
				t.Errorf("%s: the CA's key is mounted: %q", name, v)
			case file == pki.CAFile:
				sawCA = true
			case strings.HasSuffix(file, ".key"):
				keys = append(keys, file)
			case strings.HasSuffix(file, ".crt"):
				certs = append(certs, file)
			default:
				t.Errorf("%s: unexpected PKI file %q", name, v)
			}
		}
		wantKey, wantCert := pki.CentralKeyFile, pki.CentralCertFile
		if name != compose.ServerService {
			id, err := strconv.Atoi(strings.TrimPrefix(name, compose.ClientPrefix))
			if err != nil {
				t.Fatalf("service %s", name)
			}
			wantKey, wantCert = pki.AgencyKeyFile(id), pki.AgencyCertFile(id)
		}
		if !slices.Equal(keys, []string{wantKey}) || !slices.Equal(certs, []string{wantCert}) || !sawCA {
			t.Errorf("%s: keys %q, certificates %q, ca.crt %v; want only %s, %s and %s",
				name, keys, certs, sawCA, wantKey, wantCert, pki.CAFile)
		}
	}
}

// TestWrite_PlainText checks the bare-exercise file: TLS switched off on
// both sides, no key or certificate mounted anywhere.
func TestWrite_PlainText(t *testing.T) {
	for _, n := range []int{0, 3} {
		t.Run("N="+strconv.Itoa(n), func(t *testing.T) {
			out, p := generate(t, compose.Options{Agencies: n, PlainText: true})
			if strings.Contains(string(out), ".pki") {
				t.Errorf("a plain-text file mounts the PKI:\n%s", out)
			}
			for name, svc := range p.Services {
				want := "CLI_TLS=off"
				if name == compose.ServerService {
					want = "TLS=off"
				}
				if !slices.Contains(svc.Environment, want) {
					t.Errorf("%s environment %q has no %s", name, svc.Environment, want)
				}
			}
		})
	}
	// The default is the secure one.
	out, p := generate(t, compose.Options{Agencies: 1})
	if strings.Contains(string(out), "TLS=off") {
		t.Errorf("the default file switches TLS off:\n%s", out)
	}
	if len(p.Services["client1"].Volumes) != 5 {
		t.Errorf("client1 volumes %q: want the PKI mounted by default", p.Services["client1"].Volumes)
	}
}

func TestWrite_ErrAgencies(t *testing.T) {
	for _, n := range []int{-1, compose.MaxAgencies + 1} {
		var buf bytes.Buffer
		err := compose.Write(&buf, compose.Options{Agencies: n})
		if !errors.Is(err, compose.ErrAgencies) {
			t.Errorf("Write(%d) = %v, want ErrAgencies", n, err)
		}
		if buf.Len() != 0 {
			t.Errorf("Write(%d) wrote %d bytes", n, buf.Len())
		}
	}
}

// TestCommittedFile keeps the committed docker-compose-dev.yaml in step with
// the generator.
func TestCommittedFile(t *testing.T) {
	committed, err := os.ReadFile(filepath.Join("..", "docker-compose-dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := generate(t, compose.Options{Agencies: 5})
	if !bytes.Equal(committed, want) {
		t.Errorf("docker-compose-dev.yaml is stale: run ./generar-compose.sh docker-compose-dev.yaml 5")
	}
}

func TestFile_Service(t *testing.T) {
	f, err := compose.New(compose.Options{Agencies: 2})
	if err != nil {
		t.Fatal(err)
	}
	c2 := f.Service("client2")
	if c2 == nil || c2.ContainerName != "client2" {
		t.Fatalf("Service(client2) = %+v", c2)
	}
	c2.Environment = append(c2.Environment, "CLI_LOOP_PERIOD=1s")
	var buf bytes.Buffer
	if err := f.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "- CLI_LOOP_PERIOD=1s") {
		t.Errorf("an edit through Service is not in the file:\n%s", buf.String())
	}
	if f.Service("client3") != nil {
		t.Error("Service(client3) of a 2-agency file is not nil")
	}
}
