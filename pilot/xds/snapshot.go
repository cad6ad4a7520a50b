package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weftmesh/weft/pilot/generator"
)

// xdsTypes are the resource types pilot serves, in the order Envoy applies
// them.
var xdsTypes = []types.ResponseType{types.Cluster, types.Endpoint, types.Listener, types.ScopedRoute, types.Route}

// part is a set of resources with the content hash of each and a digest
// per type, computed once and shared by every snapshot that includes it
// (the outbound part is shared by all proxies of a namespace).
type part struct {
	items  [types.UnknownType][]hashed
	digest [types.UnknownType][]byte
	names  [types.UnknownType]map[string]bool
	// index and versions are the part's resources and hashes by name, in
	// the form go-control-plane's snapshot wants; a snapshot whose proxy
	// adds nothing of a type (EDS, RDS) uses them as they are, so a
	// thousand proxies share one map instead of copying it.
	index    [types.UnknownType]map[string]types.ResourceWithTTL
	plain    [types.UnknownType]map[string]types.Resource
	versions [types.UnknownType]map[string]string
	bytes    int
	// consistent is the result of Snapshot.Consistent on the part alone.
	consistent error
}

type hashed struct {
	name string
	res  types.Resource
	hash string
	size int
}

// hashResource marshals a resource deterministically and hashes it.
func hashResource(res types.Resource) (hashed, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(res)
	if err != nil {
		return hashed{}, fmt.Errorf("marshal %s: %w", cache.GetResourceName(res), err)
	}
	sum := sha256.Sum256(b)
	return hashed{name: cache.GetResourceName(res), res: res, hash: hex.EncodeToString(sum[:12]), size: len(b)}, nil
}

// newPart hashes each resource (reusing known hashes, by identity) and
// checks the part's own consistency (every EDS/RDS name it references is in
// it, and nothing else).
func newPart(r *generator.Resources, known map[types.Resource]hashed) (*part, error) {
	p := &part{}
	add := func(t types.ResponseType, res types.Resource) error {
		h, ok := known[res]
		if !ok {
			var err error
			if h, err = hashResource(res); err != nil {
				return err
			}
		}
		p.items[t] = append(p.items[t], h)
		p.bytes += h.size
		return nil
	}
	for _, l := range r.Listeners {
		if err := add(types.Listener, l); err != nil {
			return nil, err
		}
	}
	for _, c := range r.Clusters {
		if err := add(types.Cluster, c); err != nil {
			return nil, err
		}
	}
	for _, rc := range r.Routes {
		if err := add(types.Route, rc); err != nil {
			return nil, err
		}
	}
	for _, e := range r.Endpoints {
		if err := add(types.Endpoint, e); err != nil {
			return nil, err
		}
	}
	for _, s := range r.ScopedRoutes {
		if err := add(types.ScopedRoute, s); err != nil {
			return nil, err
		}
	}
	alone := &cache.Snapshot{}
	for _, t := range xdsTypes {
		h := sha256.New()
		p.names[t] = make(map[string]bool, len(p.items[t]))
		p.index[t] = make(map[string]types.ResourceWithTTL, len(p.items[t]))
		p.plain[t] = make(map[string]types.Resource, len(p.items[t]))
		p.versions[t] = make(map[string]string, len(p.items[t]))
		for _, r := range p.items[t] {
			h.Write([]byte(r.name))
			h.Write([]byte{0})
			h.Write([]byte(r.hash))
			p.names[t][r.name] = true
			p.index[t][r.name] = types.ResourceWithTTL{Resource: r.res}
			p.plain[t][r.name] = r.res
			p.versions[t][r.name] = r.hash
		}
		p.digest[t] = h.Sum(nil)
		alone.Resources[t] = cache.Resources{Items: p.index[t]}
	}
	p.consistent = alone.Consistent()
	return p, nil
}

// builtSnapshot is a snapshot with its per-type versions and the parts it
// was built from.
type builtSnapshot struct {
	snap        *cache.Snapshot
	shared, own *part
	versions    map[string]string // type URL → version
	counts      map[string]int    // type URL → number of resources
	bytes       int
}

// buildSnapshot combines the namespace's shared part and the proxy's own
// part into a snapshot whose per-type version is a hash of the parts'
// digests, so a type is resent only when its content changed. The delta
// version map is filled from the same hashes, sparing go-control-plane a
// re-marshal of every resource per proxy.
//
// Consistency: each part passed Snapshot.Consistent on its own, and the
// parts share no names (checked here) and reference nothing across (the
// inbound side has no EDS clusters or RDS listeners), so their union is
// consistent. This replaces re-parsing every listener of every proxy on
// each push, which dominated pilot's CPU at a thousand proxies.
func buildSnapshot(shared, own *part) (*builtSnapshot, error) {
	if err := errors.Join(shared.consistent, own.consistent); err != nil {
		return nil, fmt.Errorf("inconsistent resources: %w", err)
	}
	out := &builtSnapshot{
		snap:     &cache.Snapshot{VersionMap: map[string]map[string]string{}},
		versions: map[string]string{},
		counts:   map[string]int{},
		bytes:    shared.bytes + own.bytes,
		shared:   shared,
		own:      own,
	}
	for _, t := range xdsTypes {
		url, _ := cache.GetResponseTypeURL(t)
		index, vmap := shared.index[t], shared.versions[t]
		if len(own.items[t]) > 0 {
			index, vmap = maps.Clone(index), maps.Clone(vmap)
			for _, r := range own.items[t] {
				if shared.names[t][r.name] {
					return nil, fmt.Errorf("resource %q is both shared and per-proxy", r.name)
				}
				index[r.name] = types.ResourceWithTTL{Resource: r.res}
				vmap[r.name] = r.hash
			}
		}
		h := sha256.New()
		h.Write(shared.digest[t])
		h.Write(own.digest[t])
		version := hex.EncodeToString(h.Sum(nil)[:8])
		out.snap.Resources[t] = cache.Resources{Version: version, Items: index}
		out.snap.VersionMap[url] = vmap
		out.versions[url] = version
		out.counts[url] = len(index)
	}
	return out, nil
}

// sameVersions reports whether two snapshots would send the same content.
func sameVersions(a, b *builtSnapshot) bool {
	if a == nil || b == nil {
		return false
	}
	for _, t := range awaitOrder {
		if a.versions[t] != b.versions[t] {
			return false
		}
	}
	return true
}
