package ingress

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Certs are the certificates TLS termination serves, from a directory of
// NAME.crt / NAME.key pairs, NAME being an Ingress's tls[].secretName
// (until Secrets arrive with the storage work). A client's server name
// picks the certificate its Ingress names for that host (exact, then the
// wildcard one label up); a name no Ingress lists gets the first pair
// whose certificate covers it, else the first pair.
type Certs struct {
	Dir string

	mu      sync.RWMutex
	byName  map[string]*tls.Certificate
	order   []string
	names   map[string]string // host -> certificate name
	modTime time.Time
}

// Reload reads the directory again when it changed. A pair that does not
// load is an error naming its files; the others are served.
func (c *Certs) Reload() error {
	st, err := os.Stat(c.Dir)
	if err != nil {
		return fmt.Errorf("ingress certificates: %w", err)
	}
	c.mu.RLock()
	same := c.byName != nil && st.ModTime().Equal(c.modTime)
	c.mu.RUnlock()
	if same {
		return nil
	}
	crts, err := filepath.Glob(filepath.Join(c.Dir, "*.crt"))
	if err != nil {
		return err
	}
	by := map[string]*tls.Certificate{}
	var order []string
	var bad []string
	for _, crt := range crts {
		name := strings.TrimSuffix(filepath.Base(crt), ".crt")
		key := strings.TrimSuffix(crt, ".crt") + ".key"
		pair, err := tls.LoadX509KeyPair(crt, key)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s with %s: %v", crt, key, err))
			continue
		}
		if pair.Leaf == nil && len(pair.Certificate) > 0 {
			pair.Leaf, _ = x509.ParseCertificate(pair.Certificate[0])
		}
		by[name] = &pair
		order = append(order, name)
	}
	c.mu.Lock()
	c.byName, c.order, c.modTime = by, order, st.ModTime()
	c.mu.Unlock()
	if len(bad) > 0 {
		return fmt.Errorf("ingress certificates not loaded: %s", strings.Join(bad, "; "))
	}
	return nil
}

// Any reports whether there is a certificate to serve.
func (c *Certs) Any() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.order) > 0
}

// SetNames is the route table's host -> certificate name map.
func (c *Certs) SetNames(names map[string]string) {
	c.mu.Lock()
	c.names = names
	c.mu.Unlock()
}

// GetCertificate is tls.Config's: the certificate for the client's server name.
func (c *Certs) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	host := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	name, ok := c.names[host]
	if !ok {
		if i := strings.IndexByte(host, '.'); i > 0 {
			name, ok = c.names["*"+host[i:]]
		}
	}
	if cert := c.byName[name]; ok && cert != nil {
		return cert, nil
	}
	for _, n := range c.order {
		if l := c.byName[n].Leaf; l != nil && host != "" && l.VerifyHostname(host) == nil {
			return c.byName[n], nil
		}
	}
	if len(c.order) == 0 {
		return nil, fmt.Errorf("no certificate in %s", c.Dir)
	}
	return c.byName[c.order[0]], nil
}
