package compose

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// The central's admin listener in a container (docs/operations.md): it
// listens on every interface of the container (ADMIN_ADDRESS), which
// Compose publishes on the host's loopback only, and the image's own
// binary probes it (`/server -health`, the image has no curl) for Docker's
// healthcheck.
const (
	// AdminPort is the admin listener's port inside the container.
	AdminPort = 9090
	// DefaultAdminHostPort is where the host reaches it: the same number,
	// on 127.0.0.1.
	DefaultAdminHostPort = AdminPort
	// EphemeralAdminPort as Options.AdminHostPort publishes the admin
	// listener on a free loopback port Docker picks (`docker port` tells
	// which).
	EphemeralAdminPort = -1
	// adminListen is ADMIN_ADDRESS in the container: every interface, so
	// that the published port reaches it; only the host's loopback is
	// published, and the agencies' network has no reason to call it.
	adminListen = "0.0.0.0:9090"
	// HealthURL is what the healthcheck probes: the container's own
	// loopback, whatever is published.
	HealthURL = "http://127.0.0.1:9090/readyz"
	serverBin = "/server" // the image's binary (server/Dockerfile)
)

// The healthcheck's timing. A central is ready within milliseconds of
// its start (the store opens in constant time); a replicated one once an
// election chose a leader, about a second. A probe answers in
// milliseconds, and gives up itself after admin.ProbeTimeout (2 s).
const (
	healthInterval    = "5s" // how stale `docker ps` may be
	healthTimeout     = "3s" // above the probe's own 2 s
	healthRetries     = 3    // 15 s of failures before unhealthy: a Raft election is ~1 s
	healthStartPeriod = "5s" // failures before it do not count: start-up, the first election
)

// Healthcheck is a compose service's healthcheck.
type Healthcheck struct {
	Test        flowList `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

// flowList is written on one line with every item quoted, as ["CMD",
// "/server", …]: a command reads better so than one word per line, and a
// port mapping is never mistaken for a number (Compose's advice: YAML 1.1
// reads xx:yy as base 60).
type flowList []string

// MarshalYAML writes the list in flow style.
func (l flowList) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, s := range l {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: s, Style: yaml.DoubleQuotedStyle})
	}
	return n, nil
}

// withAdmin gives a central's service its admin listener and healthcheck.
func withAdmin(svc *Service) {
	svc.Environment = append(svc.Environment, env("ADMIN_ADDRESS", adminListen))
	svc.Healthcheck = &Healthcheck{
		Test:     flowList{"CMD", serverBin, "-health", HealthURL},
		Interval: healthInterval, Timeout: healthTimeout, Retries: healthRetries, StartPeriod: healthStartPeriod,
	}
}

// adminPorts publishes the admin listener of the central's node i
// (0-based; the single central is node 0) on the host's loopback.
func adminPorts(opt Options, i int) flowList {
	container := strconv.Itoa(AdminPort)
	switch {
	case opt.AdminHostPort == EphemeralAdminPort:
		return flowList{"127.0.0.1::" + container}
	case opt.AdminHostPort == 0:
		opt.AdminHostPort = DefaultAdminHostPort
	}
	return flowList{"127.0.0.1:" + strconv.Itoa(opt.AdminHostPort+i) + ":" + container}
}
