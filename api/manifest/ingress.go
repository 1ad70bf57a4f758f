package manifest

import (
	"strings"

	"github.com/podsphere/podsphere/api"
)

// Kubernetes' networking.k8s.io/v1 Ingress lands at /DC/ingress/[NS/]NAME
// with its spec as users paste it (api.IngressSpec has Kubernetes' field
// names); its status is the proxies' address, which apply never writes.
func (d *document) ingress() ([]Item, *fieldError) {
	var doc kubeDoc[api.IngressSpec]
	w, err := decodeWorkload(d, api.KindIngress, &doc)
	if err != nil {
		return nil, err
	}
	s := doc.Spec
	// The same checks as vcenter's, so a bad Ingress fails before anything
	// of its file is applied.
	if err := s.Normalize(); err != nil {
		field, msg, _ := strings.Cut(apiMessage(err), ": ")
		return nil, &fieldError{field: field, msg: msg}
	}
	return []Item{w.item(api.KindIngress, s)}, nil
}

// goneIngressVersions are the Ingress apiVersions Kubernetes removed.
var goneIngressVersions = map[string]string{
	"extensions/v1beta1":        "1.22",
	"networking.k8s.io/v1beta1": "1.22",
}
