package inventory

import (
	"slices"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// ingress routes HTTP by host and path to Services of its namespace. Its
// status (the address it answers on) is vcenter's; no client reports it.
type ingress struct{ base }

func init() { register(api.KindIngress, ingress{}) }

func (ingress) names() kindNames {
	return kindNames{word: "Ingress", createTask: "CreateIngress", changeTask: "ReconfigureIngress", removeTask: "Destroy_Task",
		createdEvent: "IngressCreatedEvent", changedEvent: "IngressReconfiguredEvent", goneEvent: "IngressRemovedEvent"}
}

func (ingress) prepare(_ api.Ref, o *api.Object) error {
	var s api.IngressSpec
	if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
		return err
	}
	if err := s.Normalize(); err != nil {
		return err
	}
	o.SetSpec(s)
	return nil
}

// admitCreate accepts backends naming Services that do not exist yet (a
// manifest may bring the Ingress before its Services, as Kubernetes
// allows) but says so in an event: until the Service comes, the proxies
// answer 503 for those routes.
func (ingress) admitCreate(t *Txn, ref api.Ref, o *api.Object) error {
	return warnMissingBackends(t, ref, o)
}

func (ingress) admitChange(t *Txn, ref api.Ref, _, o *api.Object) (string, error) {
	return "", warnMissingBackends(t, ref, o)
}

func warnMissingBackends(t *Txn, ref api.Ref, o *api.Object) error {
	var s api.IngressSpec
	if err := o.DecodeSpec(&s); err != nil {
		return err
	}
	missing := MissingIngressServices(ref, s, func(path string) bool {
		_, err := t.Get(path)
		return err == nil
	})
	if len(missing) == 0 {
		return nil
	}
	return t.Event("warning", "IngressBackendMissingEvent", o.Path,
		"Ingress %s routes to Service(s) that do not exist: %s; those routes answer 503 until they are created",
		o.Path, strings.Join(missing, ", "))
}

// MissingIngressServices lists (sorted, once each) the inventory paths of
// the Services an Ingress's backends name that exists says are missing.
func MissingIngressServices(ref api.Ref, s api.IngressSpec, exists func(path string) bool) []string {
	var missing []string
	check := func(b *api.IngressBackend) {
		if b == nil || b.Service == nil {
			return
		}
		p := api.NamespacedPath(api.KindService, ref.Datacenter, ref.Namespace, b.Service.Name)
		if !slices.Contains(missing, p) && !exists(p) {
			missing = append(missing, p)
		}
	}
	check(s.DefaultBackend)
	for _, r := range s.Rules {
		if r.HTTP == nil {
			continue
		}
		for i := range r.HTTP.Paths {
			check(&r.HTTP.Paths[i].Backend)
		}
	}
	slices.Sort(missing)
	return missing
}
