package xds

import (
	"context"
	"errors"
	"maps"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// typeCaches holds one go-control-plane snapshot cache per xDS type, so a
// push hands go-control-plane only the types whose content changed. With
// one cache for all types, every SetSnapshot makes go-control-plane diff
// every resource of every open watch of the proxy (createDeltaResponse
// walks the whole type and allocates a version map the size of it), even
// for the four types an EndpointSlice change leaves alone; that was most
// of pilot's CPU per change at a thousand proxies, and it grew with every
// resource telemetry adds (the SRDS scopes) although they never change.
//
// Order is kept: pilot sets the changed types in xdsTypes order, and
// go-control-plane's ADS streams (delta and SotW) send every watch's
// response through one channel, so Envoy still gets CDS before EDS before
// LDS before SRDS before RDS. A type pilot does not serve gets a watch in
// a cache that never has a snapshot: it waits, as an unanswered watch did
// before.
type typeCaches struct {
	byURL map[string]cache.SnapshotCache
	mux   *cache.MuxCache
}

// otherTypes is the mux key of the types pilot does not serve.
const otherTypes = "other"

func newTypeCaches(log cacheLogger) *typeCaches {
	c := &typeCaches{byURL: map[string]cache.SnapshotCache{}}
	all := map[string]cache.Cache{otherTypes: cache.NewSnapshotCache(true, cache.IDHash{}, log)}
	for _, t := range xdsTypes {
		url, _ := cache.GetResponseTypeURL(t)
		sc := cache.NewSnapshotCache(true, cache.IDHash{}, log)
		c.byURL[url], all[url] = sc, sc
	}
	key := func(url string) string {
		if _, ok := c.byURL[url]; ok {
			return url
		}
		return otherTypes
	}
	c.mux = &cache.MuxCache{
		Classify:      func(r *cache.Request) string { return key(r.GetTypeUrl()) },
		ClassifyDelta: func(r *cache.DeltaRequest) string { return key(r.GetTypeUrl()) },
		Caches:        all,
	}
	return c
}

// set gives go-control-plane the types of built whose version differs from
// last (all of them when last is nil), in xdsTypes order.
func (c *typeCaches) set(node string, built, last *builtSnapshot) error {
	for _, t := range xdsTypes {
		url, _ := cache.GetResponseTypeURL(t)
		if last != nil && built.versions[url] == last.versions[url] {
			continue
		}
		if err := c.byURL[url].SetSnapshot(context.Background(), node, built.forType(t)); err != nil {
			return err
		}
	}
	return nil
}

func (c *typeCaches) clear(node string) {
	for _, sc := range c.byURL {
		sc.ClearSnapshot(node)
	}
}

// typeSnapshot is one type of a proxy's snapshot, as the cache of that
// type sees it. Unlike cache.Snapshot, GetResources returns a map built
// once (shared by every proxy when the type is all namespace-wide)
// instead of a copy per call.
type typeSnapshot struct {
	url      string
	version  string
	items    map[string]types.ResourceWithTTL
	plain    map[string]types.Resource
	versions map[string]string
}

var _ cache.ResourceSnapshot = (*typeSnapshot)(nil)

func (s *typeSnapshot) GetVersion(url string) string {
	if url != s.url {
		return ""
	}
	return s.version
}

func (s *typeSnapshot) GetResourcesAndTTL(url string) map[string]types.ResourceWithTTL {
	if url != s.url {
		return nil
	}
	return s.items
}

func (s *typeSnapshot) GetResources(url string) map[string]types.Resource {
	if url != s.url {
		return nil
	}
	return s.plain
}

func (s *typeSnapshot) ConstructVersionMap() error {
	if s.versions == nil {
		return errors.New("snapshot without versions")
	}
	return nil
}

func (s *typeSnapshot) GetVersionMap(url string) map[string]string {
	if url != s.url {
		return nil
	}
	return s.versions
}

// forType is type t of b for its cache.
func (b *builtSnapshot) forType(t types.ResponseType) *typeSnapshot {
	url, _ := cache.GetResponseTypeURL(t)
	plain := b.shared.plain[t]
	if len(b.own.items[t]) > 0 {
		plain = maps.Clone(plain)
		for _, r := range b.own.items[t] {
			plain[r.name] = r.res
		}
	}
	res := b.snap.Resources[t]
	return &typeSnapshot{url: url, version: res.Version, items: res.Items, plain: plain, versions: b.snap.VersionMap[url]}
}
