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
// flight finish (up to ShutdownGrace). Plain HTTP is served by the
// proxy's own HTTP/1.1 loop (http1.go), TLS by net/http's server (HTTP/2
// and HTTP/1.1).
func (p *Proxy) ListenAndServe(ctx context.Context, l Listeners) error {
	var plain, secure net.Listener
	closeAll := func() {
		for _, ln := range []net.Listener{plain, secure} {
			if ln != nil {
				ln.Close()
			}
		}
	}
	var err error
	if l.HTTP != "" {
		if plain, err = net.Listen("tcp", l.HTTP); err != nil {
			return fmt.Errorf("ingress: listen on %s: %w", l.HTTP, err)
		}
	}
	if l.HTTPS != "" && p.certs != nil {
		if err := p.certs.Reload(); err != nil && !p.certs.Any() {
			closeAll()
			return err
		}
		if p.certs.Any() {
			if secure, err = net.Listen("tcp", l.HTTPS); err != nil {
				closeAll()
				return fmt.Errorf("ingress: listen on %s: %w", l.HTTPS, err)
			}
		}
	}
	errs := make(chan error, 3)
	var h1 *h1Server
	var servers []*http.Server
	if plain != nil {
		h1 = &h1Server{p: p, conns: map[*h1Conn]struct{}{}}
		if l.H2C {
			h1.h2c = newHandoff(plain.Addr())
			s := p.Server(true)
			s.Protocols = new(http.Protocols)
			s.Protocols.SetUnencryptedHTTP2(true)
			servers = append(servers, s)
			go func() { errs <- s.Serve(h1.h2c) }()
		}
		go func() { errs <- h1.serve(plain) }()
	}
	if secure != nil {
		// ServeTLS offers h2 and http/1.1 (ALPN): HTTP/2 to TLS clients.
		s := p.Server(false)
		servers = append(servers, s)
		go func() { errs <- s.ServeTLS(secure, "", "") }()
	}
	var failed error
	select {
	case <-ctx.Done():
	case err := <-errs:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			failed = fmt.Errorf("ingress: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if h1 != nil {
		h1.stopping.Store(true)
		plain.Close()
		if h1.h2c != nil {
			h1.h2c.Close()
		}
	}
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	if h1 != nil {
		h1.shutdown(sctx)
	}
	return failed
}
