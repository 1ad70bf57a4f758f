package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// MaxBodyBytes bounds every JSON request body; larger ones are refused
// before anything is decoded.
const MaxBodyBytes = 1 << 20

// Handler is the HTTP API (docs/api.md).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, min role, h func(w http.ResponseWriter, r *http.Request, user string) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			rl := s.roleOf(r)
			if rl == roleNone {
				writeError(w, fmt.Errorf("missing or wrong bearer token (send Authorization: Bearer $(cat DATA_DIR/admin.token)): %w", api.ErrUnauthorized))
				return
			}
			if rl < min {
				writeError(w, fmt.Errorf("the join token may not %s %s; use the admin token: %w", r.Method, r.URL.Path, api.ErrUnauthorized))
				return
			}
			user := "admin"
			if rl == roleHost {
				user = "host"
			}
			if err := h(w, r, user); err != nil {
				writeError(w, err)
			}
		})
	}
	route("GET /api/v1/about", roleHost, s.handleAbout)
	route("GET /api/v1/object", roleHost, s.handleGet)
	route("GET /api/v1/list", roleHost, s.handleList)
	route("GET /api/v1/watch", roleHost, s.handleWatch)
	route("POST /api/v1/object", roleAdmin, s.handleCreate)
	route("PUT /api/v1/object", roleAdmin, s.handleUpdate)
	route("DELETE /api/v1/object", roleAdmin, s.handleDelete)
	route("PUT /api/v1/status", roleHost, s.handleStatus)
	route("POST /api/v1/power", roleAdmin, s.handlePower)
	route("POST /api/v1/migrate", roleAdmin, s.handleMigrate)
	route("GET /api/v1/pool", roleHost, s.handlePool)
	route("GET /api/v1/quota", roleHost, s.handleQuota)
	route("GET /api/v1/ha/plan", roleAdmin, s.handleHAPlan)
	route("GET /api/v1/ha/capacity", roleAdmin, s.handleHACapacity)
	route("POST /api/v1/hosts/join", roleHost, s.handleJoin)
	route("POST /api/v1/library/import", roleAdmin, s.handleLibraryImport)
	route("GET /api/v1/library/blob", roleHost, s.handleLibraryBlob)
	route("GET /api/v1/vm/logs", roleAdmin, s.handleVMLogs)
	route("GET /api/v1/ingress/log", roleAdmin, s.handleIngressLog)
	route("POST /api/v1/vm/exec", roleAdmin, s.handleVMExec)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if s.roleOf(r) == roleNone {
			writeError(w, fmt.Errorf("missing or wrong bearer token: %w", api.ErrUnauthorized))
			return
		}
		writeError(w, fmt.Errorf("no API at %s %s (see docs/api.md): %w", r.Method, r.URL.Path, api.ErrNotFound))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// statusOf maps a sentinel to its HTTP status and reason (api.Sentinels).
func statusOf(err error) (int, string) {
	s := api.SentinelOf(err)
	return s.HTTPStatus, s.Reason
}

func writeError(w http.ResponseWriter, err error) {
	code, reason := statusOf(err)
	writeJSON(w, code, api.ErrorBody{Error: trimSentinel(err), Reason: reason})
}

// trimSentinel is err's message without the sentinel's name repeated at
// its end (api.Message).
func trimSentinel(err error) string { return api.Message(err) }

// readJSON decodes a bounded body strictly into v.
func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return fmt.Errorf("reading request body: %v: %w", err, api.ErrInvalid)
	}
	if len(body) > MaxBodyBytes {
		return fmt.Errorf("request body is larger than %d bytes: %w", MaxBodyBytes, api.ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %s: %w", api.JSONProblem(err), api.ErrInvalid)
	}
	if dec.More() {
		return fmt.Errorf("request body: more than one JSON value: %w", api.ErrInvalid)
	}
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, api.ErrNotFound) }

func (s *Server) handleAbout(w http.ResponseWriter, r *http.Request, _ string) error {
	a := api.About{Name: "podsphere vcenter", Version: Version, APIVersion: "v1", Revision: s.store.Revision()}
	if s.member != nil {
		a.Members = s.member.NumMembers()
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, _ string) error {
	p := r.URL.Query().Get("path")
	if _, err := api.ParsePath(p); err != nil {
		return err
	}
	o, err := s.store.Get(p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

// query builds a store query from list/watch parameters.
func query(r *http.Request) (store.Query, error) {
	v := r.URL.Query()
	q := store.Query{Kind: v.Get("kind"), Prefix: v.Get("prefix")}
	if q.Kind != "" && !slices.Contains(api.Kinds, q.Kind) {
		return q, fmt.Errorf("kind %q: want one of %v: %w", q.Kind, api.Kinds, api.ErrInvalid)
	}
	if q.Prefix != "" && q.Prefix != "/" {
		if len(q.Prefix) == 0 || q.Prefix[0] != '/' {
			return q, fmt.Errorf("prefix %q must be an absolute path: %w", q.Prefix, api.ErrInvalid)
		}
	}
	if q.Prefix == "/" {
		q.Prefix = ""
	}
	sel, err := labels.Parse(v.Get("selector"))
	if err != nil {
		return q, err
	}
	q.Selector = sel
	if h := v.Get("host"); h != "" {
		q.Filter = inventory.OnHost(h)
	}
	return q, nil
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request, _ string) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	l := s.store.List(q)
	if l.Items == nil {
		l.Items = []*api.Object{}
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

// handleWatch streams newline-delimited JSON watch events. A blank line is
// sent every 15 s so proxies and clients can tell a quiet stream from a dead one.
func (s *Server) handleWatch(w http.ResponseWriter, r *http.Request, _ string) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	var from uint64
	if f := r.URL.Query().Get("from"); f != "" {
		if from, err = strconv.ParseUint(f, 10, 64); err != nil {
			return fmt.Errorf("from %q is not a revision: %w", f, api.ErrInvalid)
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	wt, err := s.store.Watch(ctx, q, from)
	if err != nil {
		return err
	}
	defer wt.Stop()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	enc := json.NewEncoder(w)
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-wt.Events():
			if !ok {
				if werr := wt.Err(); werr != nil {
					code, reason := statusOf(werr)
					_ = code
					o := &api.Object{}
					o.SetStatus(api.ErrorBody{Error: trimSentinel(werr), Reason: reason})
					_ = enc.Encode(api.WatchEvent{Type: "ERROR", Object: o})
				}
				return nil
			}
			if err := enc.Encode(ev); err != nil {
				return nil
			}
			// Flush only when nothing else is queued, so bursts go out in few writes.
			if fl != nil && len(wt.Events()) == 0 {
				fl.Flush()
			}
		case <-tick.C:
			if _, err := w.Write([]byte("\n")); err != nil {
				return nil
			}
			if fl != nil {
				fl.Flush()
			}
		case <-s.stop:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, user string) error {
	var o api.Object
	if err := readJSON(r, &o); err != nil {
		return err
	}
	out, err := s.inv.Create(user, &o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request, user string) error {
	var o api.Object
	if err := readJSON(r, &o); err != nil {
		return err
	}
	out, err := s.inv.Change(user, &o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, user string) error {
	v := r.URL.Query()
	var rv uint64
	if s := v.Get("resourceVersion"); s != "" {
		var err error
		if rv, err = strconv.ParseUint(s, 10, 64); err != nil {
			return fmt.Errorf("resourceVersion %q is not a number: %w", s, api.ErrInvalid)
		}
	}
	if err := s.remove(user, v.Get("path"), inventory.RemoveOptions{ResourceVersion: rv, Children: v.Get("children") == "true", Namespace: v.Get("namespace") == "true"}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, user string) error {
	var o api.Object
	if err := readJSON(r, &o); err != nil {
		return err
	}
	out, err := s.inv.SetStatus(user, &o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handlePower(w http.ResponseWriter, r *http.Request, user string) error {
	var req api.PowerRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	out, err := s.inv.Power(user, req.Path, req.Action)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleMigrate(w http.ResponseWriter, r *http.Request, user string) error {
	var req api.MigrateRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	out, err := s.inv.Migrate(user, req.Path, req.Host)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handlePool(w http.ResponseWriter, r *http.Request, _ string) error {
	info, err := s.inv.PoolInfo(r.URL.Query().Get("path"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

func (s *Server) handleQuota(w http.ResponseWriter, r *http.Request, _ string) error {
	info, err := s.inv.QuotaInfo(r.URL.Query().Get("path"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request, user string) error {
	var req api.JoinRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	reply, err := s.inv.Join(req)
	if err != nil {
		return err
	}
	if s.member != nil {
		reply.GossipSeed = []string{s.member.Addr()}
	}
	writeJSON(w, http.StatusOK, reply)
	return nil
}

// remove deletes an object; removing a library item is ordered with
// imports, so one request never removes an archive another just committed.
func (s *Server) remove(user, path string, opt inventory.RemoveOptions) error {
	if ref, err := api.ParsePath(path); err == nil && ref.Kind == api.KindImage {
		s.libMu.Lock()
		defer s.libMu.Unlock()
	}
	return s.inv.Remove(user, path, opt)
}

func (s *Server) handleHACapacity(w http.ResponseWriter, r *http.Request, _ string) error {
	c, err := s.inv.HACapacity(r.URL.Query().Get("cluster"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) handleHAPlan(w http.ResponseWriter, r *http.Request, _ string) error {
	v := r.URL.Query()
	var fail []string
	for _, f := range strings.Split(v.Get("fail"), ",") {
		if f = strings.TrimSpace(f); f != "" {
			fail = append(fail, f)
		}
	}
	plan, err := s.inv.HAPlan(v.Get("cluster"), fail)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, plan)
	return nil
}
