package controllers

import (
	"sync"

	"github.com/podsphere/podsphere/api"
)

// vmCache keeps the decoded spec and status of the VM versions a
// controller has seen, so a reconcile decodes only the members that changed
// since the last one instead of every member of a 10,000-replica set. A
// version is a path with its UID and resourceVersion: a stored version never
// changes, so a hit is exactly what decoding it again would give. What it
// returns is shared between reconciles: read it, never modify it.
type vmCache struct {
	mu sync.Mutex
	m  map[string]decodedVM
}

type decodedVM struct {
	uid    string
	rv     uint64
	spec   api.VMSpec
	status api.VMStatus
}

// decode returns o's spec and status.
func (c *vmCache) decode(o *api.Object) (api.VMSpec, api.VMStatus) {
	c.mu.Lock()
	d, ok := c.m[o.Path]
	c.mu.Unlock()
	if ok && d.rv == o.ResourceVersion && d.uid == o.UID {
		return d.spec, d.status
	}
	d = decodedVM{uid: o.UID, rv: o.ResourceVersion}
	_ = o.DecodeSpec(&d.spec)
	_ = o.DecodeStatus(&d.status)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]decodedVM{}
	}
	c.m[o.Path] = d
	c.mu.Unlock()
	return d.spec, d.status
}

// forget drops a VM that is gone (called from Keys, so it must be quick).
func (c *vmCache) forget(path string) {
	c.mu.Lock()
	delete(c.m, path)
	c.mu.Unlock()
}
