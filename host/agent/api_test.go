package agent

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/podsphere/podsphere/api"
)

// The agent answers every sentinel as vcenter does (api.Sentinels).
func TestWriteAPIError(t *testing.T) {
	for _, s := range api.Sentinels {
		rec := httptest.NewRecorder()
		writeAPIError(rec, fmt.Errorf("vm 42: %w", s.Err))
		var eb api.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil {
			t.Fatal(err)
		}
		if rec.Code != s.HTTPStatus || eb.Reason != s.Reason || eb.Error != api.Message(fmt.Errorf("vm 42: %w", s.Err)) {
			t.Errorf("%v: answered %d %+v; want %d %s", s.Err, rec.Code, eb, s.HTTPStatus, s.Reason)
		}
	}
	rec := httptest.NewRecorder()
	writeAPIError(rec, fmt.Errorf("containerd: VM 42: %w", api.ErrNotFound))
	var eb api.ErrorBody
	_ = json.Unmarshal(rec.Body.Bytes(), &eb)
	if eb.Error != "containerd: VM 42: not found" {
		t.Errorf("not found message = %q", eb.Error)
	}
}
