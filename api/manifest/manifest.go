// Package manifest decodes the files admins hand to `psc apply -f` and
// `psc delete -f` into api.Objects: podsphere's own kinds (apiVersion
// podsphere.io/v1) and the Kubernetes kinds podsphere maps onto its
// inventory (Namespace, ResourceQuota, Pod, Service; Deployment, ReplicaSet,
// DaemonSet, Job and HorizontalPodAutoscaler).
//
// Decoding is strict: unknown fields, duplicate keys and wrong types are
// errors naming the document and the field, so a typo never silently turns
// into a default. It is pure: no I/O beyond reading the stream, no clock.
package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/podsphere/podsphere/api"
	"sigs.k8s.io/yaml"
)

// MaxStreamBytes bounds one manifest stream. Manifests are hand-written
// configuration; anything larger is a mistake (or an attack) and should be
// split into several files.
const MaxStreamBytes = 4 << 20

// Context places Kubernetes kinds, which name no datacenter or cluster, and
// resolves podsphere kinds given by metadata.name instead of metadata.path.
// psc fills it from PSC_DATACENTER and PSC_CLUSTER.
type Context struct {
	Datacenter string
	Cluster    string
}

// Merge says how much of an Item's object the applier owns.
type Merge int

const (
	// MergeReplace: the object is the whole desired state. apply creates it
	// or replaces its spec and labels; delete deletes it.
	MergeReplace Merge = iota
	// MergeQuota: the object is a ResourcePool carrying only spec.quota (from
	// a Kubernetes ResourceQuota). apply reads the existing pool and sets its
	// quota, leaving allocations and labels alone; delete clears the quota
	// and keeps the pool.
	MergeQuota
)

func (m Merge) String() string {
	switch m {
	case MergeReplace:
		return "replace"
	case MergeQuota:
		return "quota"
	}
	return "merge(" + strconv.Itoa(int(m)) + ")"
}

// Item is one object decoded from a manifest, with where it came from so
// psc can report per document ("Pod web -> /dc1/vm/web configured").
type Item struct {
	Doc        int    // 1-based number of the document in the stream (empty documents are not counted)
	APIVersion string // as written: "v1", "podsphere.io/v1"
	Kind       string // as written: "Pod", "ResourcePool"
	Name       string // metadata.name, or metadata.path when the document gave a path
	Object     *api.Object
	Merge      Merge
	// Keep lists the spec fields the document left out that apply keeps
	// from the existing object instead of resetting them to their defaults:
	// "replicas" of a Deployment or ReplicaSet, which an autoscaler scales
	// (kubectl apply leaves a field it never set alone, too).
	Keep []string
}

// String names the item as errors do: `document 2 (Pod "web")`.
func (it Item) String() string { return docLabel(it.Doc, it.Kind, it.Name) }

// Error is a decode failure. It matches api.ErrInvalid with errors.Is.
type Error struct {
	Doc   int    // 1-based document number; 0 when the stream as a whole is at fault
	Kind  string // the document's kind, when known
	Name  string // the document's name or path, when known
	Field string // the field at fault ("spec.containers[0].image"), when there is one
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Doc > 0 {
		b.WriteString(docLabel(e.Doc, e.Kind, e.Name))
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return api.ErrInvalid }

func docLabel(doc int, kind, name string) string {
	s := "document " + strconv.Itoa(doc)
	switch {
	case kind != "" && name != "":
		s += " (" + kind + " " + strconv.Quote(name) + ")"
	case kind != "":
		s += " (" + kind + ")"
	}
	return s
}

// fieldError is an error at a field inside one document; decodeDoc adds
// the document number, kind and name.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func fieldErr(field, format string, args ...any) *fieldError {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// apiMessage drops the ": invalid" that api's errors end with: our Error
// already wraps api.ErrInvalid, and users should not read it twice.
func apiMessage(err error) string {
	return strings.TrimSuffix(err.Error(), ": "+api.ErrInvalid.Error())
}

// Decode reads a stream of YAML documents separated by `---` lines, or of
// JSON objects, and returns one Item per object, in order. It stops at the
// first error, which is an *Error wrapping api.ErrInvalid.
func Decode(r io.Reader, ctx Context) ([]Item, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxStreamBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	if len(data) > MaxStreamBytes {
		return nil, &Error{Msg: fmt.Sprintf("manifest is larger than %d MiB; split it into several files", MaxStreamBytes>>20)}
	}
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	var items []Item
	n := 0
	for _, raw := range docs {
		v, err := decodeJSON(raw)
		if err != nil {
			return nil, &Error{Doc: n + 1, Msg: err.Error()}
		}
		if v == nil {
			continue // empty document: only comments, or nothing at all
		}
		n++
		doc, err := decodeDoc(n, v, ctx)
		if err != nil {
			return nil, err
		}
		items = append(items, doc...)
	}
	return items, nil
}

// rawDoc is one document's text and the stream line it starts on.
type rawDoc struct {
	text []byte
	line int // 1-based line of the stream where text begins
}

// splitDocuments cuts a stream into documents the way kubectl does: a line
// starting with "---", followed by nothing but spaces or a comment,
// separates YAML documents. A chunk made of several JSON objects back to
// back (a JSON stream) yields one document per object.
func splitDocuments(data []byte) ([]rawDoc, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte-order mark
	var chunks []rawDoc
	cur := rawDoc{line: 1}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), MaxStreamBytes+1)
	sc.Split(scanLinesKeepEOL)
	line := 0
	for sc.Scan() {
		line++
		l := sc.Bytes()
		if bytes.HasPrefix(l, []byte("---")) {
			rest := strings.TrimSpace(string(l[3:]))
			if rest == "" || rest[0] == '#' {
				chunks = append(chunks, cur)
				cur = rawDoc{line: line + 1}
				continue
			}
			return nil, &Error{Msg: fmt.Sprintf("line %d: %q: a document separator must stand alone on its line (or be followed by a comment)", line, truncate(string(bytes.TrimSpace(l)), 40))}
		}
		cur.text = append(cur.text, l...)
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{Msg: "reading manifest: " + err.Error()}
	}
	chunks = append(chunks, cur)

	var docs []rawDoc
	for _, c := range chunks {
		if objs, ok := jsonStream(c); ok {
			docs = append(docs, objs...)
			continue
		}
		docs = append(docs, c)
	}
	return docs, nil
}

// scanLinesKeepEOL is bufio.ScanLines without dropping the line ends, so
// documents keep their exact text (block scalars care).
func scanLinesKeepEOL(data []byte, atEOF bool) (int, []byte, error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i+1], nil
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// jsonStream splits a chunk holding two or more JSON objects back to back.
// Anything else (one object, YAML, garbage) is left to the YAML decoder,
// which reads a single JSON object fine and gives the better syntax errors.
func jsonStream(c rawDoc) ([]rawDoc, bool) {
	t := bytes.TrimSpace(c.text)
	if len(t) == 0 || t[0] != '{' {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(c.text))
	var objs []rawDoc
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			break
		}
		if err != nil || len(raw) == 0 || raw[0] != '{' {
			return nil, false
		}
		// The object ends at the decoder's offset; count lines up to its start.
		start := int(dec.InputOffset()) - len(raw)
		objs = append(objs, rawDoc{text: raw, line: c.line + bytes.Count(c.text[:start], []byte("\n"))})
	}
	if len(objs) < 2 {
		return nil, false
	}
	return objs, true
}

// decodeJSON parses one document (YAML, or JSON which YAML reads too) into
// plain values: map[string]any, []any, string, bool, json.Number, nil.
// YAMLToJSONStrict rejects duplicate keys, which YAML forbids and which
// would otherwise let the later key silently win.
func decodeJSON(doc rawDoc) (any, error) {
	j, err := yaml.YAMLToJSONStrict(doc.text)
	if err != nil {
		return nil, errors.New(yamlMessage(err.Error(), doc.line))
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// yamlLine finds the YAML parser's "line N" (counted from the document's
// start) so yamlMessage can rewrite it as a line of the whole stream.
var yamlLine = regexp.MustCompile(`\bline (\d+)\b`)

// yamlMessage turns the YAML parser's error into one line that counts lines
// from the top of the stream, as users' editors do.
func yamlMessage(msg string, firstLine int) string {
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = yamlLine.ReplaceAllStringFunc(msg, func(m string) string {
		n, err := strconv.Atoi(m[len("line "):])
		if err != nil {
			return m
		}
		return "line " + strconv.Itoa(n+firstLine-1)
	})
	lines := strings.Split(msg, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
