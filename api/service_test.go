package api

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestServiceNormalize(t *testing.T) {
	ok := func(s string) ServiceSpec {
		var sp ServiceSpec
		if err := json.Unmarshal([]byte(s), &sp); err != nil {
			t.Fatal(err)
		}
		return sp
	}
	s := ok(`{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":"http"}],"sessionAffinity":"ClientIP"}`)
	if err := s.Normalize(); err != nil {
		t.Fatal(err)
	}
	if s.Type != ServiceClusterIP || s.Ports[0].Protocol != "TCP" || *s.SessionAffinityConfig.ClientIP.TimeoutSeconds != DefaultSessionAffinityTimeout || s.ExternalTrafficPolicy != "" {
		t.Errorf("defaults not filled in: %+v", s)
	}
	np := ok(`{"type":"NodePort","selector":{"app":"web"},"ports":[{"port":80,"nodePort":30080}]}`)
	if err := np.Normalize(); err != nil || np.ExternalTrafficPolicy != "Cluster" {
		t.Errorf("NodePort: %v %q", err, np.ExternalTrafficPolicy)
	}
	for _, c := range []struct{ spec, field string }{
		{`{"type":"Balanced","ports":[{"port":80}]}`, "spec.type"},
		{`{"ports":[]}`, "spec.ports"},
		{`{"ports":[{"port":70000}]}`, "spec.ports[0].port"},
		{`{"ports":[{"port":80,"protocol":"SCTP"}]}`, "spec.ports[0].protocol"},
		{`{"ports":[{"port":80},{"name":"b","port":81}]}`, "spec.ports[0].name"},
		{`{"ports":[{"name":"a","port":80},{"name":"a","port":81}]}`, "spec.ports[1].name"},
		{`{"ports":[{"name":"a","port":80},{"name":"b","port":80}]}`, "spec.ports[1].port"},
		{`{"ports":[{"port":80,"targetPort":"Not_A_Name"}]}`, "spec.ports[0].targetPort"},
		{`{"ports":[{"port":80,"nodePort":30000}]}`, "spec.ports[0].nodePort"},
		{`{"type":"NodePort","clusterIP":"None","ports":[{"port":80}]}`, "spec.clusterIP"},
		{`{"clusterIP":"10.0.0.300","ports":[{"port":80}]}`, "spec.clusterIP"},
		{`{"sessionAffinity":"Sticky","ports":[{"port":80}]}`, "spec.sessionAffinity"},
		{`{"sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":0}},"ports":[{"port":80}]}`, "spec.sessionAffinityConfig.clientIP.timeoutSeconds"},
		{`{"sessionAffinityConfig":{"clientIP":{"timeoutSeconds":5}},"ports":[{"port":80}]}`, "spec.sessionAffinityConfig"},
		{`{"externalTrafficPolicy":"Local","ports":[{"port":80}]}`, "spec.externalTrafficPolicy"},
		{`{"type":"LoadBalancer","externalTrafficPolicy":"Nearest","ports":[{"port":80}]}`, "spec.externalTrafficPolicy"},
		{`{"type":"ExternalName"}`, "spec.externalName"},
		{`{"type":"ExternalName","externalName":"Bad_Name.example.com"}`, "spec.externalName"},
		{`{"externalName":"db.example.com","ports":[{"port":80}]}`, "spec.externalName"},
	} {
		s := ok(c.spec)
		err := s.Normalize()
		if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), c.field+":") {
			t.Errorf("%s: got %v, want an ErrInvalid naming %s", c.spec, err, c.field)
		}
	}
	headless := ok(`{"clusterIP":"None","selector":{"app":"db"}}`)
	if err := headless.Normalize(); err != nil {
		t.Errorf("headless without ports: %v", err)
	}
}
