package compose

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

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
		Ports         []string `yaml:"ports"`
		Healthcheck   *struct {
			Test        []string `yaml:"test"`
			Interval    string   `yaml:"interval"`
			Timeout     string   `yaml:"timeout"`
			Retries     int      `yaml:"retries"`
			StartPeriod string   `yaml:"start_period"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Networks map[string]map[string]string `yaml:"networks"`
	Volumes  map[string]map[string]string `yaml:"volumes"`
}

func generate(t *testing.T, opt Options) ([]byte, parsed) {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, opt); err != nil {
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
			out, p := generate(t, Options{Agencies: n})
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
			wantEnv := []string{"AGENCIES=" + strconv.Itoa(n), "STORAGE_FILEPATH=/data/bets.csv", "ADMIN_ADDRESS=0.0.0.0:9090"}
			if n == 0 {
				wantEnv = wantEnv[1:] // AGENCIES=0 is not a valid central: it keeps config.ini's
			}
			if !slices.Equal(server.Environment, wantEnv) {
				t.Errorf("server environment %q, want %q", server.Environment, wantEnv)
			}
			wantVolumes := []string{"./server/config.ini:/config.ini:ro", "central_data:/data",
				"./.pki/central.crt:/.pki/central.crt:ro", "./.pki/central.key:/.pki/central.key:ro", "./.pki/ca.crt:/.pki/ca.crt:ro",
				"./.pki/log.key:/.pki/log.key:ro"}
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
					"DOCUMENTO=30904465", "NACIMIENTO=1999-03-17", "NUMERO=7574", "CLI_AUDIT_RECEIPTS=/receipts/agency-" + strconv.Itoa(id) + ".receipts"}
				if !slices.Equal(c.Environment, want) {
					t.Errorf("%s environment %q, want %q", name, c.Environment, want)
				}
				key := "agency-" + strconv.Itoa(id)
				wantVolumes := []string{"./client/config.yaml:/config.yaml:ro", "./.data:/.data:ro",
					"./.pki/" + key + ".crt:/.pki/" + key + ".crt:ro", "./.pki/" + key + ".key:/.pki/" + key + ".key:ro",
					"./.pki/ca.crt:/.pki/ca.crt:ro", "./.pki/log.pub:/.pki/log.pub:ro", "./.receipts/" + key + ":/receipts"}
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
	out, _ := generate(t, Options{Agencies: 10})
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
	want = append(want, DefaultNetwork, dataVolume)
	if !slices.Equal(names, want) {
		t.Errorf("services in order %q, want %q", names, want)
	}
}

func TestWrite_Deterministic(t *testing.T) {
	a, _ := generate(t, Options{Agencies: 7})
	b, _ := generate(t, Options{Agencies: 7})
	if !bytes.Equal(a, b) {
		t.Errorf("two runs differ:\n%s\n---\n%s", a, b)
	}
}

func TestWrite_Options(t *testing.T) {
	_, p := generate(t, Options{Agencies: 2, NamePrefix: "t1-", Network: "other"})
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
	if got := p.Volumes[dataVolume]["name"]; got != "t1-lottery_central_data" {
		t.Errorf("volume name %q, want the prefix before it", got)
	}
}

// TestWrite_DataVolume checks where the bets go: the central, and nobody
// else, mounts one named volume, read-write, on the directory of
// STORAGE_FILEPATH; its name is fixed (not the project's), so the
// documentation can name it.
func TestWrite_DataVolume(t *testing.T) {
	for _, opt := range []Options{{Agencies: 0}, {Agencies: 3}, {Agencies: 2, PlainText: true}} {
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
			if name == ServerService {
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
	if filepath.Dir(BetsFile) != centralDataDir {
		t.Errorf("BetsFile %s is not in %s", BetsFile, centralDataDir)
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
	user := strconv.Itoa(CentralUID) + ":" + strconv.Itoa(CentralGID)
	var users, copies []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "USER":
			users = append(users, strings.Join(f[1:], " "))
		case len(f) == 4 && f[0] == "COPY" && f[3] == centralDataDir:
			copies = append(copies, f[1]+" "+f[2])
		}
	}
	if !slices.Equal(users, []string{user}) {
		t.Errorf("server/Dockerfile USER %q, want exactly %q", users, user)
	}
	if want := "--chown=" + user + " server/data"; !slices.Equal(copies, []string{want}) {
		t.Errorf("server/Dockerfile copies %s with %q, want %q", centralDataDir, copies, want)
	}
	if st, err := os.Stat(filepath.Join("..", "server", "data")); err != nil || !st.IsDir() {
		t.Errorf("server/data, the directory the image copies to %s: %v", centralDataDir, err)
	}
}

// TestWrite_PKIMounts checks who sees which key: the central only its own
// and the log's signing key, each agency only its own and the log's public
// key, nobody the CA's key, every mount read-only and of one file (never
// the whole directory).
func TestWrite_PKIMounts(t *testing.T) {
	const n = 12 // agency-1 is a prefix of agency-10, agency-11, agency-12
	_, p := generate(t, Options{Agencies: n})
	for name, svc := range p.Services {
		var keys, certs []string
		sawCA, sawPub := false, false
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
			case file == pki.LogPubFile:
				sawPub = true
			case strings.HasSuffix(file, ".key"):
				keys = append(keys, file)
			case strings.HasSuffix(file, ".crt"):
				certs = append(certs, file)
			default:
				t.Errorf("%s: unexpected PKI file %q", name, v)
			}
		}
		wantKeys, wantCert, wantPub := []string{pki.CentralKeyFile, pki.LogKeyFile}, pki.CentralCertFile, false
		if name != ServerService {
			id, err := strconv.Atoi(strings.TrimPrefix(name, ClientPrefix))
			if err != nil {
				t.Fatalf("service %s", name)
			}
			wantKeys, wantCert, wantPub = []string{pki.AgencyKeyFile(id)}, pki.AgencyCertFile(id), true
		}
		if !slices.Equal(keys, wantKeys) || !slices.Equal(certs, []string{wantCert}) || !sawCA || sawPub != wantPub {
			t.Errorf("%s: keys %q, certificates %q, ca.crt %v, log.pub %v; want only %s, %s, %s and log.pub %v",
				name, keys, certs, sawCA, sawPub, wantKeys, wantCert, pki.CAFile, wantPub)
		}
	}
}

// TestWrite_PlainText checks the bare-exercise file: TLS switched off on
// both sides, no key or certificate mounted anywhere.
func TestWrite_PlainText(t *testing.T) {
	for _, n := range []int{0, 3} {
		t.Run("N="+strconv.Itoa(n), func(t *testing.T) {
			out, p := generate(t, Options{Agencies: n, PlainText: true})
			if strings.Contains(string(out), ".pki") {
				t.Errorf("a plain-text file mounts the PKI:\n%s", out)
			}
			for name, svc := range p.Services {
				want := "CLI_TLS=off"
				if name == ServerService {
					want = "TLS=off"
				}
				if !slices.Contains(svc.Environment, want) {
					t.Errorf("%s environment %q has no %s", name, svc.Environment, want)
				}
			}
		})
	}
	// The default is the secure one.
	out, p := generate(t, Options{Agencies: 1})
	if strings.Contains(string(out), "TLS=off") {
		t.Errorf("the default file switches TLS off:\n%s", out)
	}
	if len(p.Services["client1"].Volumes) != 7 {
		t.Errorf("client1 volumes %q: want the PKI and the receipts mounted by default", p.Services["client1"].Volumes)
	}
}

func TestWrite_ErrAgencies(t *testing.T) {
	for _, n := range []int{-1, MaxAgencies + 1} {
		var buf bytes.Buffer
		err := Write(&buf, Options{Agencies: n})
		if !errors.Is(err, errAgencies) {
			t.Errorf("Write(%d) = %v, want errAgencies", n, err)
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
	want, _ := generate(t, Options{Agencies: 5})
	if !bytes.Equal(committed, want) {
		t.Errorf("docker-compose-dev.yaml is stale: run ./generar-compose.sh docker-compose-dev.yaml 5")
	}
}

func TestFile_Service(t *testing.T) {
	f, err := New(Options{Agencies: 2})
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

// update rewrites the golden files: go test ./compose -run Golden -update
var update = flag.Bool("update", false, "rewrite testdata/*.yaml from the generator")

// TestWrite_Golden pins whole files, byte for byte: the course's single
// central (also what Centrals 0 and 1 both give) and the replicated ones.
func TestWrite_Golden(t *testing.T) {
	tests := []struct {
		file string
		opt  Options
	}{
		{"single-2.yaml", Options{Agencies: 2}},
		{"single-2-centrals-1.yaml", Options{Agencies: 2, Centrals: 1}},
		{"cluster-3-agencies-2.yaml", Options{Agencies: 2, Centrals: 3}},
		{"cluster-5-agencies-1.yaml", Options{Agencies: 1, Centrals: 5}},
		{"cluster-3-agencies-0.yaml", Options{Agencies: 0, Centrals: 3}},
		{"cluster-3-agencies-1-plaintext.yaml", Options{Agencies: 1, Centrals: 3, PlainText: true}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, _ := generate(t, tt.opt)
			path := filepath.Join("testdata", tt.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./compose -run Golden -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%+v differs from %s (go test ./compose -run Golden -update if that is meant):\n%s", tt.opt, path, got)
			}
		})
	}
	single, _ := os.ReadFile(filepath.Join("testdata", "single-2.yaml"))
	one, _ := os.ReadFile(filepath.Join("testdata", "single-2-centrals-1.yaml"))
	if !bytes.Equal(single, one) {
		t.Error("Centrals 1 is not the single central of Centrals 0")
	}
}

// TestWrite_Cluster checks a replicated central service by service: every
// node has its name, every node's address, its own volume, key and
// certificate; every agency dials all the nodes and waits for all of them.
func TestWrite_Cluster(t *testing.T) {
	for _, tt := range []struct{ centrals, agencies int }{{3, 0}, {3, 5}, {5, 2}} {
		t.Run(strconv.Itoa(tt.centrals)+"x"+strconv.Itoa(tt.agencies), func(t *testing.T) {
			out, p := generate(t, Options{Agencies: tt.agencies, Centrals: tt.centrals})
			if len(p.Services) != tt.centrals+tt.agencies {
				t.Fatalf("%d services, want %d:\n%s", len(p.Services), tt.centrals+tt.agencies, out)
			}
			if _, ok := p.Services["server"]; ok {
				t.Error("a replicated central has a service server too")
			}
			var nodes, members, addrs []string
			for i := 1; i <= tt.centrals; i++ {
				name := "server" + strconv.Itoa(i)
				nodes = append(nodes, name)
				members = append(members, name+"="+name+":12345")
				addrs = append(addrs, name+":12345")
			}
			clusterNodes := strings.Join(members, ",")
			wantVolumes := map[string]map[string]string{}
			for _, name := range nodes {
				svc, ok := p.Services[name]
				if !ok {
					t.Fatalf("no service %s:\n%s", name, out)
				}
				if svc.ContainerName != name || svc.Image != "server:latest" || len(svc.DependsOn) != 0 {
					t.Errorf("%s: container %q image %q depends_on %q", name, svc.ContainerName, svc.Image, svc.DependsOn)
				}
				env := []string{"AGENCIES=" + strconv.Itoa(tt.agencies), "STORAGE_FILEPATH=/data/bets.csv", "ADMIN_ADDRESS=0.0.0.0:9090",
					"NODE_NAME=" + name, "CLUSTER_NODES=" + clusterNodes,
					"TLS_CERT=/.pki/central-" + name + ".crt", "TLS_KEY=/.pki/central-" + name + ".key"}
				if tt.agencies == 0 {
					env = env[1:]
				}
				if !slices.Equal(svc.Environment, env) {
					t.Errorf("%s environment %q, want %q", name, svc.Environment, env)
				}
				vols := []string{"./server/config.ini:/config.ini:ro", name + "_data:/data",
					"./.pki/central-" + name + ".crt:/.pki/central-" + name + ".crt:ro",
					"./.pki/central-" + name + ".key:/.pki/central-" + name + ".key:ro",
					"./.pki/ca.crt:/.pki/ca.crt:ro", "./.pki/log.key:/.pki/log.key:ro"}
				if !slices.Equal(svc.Volumes, vols) {
					t.Errorf("%s volumes %q, want %q", name, svc.Volumes, vols)
				}
				if !slices.Equal(svc.Networks, []string{DefaultNetwork}) {
					t.Errorf("%s networks %q: the nodes must reach each other on %s", name, svc.Networks, DefaultNetwork)
				}
				if nodeVolume(name) != name+"_data" {
					t.Errorf("nodeVolume(%s) = %q", name, nodeVolume(name))
				}
				wantVolumes[name+"_data"] = map[string]string{"name": "lottery_" + name + "_data"}
			}
			if len(p.Volumes) != len(wantVolumes) {
				t.Errorf("volumes %v, want %v", p.Volumes, wantVolumes)
			}
			for k, v := range wantVolumes {
				if p.Volumes[k]["name"] != v["name"] {
					t.Errorf("volume %s named %q, want %q", k, p.Volumes[k]["name"], v["name"])
				}
			}
			for id := 1; id <= tt.agencies; id++ {
				name := "client" + strconv.Itoa(id)
				c := p.Services[name]
				want := []string{"CLI_ID=" + strconv.Itoa(id), "CLI_SERVER_ADDRESS=" + strings.Join(addrs, ","),
					"NOMBRE=Santiago Lionel", "APELLIDO=Lorca", "DOCUMENTO=30904465", "NACIMIENTO=1999-03-17", "NUMERO=7574",
					"CLI_AUDIT_RECEIPTS=/receipts/agency-" + strconv.Itoa(id) + ".receipts"}
				if !slices.Equal(c.Environment, want) {
					t.Errorf("%s environment %q, want %q", name, c.Environment, want)
				}
				if !slices.Equal(c.DependsOn, nodes) {
					t.Errorf("%s depends_on %q, want %q", name, c.DependsOn, nodes)
				}
				if !slices.Equal(c.Networks, []string{DefaultNetwork}) {
					t.Errorf("%s networks %q", name, c.Networks)
				}
			}
		})
	}
}

// TestWrite_ClusterOptions: the prefix goes before the nodes' containers
// and volumes, TLS off reaches every node and mounts no key.
func TestWrite_ClusterOptions(t *testing.T) {
	out, p := generate(t, Options{Agencies: 1, Centrals: 3, NamePrefix: "t1-", PlainText: true})
	for i := 1; i <= 3; i++ {
		name := "server" + strconv.Itoa(i)
		svc := p.Services[name]
		if svc.ContainerName != "t1-"+name {
			t.Errorf("%s: container %q", name, svc.ContainerName)
		}
		if got := p.Volumes[name+"_data"]["name"]; got != "t1-lottery_"+name+"_data" {
			t.Errorf("%s volume named %q", name, got)
		}
		if !slices.Contains(svc.Environment, "TLS=off") || slices.ContainsFunc(svc.Environment, func(e string) bool {
			return strings.HasPrefix(e, "TLS_")
		}) {
			t.Errorf("%s environment %q: want TLS=off and no TLS_ path", name, svc.Environment)
		}
	}
	if strings.Contains(string(out), ".pki") {
		t.Errorf("a plain-text file mounts the PKI:\n%s", out)
	}
	if !slices.Contains(p.Services["client1"].Environment, "CLI_TLS=off") {
		t.Errorf("client1 environment %q", p.Services["client1"].Environment)
	}
}

func TestWrite_ErrCentrals(t *testing.T) {
	for _, k := range []int{-1, 2, 4, 6, 7} {
		var buf bytes.Buffer
		err := Write(&buf, Options{Agencies: 2, Centrals: k})
		if !errors.Is(err, errCentrals) {
			t.Errorf("Write(centrals %d) = %v, want errCentrals", k, err)
		}
		if buf.Len() != 0 {
			t.Errorf("Write(centrals %d) wrote %d bytes", k, buf.Len())
		}
	}
}

// TestConfig_CentralPort keeps server/config.ini and the addresses the
// file gives (CLUSTER_NODES, CLI_SERVER_ADDRESS) in step: the nodes listen
// on the port of config.ini.
func TestConfig_CentralPort(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "server", "config.ini"))
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && strings.TrimSpace(k) == "SERVER_PORT" {
			ports = append(ports, strings.TrimSpace(v))
		}
	}
	if want := strconv.Itoa(centralPort); !slices.Equal(ports, []string{want}) {
		t.Errorf("server/config.ini SERVER_PORT %q, want exactly %s (centralPort)", ports, want)
	}
}
