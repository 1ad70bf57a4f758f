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
