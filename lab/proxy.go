package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/podsphere/podsphere/host/network"
)

// ProxyDialTimeout bounds one dial to vcenter inside the lab.
const ProxyDialTimeout = 5 * time.Second

// Proxy forwards TCP connections accepted on listen (a loopback address in
// the caller's namespace) to target, dialed from inside the network
// namespace pinned at netnsPath. This is how psc in the machine's shell
// reaches the lab's vcenter without a route, address or iptables rule in the
// root namespace. The bound address is written to addrFile once listening.
func Proxy(ctx context.Context, listen, netnsPath, target, addrFile string, logger *log.Logger) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	if addrFile != "" {
		tmp := addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, addrFile); err != nil {
			return err
		}
	}
	logger.Printf("forwarding %s to %s inside %s", ln.Addr(), target, filepath.Base(netnsPath))
	go func() { <-ctx.Done(); ln.Close() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := forward(ctx, c, netnsPath, target); err != nil {
				logger.Printf("%s: %v", c.RemoteAddr(), err)
			}
		}()
	}
}

// dialIn opens a TCP connection from inside the namespace at nsPath: the
// socket is created on a thread switched into it and stays there.
func dialIn(nsPath, target string) (net.Conn, error) {
	var c net.Conn
	err := network.InNetNS(nsPath, func() error {
		var err error
		c, err = net.DialTimeout("tcp", target, ProxyDialTimeout)
		return err
	})
	return c, err
}

func forward(ctx context.Context, down net.Conn, nsPath, target string) error {
	defer down.Close()
	up, err := dialIn(nsPath, target)
	if err != nil {
		return fmt.Errorf("dial %s in %s: %w", target, nsPath, err)
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() { down.Close(); up.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // pass the half-close on: HTTP clients and streams end cleanly
		}
		done <- struct{}{}
	}
	go pipe(up, down)
	go pipe(down, up)
	<-done
	<-done
	return nil
}
