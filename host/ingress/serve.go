package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Listeners say where the proxy answers.
type Listeners struct {
	HTTP  string // ":80"
	HTTPS string // ":443", served only when there are certificates
	// H2C lets clients speak HTTP/2 without TLS (prior knowledge), as
	// gRPC clients inside a datacenter do.
	H2C bool
}

// Server timeouts: headers must come within ReadHeaderTimeout (slowloris);
// bodies and streams have no deadline (uploads and WebSockets last), and
// idle keep-alive connections close after IdleTimeout.
const (
	ReadHeaderTimeout = 10 * time.Second
	ClientIdleTimeout = 75 * time.Second // nginx's keepalive_timeout
	ShutdownGrace     = 10 * time.Second
)

// Server makes the http.Server the proxy answers on.
func (p *Proxy) Server(h2c bool) *http.Server {
	s := &http.Server{Handler: p, ReadHeaderTimeout: ReadHeaderTimeout, IdleTimeout: ClientIdleTimeout}
	s.Protocols = new(http.Protocols)
	s.Protocols.SetHTTP1(true)
	s.Protocols.SetHTTP2(true)
	s.Protocols.SetUnencryptedHTTP2(h2c)
	if p.certs != nil {
		s.TLSConfig = &tls.Config{GetCertificate: p.certs.GetCertificate, MinVersion: tls.VersionTLS12}
	}
	return s
}

// ListenAndServe answers on l until ctx ends, then lets requests in
// flight finish (up to ShutdownGrace).
func (p *Proxy) ListenAndServe(ctx context.Context, l Listeners) error {
	var lns []net.Listener
	var servers []*http.Server
	tlsAt := -1
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	if l.HTTP != "" {
		ln, err := net.Listen("tcp", l.HTTP)
		if err != nil {
			return fmt.Errorf("ingress: listen on %s: %w", l.HTTP, err)
		}
		lns = append(lns, ln)
		servers = append(servers, p.Server(l.H2C))
	}
	if l.HTTPS != "" && p.certs != nil {
		if err := p.certs.Reload(); err != nil && !p.certs.Any() {
			closeAll()
			return err
		}
		if p.certs.Any() {
			ln, err := net.Listen("tcp", l.HTTPS)
			if err != nil {
				closeAll()
				return fmt.Errorf("ingress: listen on %s: %w", l.HTTPS, err)
			}
			lns = append(lns, ln)
			servers = append(servers, p.Server(false))
			tlsAt = len(servers) - 1
		}
	}
	errs := make(chan error, len(servers))
	for i, s := range servers {
		if i == tlsAt {
			// ServeTLS offers h2 and http/1.1 (ALPN): HTTP/2 to TLS clients.
			go func() { errs <- s.ServeTLS(lns[i], "", "") }()
			continue
		}
		go func() { errs <- s.Serve(lns[i]) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errs:
		if !errors.Is(err, http.ErrServerClosed) {
			for _, s := range servers {
				s.Close()
			}
			return fmt.Errorf("ingress: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	return nil
}
