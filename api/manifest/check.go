package manifest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// checkShape walks a decoded JSON value (from decodeJSON: objects, lists,
// strings, bools, json.Number) against the Go type it is about to be
// unmarshalled into, and reports the first unknown field or wrong type with
// its path ("spec.containers[0].image"). encoding/json alone cannot: its
// unknown-field error names no path and it matches keys case-insensitively.
//
// Fields of type json.RawMessage accept anything: that is how a struct
// declares fields it knowingly ignores. JSON null is accepted everywhere and
// leaves the target's value (its default) alone, as encoding/json does.
func checkShape(v any, t reflect.Type, path string) *fieldError {
	if v == nil || t == rawMessageType {
		return nil
	}
	if t == quantityType {
		switch v.(type) {
		case string, json.Number:
			return nil
		}
		return mismatch(path, "a quantity such as 500m, 2 or 512Mi", v)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkShape(v, t.Elem(), path)
	case reflect.Interface:
		return nil
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return mismatch(path, "a mapping", v)
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(m) {
			ft, ok := fields[k]
			if !ok {
				return &fieldError{field: join(path, k), msg: "unknown field" + knownFields(fields)}
			}
			if err := checkShape(m[k], ft, join(path, k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return mismatch(path, "a mapping", v)
		}
		for _, k := range sortedKeys(m) {
			if err := checkShape(m[k], t.Elem(), join(path, k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			return mismatch(path, "a list", v)
		}
		for i, e := range l {
			if err := checkShape(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		if _, ok := v.(string); !ok {
			return mismatch(path, "a string", v)
		}
		return nil
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return mismatch(path, "true or false", v)
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return mismatch(path, "an integer", v)
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			return &fieldError{field: path, msg: fmt.Sprintf("%s is not an integer in range", n)}
		}
		return nil
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			return mismatch(path, "a number", v)
		}
		return nil
	}
	return &fieldError{field: path, msg: "cannot be decoded into " + t.String()}
}

var (
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	quantityType   = reflect.TypeFor[quantityText]()
)

// quantityText is a Kubernetes quantity as written: YAML lets users write
// cpu: 1 or cpu: "1", so it accepts a JSON string or number. Parsing waits
// until the caller knows the field, for a precise error.
type quantityText string

func (q *quantityText) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(b)
	}
	*q = quantityText(s)
	return nil
}

// jsonFields maps a struct's JSON field names to their types, following
// embedded structs as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

// knownFields lists the fields a mapping accepts, for "unknown field" errors
// (ignored fields are left out: nobody should be told to add them).
func knownFields(fields map[string]reflect.Type) string {
	var names []string
	for k, t := range fields {
		if t != rawMessageType {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return " (known fields: " + strings.Join(names, ", ") + ")"
}

func mismatch(path, want string, got any) *fieldError {
	return &fieldError{field: path, msg: "want " + want + ", got " + describe(got)}
}

// describe names a decoded JSON value for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		if len(v) > 40 {
			return strconv.Quote(v[:40]) + "..."
		}
		return strconv.Quote(v)
	case json.Number:
		return string(v)
	case bool:
		return strconv.FormatBool(v)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

// join appends a key to a field path, bracketing keys that are not plain
// identifiers: limits.cpu, but labels["app.kubernetes.io/name"].
func join(path, key string) string {
	plain := key != ""
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			plain = false
			break
		}
	}
	if !plain {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
