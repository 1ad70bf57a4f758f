package api

// LabelSelector is Kubernetes' label selector: every matchLabels pair and
// every matchExpressions requirement must hold. Package api/labels turns it
// into a Selector (labels.FromLabelSelector), which validates it.
type LabelSelector struct {
	MatchLabels      map[string]string          `json:"matchLabels,omitempty"`
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// LabelSelectorRequirement is one set-based requirement: Operator is In,
// NotIn (both with one or more Values), Exists or DoesNotExist (no Values).
type LabelSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// HostnameLabel is the label every host carries with its name, as every
// Kubernetes node carries kubernetes.io/hostname: manifests that pin with
// nodeSelector or affinity on it work unchanged.
const HostnameLabel = "kubernetes.io/hostname"

// HostLabels are a host's labels as selectors see them: its own plus
// HostnameLabel (its name), which an admin's label cannot override.
func HostLabels(h *Object) map[string]string {
	out := make(map[string]string, len(h.Labels)+1)
	for k, v := range h.Labels {
		out[k] = v
	}
	out[HostnameLabel] = h.Name()
	return out
}
