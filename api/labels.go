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

// Labels every host carries, as every Kubernetes node carries them, so
// manifests that select nodes with them work unchanged: its name, and its
// operating system (podsphere hosts run containerd and runc on Linux).
const (
	HostnameLabel = "kubernetes.io/hostname"
	HostOSLabel   = "kubernetes.io/os"
)

// HostLabels are a host's labels as selectors see them: its own plus
// HostnameLabel and HostOSLabel, which an admin's labels cannot override.
func HostLabels(h *Object) map[string]string {
	out := make(map[string]string, len(h.Labels)+2)
	for k, v := range h.Labels {
		out[k] = v
	}
	out[HostnameLabel] = h.Name()
	out[HostOSLabel] = "linux"
	return out
}
