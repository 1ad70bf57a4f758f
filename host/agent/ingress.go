package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/podsphere/podsphere/api"
)

// serveIngress runs the proxy's listeners until ctx ends. A listener that
// cannot open (port 80 taken) is logged, not fatal: the host's VMs matter
// more than its share of the Ingress traffic, which other hosts carry.
func (a *Agent) serveIngress(ctx context.Context) {
	l := a.cfg.IngressListen
	if l.HTTP == "" && l.HTTPS == "" {
		return
	}
	a.log.Printf("ingress proxy on %s (TLS %s)", orNone(l.HTTP), orNone(l.HTTPS))
	if err := a.cfg.Ingress.ListenAndServe(ctx, l); err != nil {
		a.log.Printf("ingress proxy stopped: %v", err)
	}
	a.cfg.Ingress.Close()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// handleIngressLog answers GET /ingress/log?n=100 (n 0: every kept entry).
func (a *Agent) handleIngressLog(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Ingress == nil {
		return fmt.Errorf("host %s runs no Ingress proxy: %w", a.cfg.Name, api.ErrNotFound)
	}
	n := 100
	if s := r.URL.Query().Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return fmt.Errorf("?n=%q: want a count of entries, 0 for all: %w", s, api.ErrInvalid)
		}
		n = v
	}
	entries, total := a.cfg.Ingress.Log().Last(n)
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(api.IngressLog{Host: a.host, Total: total, Entries: entries, Failing: a.cfg.Ingress.Health().Failing()})
}
