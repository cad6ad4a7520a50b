package annotation

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// StatusVersion is the version of SidecarStatus this build writes and reads.
// Fields may be added within a version (readers ignore unknown fields); any
// change a v1 reader would misread bumps it, and readers refuse versions
// they do not know rather than program the wrong iptables rules.
const StatusVersion = 1

// Fixed ports and identity of the sidecar (DESIGN.md, "Names, ports,
// conventions"). They are constants so the injector, weft-redirect and
// weft-agent cannot drift apart; SidecarStatus still records the ones
// weft-redirect uses, so a pod keeps the rules it was injected for.
const (
	ProxyUID            = 1337  // UID of weft-agent and Envoy; its traffic is never redirected
	ProxyGID            = 1337  // GID of weft-agent and Envoy
	OutboundCapturePort = 15001 // Envoy's outbound listener: iptables REDIRECT target for outbound
	InboundCapturePort  = 15006 // Envoy's inbound listener: iptables REDIRECT target for inbound
	AgentPort           = 15020 // weft-agent: metrics and rewritten app probes
	HealthPort          = 15021 // weft-agent readiness (/healthz/ready)
	EnvoyPrometheusPort = 15090 // Envoy's Prometheus stats
)

// CaptureAllInbound is the IncludeInboundPorts value that captures every
// inbound port (minus the excluded ones).
const CaptureAllInbound = "*"

// RequiredExcludedInboundPorts are the sidecar's own ports that the kubelet
// and Prometheus reach directly, so they must never be redirected to Envoy:
// every valid SidecarStatus excludes them.
func RequiredExcludedInboundPorts() []uint16 {
	return []uint16{AgentPort, HealthPort, EnvoyPrometheusPort}
}

// SidecarStatus is the JSON value of StatusAnnotation: what the injector
// added to the pod and how its traffic must be captured. weft-redirect
// programs the pod's netns from it alone (it runs before any container,
// with no API access but the pod's annotations), so every field it needs
// is here rather than derived from flags. Example:
//
//	{"v":1,"image":"weft.local/sidecar:dev","revision":"default",
//	 "proxyUID":1337,"proxyGID":1337,"outboundPort":15001,"inboundPort":15006,
//	 "includeInboundPorts":"*","excludeInboundPorts":[15020,15021,15090],
//	 "excludeOutboundPorts":[5432],"excludeOutboundCIDRs":["169.254.169.254/32"]}
type SidecarStatus struct {
	// Version is StatusVersion at the time of injection.
	Version int `json:"v"`
	// Image is the injected sidecar image (its tag is the sidecar version).
	Image string `json:"image"`
	// Revision is the control-plane revision that injected the pod.
	Revision string `json:"revision"`
	// ProxyUID and ProxyGID own the sidecar's processes; traffic from them
	// is exempt from redirection, or Envoy would loop to itself.
	ProxyUID int64 `json:"proxyUID"`
	ProxyGID int64 `json:"proxyGID"`
	// OutboundPort is where outbound TCP is redirected (15001).
	OutboundPort uint16 `json:"outboundPort"`
	// InboundPort is where inbound TCP is redirected (15006).
	InboundPort uint16 `json:"inboundPort"`
	// IncludeInboundPorts is "*" (capture every inbound port) or a
	// comma-separated list of ports to capture; see InboundCapture.
	IncludeInboundPorts string `json:"includeInboundPorts"`
	// ExcludeInboundPorts bypass the sidecar inbound, sorted; always
	// contains RequiredExcludedInboundPorts.
	ExcludeInboundPorts []uint16 `json:"excludeInboundPorts"`
	// ExcludeOutboundPorts bypass the sidecar outbound, sorted.
	ExcludeOutboundPorts []uint16 `json:"excludeOutboundPorts,omitempty"`
	// ExcludeOutboundCIDRs are destinations that bypass the sidecar,
	// normalised (masked) and sorted.
	ExcludeOutboundCIDRs []netip.Prefix `json:"excludeOutboundCIDRs,omitempty"`
}

// ParseStatus decodes and validates the StatusAnnotation value, so a reader
// never programs rules from a half-understood status.
func ParseStatus(s string) (SidecarStatus, error) {
	var st SidecarStatus
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		return SidecarStatus{}, fmt.Errorf("decode %s: %w", StatusAnnotation, err)
	}
	if err := st.Validate(); err != nil {
		return SidecarStatus{}, fmt.Errorf("invalid %s: %w", StatusAnnotation, err)
	}
	return st, nil
}

// String is the annotation value: compact JSON, fields in a fixed order so
// re-injection produces byte-identical annotations.
func (s SidecarStatus) String() string {
	b, err := json.Marshal(s)
	if err != nil {
		// Unreachable: the struct holds only strings, integers and
		// netip.Prefix, which always marshal.
		panic(fmt.Sprintf("encode sidecar status: %v", err))
	}
	return string(b)
}

// Validate reports the first problem that would make weft-redirect program
// wrong rules.
func (s SidecarStatus) Validate() error {
	if s.Version != StatusVersion {
		return fmt.Errorf("unsupported version %d (this build understands %d)", s.Version, StatusVersion)
	}
	if s.Image == "" || s.Revision == "" {
		return errors.New("image and revision must be set")
	}
	if s.ProxyUID <= 0 || s.ProxyGID <= 0 {
		return fmt.Errorf("proxy uid/gid must be positive, got %d/%d", s.ProxyUID, s.ProxyGID)
	}
	if s.OutboundPort == 0 || s.InboundPort == 0 || s.OutboundPort == s.InboundPort {
		return fmt.Errorf("outbound and inbound ports must be distinct and non-zero, got %d/%d", s.OutboundPort, s.InboundPort)
	}
	if _, _, err := s.InboundCapture(); err != nil {
		return err
	}
	if slices.Contains(s.ExcludeInboundPorts, 0) || slices.Contains(s.ExcludeOutboundPorts, 0) {
		return errors.New("port 0 cannot be excluded")
	}
	for _, p := range RequiredExcludedInboundPorts() {
		if !slices.Contains(s.ExcludeInboundPorts, p) {
			return fmt.Errorf("excludeInboundPorts must contain %d", p)
		}
	}
	for _, c := range s.ExcludeOutboundCIDRs {
		if !c.IsValid() {
			return fmt.Errorf("invalid excluded CIDR %v", c)
		}
	}
	return nil
}

// InboundCapture interprets IncludeInboundPorts: all is true for "*",
// otherwise ports lists the captured ports (possibly none).
func (s SidecarStatus) InboundCapture() (all bool, ports []uint16, err error) {
	if strings.TrimSpace(s.IncludeInboundPorts) == CaptureAllInbound {
		return true, nil, nil
	}
	ports, err = ParsePortList(s.IncludeInboundPorts)
	if err != nil {
		return false, nil, fmt.Errorf("includeInboundPorts: %w", err)
	}
	return false, ports, nil
}

// ParsePortList parses the comma-separated port lists of the exclude
// annotations ("8080, 9090"): sorted, de-duplicated, each in 1-65535. An
// empty string is an empty list.
func ParsePortList(s string) ([]uint16, error) {
	var ports []uint16
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("invalid port %q: want a number in 1-65535", f)
		}
		ports = append(ports, uint16(n))
	}
	slices.Sort(ports)
	return slices.Compact(ports), nil
}

// ParseCIDRList parses the comma-separated CIDR list of
// ExcludeOutboundIPRangesAnnotation. A bare address means that address
// alone (/32 or /128); prefixes are masked ("10.1.2.3/8" is 10.0.0.0/8),
// sorted and de-duplicated so equal inputs give equal statuses.
func ParseCIDRList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := parsePrefixOrAddr(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out), nil
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: %w", s, err)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: %w", s, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
