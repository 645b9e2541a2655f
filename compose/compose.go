// Package compose writes the Docker Compose file that runs the central and
// its agencies: a service "server" and services "client1" … "clientN" on one
// network, the config files, the agency data and the TLS material mounted
// read-only, and the central's bets file with its journal on a named volume
// of their own, so that `docker compose down` and `up` keep them.
//
// A replicated central (Options.Centrals 3 or 5) is services "server1" …
// "serverK" instead of "server", each with a volume of its own, its name
// (NODE_NAME) and every node's address (CLUSTER_NODES); the agencies are
// given every node's address (CLI_SERVER_ADDRESS) and wait for all of them.
//
// Each container gets only the keys it needs: the central (or each node) its
// own key and certificate, agency N its own, all the CA's certificate to
// verify the other side. The CA's key, which could mint any identity, stays
// on the host.
//
// The file is built as a value and marshalled with yaml.v3, never pasted
// together as text, so names and values are always quoted correctly, and the
// output is deterministic: the same options give the same bytes.
package compose

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"lottery/pki"
)

// Names the course's harness relies on.
const (
	ServerService  = "server"               // the central's service, container and host name
	ClientPrefix   = "client"               // agency N is service and container "clientN"
	ServerImage    = "server:latest"        // built by server/Dockerfile
	ClientImage    = "client:latest"        // built by client/Dockerfile
	DefaultNetwork = "lottery_net"          // the one network every service joins
	serverConfig   = "/config.ini"          // where the central reads ./config.ini (its WORKDIR is /)
	ClientConfig   = "/config.yaml"         // where an agency reads ./config.yaml (its WORKDIR is /)
	DataDir        = "/.data"               // where an agency finds ./.data/agency-N.csv
	PKIDir         = "/.pki"                // where both read ./.pki/… (their default TLS paths)
	centralDataDir = "/data"                // the central's volume: its image gives it to CentralUID
	BetsFile       = "/data/bets.csv"       // STORAGE_FILEPATH; the journal is beside it
	dataVolume     = "central_data"         // the volume's key in the file
	DataVolumeName = "lottery_central_data" // its name in Docker, after Options.NamePrefix
	centralPort    = 12345                  // SERVER_PORT of server/config.ini: CLUSTER_NODES and CLI_SERVER_ADDRESS name it
	hostServerConf = "./server/config.ini"
	hostClientConf = "./client/config.yaml"
	hostDataDir    = "./.data"
	hostPKIDir     = "./.pki" // bin/pki (pki.Issue) writes it next to the compose file
	// Each agency keeps its receipts (docs/audit.md) in a directory of its
	// own on the host, writable, beside the read-only ./.data: an auditor
	// runs bin/audit on them after the draw.
	hostReceiptsDir = "./.receipts"
	ReceiptsDir     = "/receipts"
)

// MaxAgencies bounds N: agencies are numbered with a uint32 on the wire, but
// a compose file with more services than this is a typo, not a lottery.
const MaxAgencies = 10000

// SampleBet is the single bet every agency is given in NOMBRE … NUMERO, the
// course's example. An agency sends it only when it has no data file.
var SampleBet = []EnvVar{
	{"NOMBRE", "Santiago Lionel"},
	{"APELLIDO", "Lorca"},
	{"DOCUMENTO", "30904465"},
	{"NACIMIENTO", "1999-03-17"},
	{"NUMERO", "7574"},
}

// errAgencies reports an agency count outside 0..MaxAgencies.
var errAgencies = errors.New("compose: agencies must be between 0 and " + strconv.Itoa(MaxAgencies))

// errCentrals reports a central of another size than 1, 3 or 5 nodes.
var errCentrals = errors.New("compose: the central must have 1, 3 or 5 nodes")

// nodeVolume is the key in the file of node name's volume ("server1_data");
// Docker calls it NodeVolumeName(name), after Options.NamePrefix.
func nodeVolume(name string) string { return name + "_data" }

// NodeVolumeName is node name's volume in Docker: "lottery_server1_data".
func NodeVolumeName(name string) string { return "lottery_" + nodeVolume(name) }

// Options say what to generate.
type Options struct {
	// Agencies is N, the number of agency services; 0 gives a central alone.
	Agencies int
	// Centrals is K, the number of the central's nodes: 0 or 1 for the
	// single central "server", 3 or 5 for a Raft group "server1" …
	// "serverK" (pki.NodeName). Nothing else.
	Centrals int
	// NamePrefix is put before every container name (not service name)
	// and before the volume's name. Empty for the course's names; tests use
	// it so that their containers and volumes never collide with a
	// deployment that is already running.
	NamePrefix string
	// Network is the network's name inside the file; DefaultNetwork if empty.
	Network string
	// PlainText switches TLS off (TLS=off for the central, CLI_TLS=off for
	// the agencies) and mounts no PKI: only for the course's bare exercises.
	// The zero value is the secure one: mutual TLS, keys mounted.
	PlainText bool
	// AdminHostPort is the port of the host's loopback the central's
	// admin listener is published on (node i of a replicated central: the
	// next ports, AdminHostPort+i-1). Zero: DefaultAdminHostPort;
	// EphemeralAdminPort lets Docker pick free ones, for tests that must
	// not collide with a deployment already running.
	AdminHostPort int
}

// EnvVar is one environment variable, kept in order in the file.
type EnvVar struct{ Name, Value string }

// File is a compose file.
type File struct {
	Services Services           `yaml:"services"`
	Networks map[string]Network `yaml:"networks"`
	Volumes  map[string]Volume  `yaml:"volumes,omitempty"`
}

// Service is one compose service.
type Service struct {
	Name          string   `yaml:"-"`
	ContainerName string   `yaml:"container_name"`
	Image         string   `yaml:"image"`
	Environment   []string `yaml:"environment,omitempty"`
	Networks      []string `yaml:"networks"`
	Volumes       []string `yaml:"volumes"`
	DependsOn     []string `yaml:"depends_on,omitempty"`
	// Ports and Healthcheck are the central's (admin.go): its admin
	// listener on the host's loopback, and Docker's probe of /readyz.
	Ports       flowList     `yaml:"ports,omitempty"`
	Healthcheck *Healthcheck `yaml:"healthcheck,omitempty"`
}

// Services keeps the services in order (server, client1, client2, …):
// a Go map would sort client10 before client2.
type Services []Service

// MarshalYAML writes the services as a mapping in slice order.
func (s Services) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, svc := range s {
		var v yaml.Node
		if err := v.Encode(svc); err != nil {
			return nil, fmt.Errorf("compose: service %s: %w", svc.Name, err)
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: svc.Name}, &v)
	}
	return n, nil
}

// Service returns the service called name, nil if there is none.
func (f *File) Service(name string) *Service {
	for i := range f.Services {
		if f.Services[i].Name == name {
			return &f.Services[i]
		}
	}
	return nil
}

// Network is one compose network.
type Network struct {
	Driver string `yaml:"driver"`
}

// Volume is one named volume. Name fixes its name in Docker, which
// otherwise would be the project's name (the directory's) + "_" + its key.
type Volume struct {
	Name string `yaml:"name"`
}

// New builds the compose file for opt.
func New(opt Options) (File, error) {
	if opt.Agencies < 0 || opt.Agencies > MaxAgencies {
		return File{}, fmt.Errorf("%w, got %d", errAgencies, opt.Agencies)
	}
	if opt.Centrals != 0 && opt.Centrals != 1 && opt.Centrals != 3 && opt.Centrals != 5 {
		return File{}, fmt.Errorf("%w, got %d", errCentrals, opt.Centrals)
	}
	network := opt.Network
	if network == "" {
		network = DefaultNetwork
	}
	f := File{
		Networks: map[string]Network{network: {Driver: "bridge"}},
		Volumes:  map[string]Volume{},
	}
	var centrals []string // the services every agency depends on
	var address string    // CLI_SERVER_ADDRESS; "" leaves config.yaml's (server:12345)
	if opt.Centrals > 1 {
		var nodes, addrs, members []string
		for i := 1; i <= opt.Centrals; i++ {
			name := pki.NodeName(i)
			addr := name + ":" + strconv.Itoa(centralPort)
			nodes, addrs, members = append(nodes, name), append(addrs, addr), append(members, name+"="+addr)
		}
		clusterNodes := strings.Join(members, ",")
		for i, name := range nodes {
			node := central(opt, network, name, nodeVolume(name))
			node.Ports = adminPorts(opt, i)
			node.Environment = append(node.Environment, env("NODE_NAME", name), env("CLUSTER_NODES", clusterNodes))
			if opt.PlainText {
				node.Environment = append(node.Environment, env("TLS", "off"))
			} else {
				node.Environment = append(node.Environment,
					env("TLS_CERT", PKIDir+"/"+pki.NodeCertFile(name)), env("TLS_KEY", PKIDir+"/"+pki.NodeKeyFile(name)))
				node.Volumes = append(node.Volumes, pkiMounts(pki.NodeCertFile(name), pki.NodeKeyFile(name), pki.CAFile, pki.LogKeyFile)...)
			}
			f.Services = append(f.Services, node)
			f.Volumes[nodeVolume(name)] = Volume{Name: opt.NamePrefix + NodeVolumeName(name)}
		}
		centrals, address = nodes, strings.Join(addrs, ",")
	} else {
		server := central(opt, network, ServerService, dataVolume)
		server.Ports = adminPorts(opt, 0)
		if opt.PlainText {
			server.Environment = append(server.Environment, env("TLS", "off"))
		} else {
			server.Volumes = append(server.Volumes, pkiMounts(pki.CentralCertFile, pki.CentralKeyFile, pki.CAFile, pki.LogKeyFile)...)
		}
		f.Services = append(f.Services, server)
		f.Volumes[dataVolume] = Volume{Name: opt.NamePrefix + DataVolumeName}
		centrals = []string{ServerService}
	}
	for id := 1; id <= opt.Agencies; id++ {
		name := ClientPrefix + strconv.Itoa(id)
		vars := []string{env("CLI_ID", strconv.Itoa(id))}
		if address != "" {
			vars = append(vars, env("CLI_SERVER_ADDRESS", address))
		}
		for _, v := range SampleBet {
			vars = append(vars, env(v.Name, v.Value))
		}
		volumes := []string{readOnly(hostClientConf, ClientConfig), readOnly(hostDataDir, DataDir)}
		if opt.PlainText {
			vars = append(vars, env("CLI_TLS", "off"))
		} else {
			volumes = append(volumes, pkiMounts(pki.AgencyCertFile(id), pki.AgencyKeyFile(id), pki.CAFile, pki.LogPubFile)...)
			dir := "agency-" + strconv.Itoa(id)
			vars = append(vars, env("CLI_AUDIT_RECEIPTS", ReceiptsDir+"/"+dir+".receipts"))
			volumes = append(volumes, hostReceiptsDir+"/"+dir+":"+ReceiptsDir)
		}
		f.Services = append(f.Services, Service{
			Name:          name,
			ContainerName: opt.NamePrefix + name,
			Image:         ClientImage,
			Environment:   vars,
			Networks:      []string{network},
			Volumes:       volumes,
			DependsOn:     slices.Clone(centrals),
		})
	}
	return f, nil
}

// central is the service of the central, or of one of its nodes, called
// name, with its bets file on the volume called volume; the caller adds
// its TLS material.
func central(opt Options, network, name, volume string) Service {
	svc := Service{
		Name:          name,
		ContainerName: opt.NamePrefix + name,
		Image:         ServerImage,
		Networks:      []string{network},
		Volumes:       []string{readOnly(hostServerConf, serverConfig), volume + ":" + centralDataDir},
	}
	// With no agency there is nothing to wait for: the central keeps the
	// AGENCIES of its config.ini (AGENCIES=0 is not a valid central).
	if opt.Agencies > 0 {
		svc.Environment = []string{env("AGENCIES", strconv.Itoa(opt.Agencies))}
	}
	// The bets file lives on the volume, whatever config.ini says: the
	// rest of the image is not the central's to write.
	svc.Environment = append(svc.Environment, env("STORAGE_FILEPATH", BetsFile))
	withAdmin(&svc)
	return svc
}

// isNode reports whether a service is a node of a replicated central:
// "server" followed by a number (pki.NodeName).
func isNode(name string) bool {
	n, ok := strings.CutPrefix(name, ServerService)
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}

func env(name, value string) string { return name + "=" + value }

func readOnly(host, container string) string { return host + ":" + container + ":ro" }

// pkiMounts mounts the named files of the PKI directory (pki's names) one
// by one, never the directory: a container sees only the files it is given,
// and never pki.CAKeyFile.
func pkiMounts(files ...string) []string {
	var m []string
	for _, f := range files {
		m = append(m, readOnly(hostPKIDir+"/"+f, PKIDir+"/"+f))
	}
	return m
}

// header is written first: the file says where it comes from.
const header = "# Generated by generar-compose.sh (cmd/gencompose): edit the generator, not this file.\n"

// Write writes the compose file for opt to w.
func Write(w io.Writer, opt Options) error {
	f, err := New(opt)
	if err != nil {
		return err
	}
	return f.Encode(w)
}

// Encode writes f as YAML, after a header saying where it comes from.
func (f File) Encode(w io.Writer) error {
	agencies, nodes := 0, 0
	for _, s := range f.Services {
		switch {
		case s.Name == ServerService:
		case isNode(s.Name):
			nodes++
		default:
			agencies++
		}
	}
	var buf bytes.Buffer
	buf.WriteString(header)
	if nodes > 0 {
		buf.WriteString("# A central of " + strconv.Itoa(nodes) + " nodes (Raft) and " + strconv.Itoa(agencies) + " agencies.\n")
	} else {
		buf.WriteString("# The central and " + strconv.Itoa(agencies) + " agencies.\n")
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return fmt.Errorf("compose: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("compose: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
