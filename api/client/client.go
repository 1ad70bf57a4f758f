// Package client is the Go client of vcenter's HTTP API, used by psc and by
// host agents. Errors come back wrapped onto the api sentinels, so callers
// test them with errors.Is exactly as they would inside vcenter.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
)

// Client talks to one vcenter.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client for the vcenter at baseURL (http://127.0.0.1:8989).
func New(baseURL, token string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("vcenter URL %q: want http://HOST:PORT: %w", baseURL, api.ErrInvalid)
	}
	return &Client{
		base:  strings.TrimRight(baseURL, "/"),
		token: token,
		// No overall timeout: watches and log streams are long-lived; callers bound requests with ctx.
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}},
	}, nil
}

// ListOptions selects objects for List and Watch.
type ListOptions struct {
	Kind     string
	Prefix   string
	Selector string // label selector, app=web,tier=db
	Host     string // VMs whose spec.host is this host path
}

func (o ListOptions) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("kind", o.Kind)
	set("prefix", o.Prefix)
	set("selector", o.Selector)
	set("host", o.Host)
	return v
}

// ErrGone is api.ErrGone: a watch asked to resume from a compacted revision;
// re-list and watch again.
var ErrGone = api.ErrGone

// remoteError keeps vcenter's message verbatim while matching the sentinel.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, out any) error {
	resp, err := c.send(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: bad answer from vcenter: %v: %w", method, path, err, api.ErrUnavailable)
	}
	return nil
}

// send performs a request and turns every non-2xx answer into an error.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd = b
		ctype = "application/octet-stream"
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode request: %v: %w", err, api.ErrInvalid)
		}
		rd = bytes.NewReader(buf)
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %w", method, path, err, api.ErrInvalid)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach vcenter at %s: %v: %w", c.base, err, api.ErrUnavailable)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	eb, ok := api.ReadErrorBody(resp)
	if !ok {
		eb.Error = method + " " + path + ": " + eb.Error
	}
	return nil, &remoteError{msg: eb.Error, sentinel: api.ErrorForReason(eb.Reason)}
}

// About reports vcenter's identity and store revision.
func (c *Client) About(ctx context.Context) (*api.About, error) {
	var a api.About
	return &a, c.do(ctx, http.MethodGet, "/api/v1/about", nil, nil, &a)
}

// Get reads one object by inventory path.
func (c *Client) Get(ctx context.Context, path string) (*api.Object, error) {
	var o api.Object
	return &o, c.do(ctx, http.MethodGet, "/api/v1/object", url.Values{"path": {path}}, nil, &o)
}

// List reads every object matching opts, with the revision to watch from.
func (c *Client) List(ctx context.Context, opts ListOptions) (*api.List, error) {
	var l api.List
	return &l, c.do(ctx, http.MethodGet, "/api/v1/list", opts.values(), nil, &l)
}

// Create writes a new object; the answer carries its UID and resourceVersion.
func (c *Client) Create(ctx context.Context, o *api.Object) (*api.Object, error) {
	var out api.Object
	return &out, c.do(ctx, http.MethodPost, "/api/v1/object", nil, o, &out)
}

// Update replaces an object's labels and spec; o.ResourceVersion must be current.
func (c *Client) Update(ctx context.Context, o *api.Object) (*api.Object, error) {
	var out api.Object
	return &out, c.do(ctx, http.MethodPut, "/api/v1/object", nil, o, &out)
}

// UpdateStatus replaces an object's status only (host agents, controllers).
func (c *Client) UpdateStatus(ctx context.Context, o *api.Object) (*api.Object, error) {
	var out api.Object
	return &out, c.do(ctx, http.MethodPut, "/api/v1/status", nil, o, &out)
}

// DeleteOptions qualify Delete.
type DeleteOptions struct {
	ResourceVersion uint64 // 0 = whatever is current
	Children        bool   // pool.destroy -children: also destroy child pools (VMs move up)
	// Namespace deletes a namespace: its pool and everything in it.
	Namespace bool
}

// Delete removes an object.
func (c *Client) Delete(ctx context.Context, path string, opts DeleteOptions) error {
	q := url.Values{"path": {path}}
	if opts.ResourceVersion != 0 {
		q.Set("resourceVersion", strconv.FormatUint(opts.ResourceVersion, 10))
	}
	if opts.Children {
		q.Set("children", "true")
	}
	if opts.Namespace {
		q.Set("namespace", "true")
	}
	return c.do(ctx, http.MethodDelete, "/api/v1/object", q, nil, nil)
}

// Migrate runs vm.migrate: a cold migration of the VM at path to host
// (a host path, "" for DRS's choice).
func (c *Client) Migrate(ctx context.Context, path, host string) (*api.Object, error) {
	var out api.Object
	return &out, c.do(ctx, http.MethodPost, "/api/v1/migrate", nil, api.MigrateRequest{Path: path, Host: host}, &out)
}

// Power runs vm.power: action is on, off, reset or suspend.
func (c *Client) Power(ctx context.Context, path, action string) (*api.Object, error) {
	var out api.Object
	return &out, c.do(ctx, http.MethodPost, "/api/v1/power", nil, api.PowerRequest{Path: path, Action: action}, &out)
}

// Pool reads a pool with its usage figures.
func (c *Client) Pool(ctx context.Context, path string) (*api.PoolInfo, error) {
	var out api.PoolInfo
	return &out, c.do(ctx, http.MethodGet, "/api/v1/pool", url.Values{"path": {path}}, nil, &out)
}

// Quota reads a pool's quota limits and its subtree's use.
func (c *Client) Quota(ctx context.Context, path string) (*api.QuotaInfo, error) {
	var out api.QuotaInfo
	return &out, c.do(ctx, http.MethodGet, "/api/v1/quota", url.Values{"path": {path}}, nil, &out)
}

// HAPlan asks what HA would do if the hosts in fail failed now.
func (c *Client) HAPlan(ctx context.Context, cluster string, fail []string) (*api.HAPlan, error) {
	var out api.HAPlan
	q := url.Values{"cluster": {cluster}, "fail": {strings.Join(fail, ",")}}
	return &out, c.do(ctx, http.MethodGet, "/api/v1/ha/plan", q, nil, &out)
}

// HACapacity reads the cluster's HA failover capacity (admission control).
func (c *Client) HACapacity(ctx context.Context, cluster string) (*api.HACapacity, error) {
	var out api.HACapacity
	return &out, c.do(ctx, http.MethodGet, "/api/v1/ha/capacity", url.Values{"cluster": {cluster}}, nil, &out)
}

// Join registers a host with the join token this client was made with.
func (c *Client) Join(ctx context.Context, req api.JoinRequest) (*api.JoinReply, error) {
	var out api.JoinReply
	return &out, c.do(ctx, http.MethodPost, "/api/v1/hosts/join", nil, req, &out)
}

// Watch streams changes after revision from (0 = from now). The channel
// closes when ctx ends or the stream breaks; then wait() says why (nil on
// ctx cancel, an error wrapping ErrGone when from was compacted away).
func (c *Client) Watch(ctx context.Context, opts ListOptions, from uint64) (<-chan api.WatchEvent, func() error, error) {
	q := opts.values()
	q.Set("from", strconv.FormatUint(from, 10))
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/watch", q, nil)
	if err != nil {
		return nil, nil, err
	}
	ch := make(chan api.WatchEvent, 64)
	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 {
				continue // keep-alive
			}
			var ev api.WatchEvent
			if err := json.Unmarshal(line, &ev); err != nil {
				werr = fmt.Errorf("watch: bad event: %v: %w", err, api.ErrUnavailable)
				return
			}
			if ev.Type == "ERROR" {
				var eb api.ErrorBody
				_ = json.Unmarshal(ev.Object.Status, &eb)
				werr = &remoteError{msg: eb.Error, sentinel: api.ErrorForReason(eb.Reason)}
				return
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() == nil {
			werr = fmt.Errorf("watch stream ended: %v: %w", sc.Err(), api.ErrUnavailable)
		}
	}()
	return ch, func() error { <-done; return werr }, nil
}

// Raw performs a request whose answer is a stream (logs, library blobs);
// the caller closes the body.
func (c *Client) Raw(ctx context.Context, method, path string, q url.Values, body io.Reader) (io.ReadCloser, error) {
	var b any
	if body != nil {
		b = body
	}
	resp, err := c.send(ctx, method, path, q, b)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Do performs a JSON request against any API path (used by verbs with their own endpoints).
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	return c.do(ctx, method, path, q, body, out)
}
