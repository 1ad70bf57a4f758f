package api

import (
	"errors"
	"strings"
	"testing"
)

func web() Container {
	return Container{Name: "web", Image: "busybox", Ports: []Port{{Name: "http", ContainerPort: 80}}}
}

func TestValidateContainer(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	httpProbe := func(port IntOrString) *Probe { return &Probe{HTTPGet: &HTTPGetAction{Path: "/", Port: port}} }
	for _, tc := range []struct {
		name  string
		edit  func(*Container)
		init  bool
		field string // "" = valid; else the field the error must name
	}{
		{"plain", func(c *Container) {}, false, ""},
		{"plain init", func(c *Container) {}, true, ""},
		{"all probes", func(c *Container) {
			c.LivenessProbe = &Probe{Exec: &ExecAction{Command: []string{"true"}}, PeriodSeconds: 1, FailureThreshold: 1}
			c.ReadinessProbe = &Probe{HTTPGet: &HTTPGetAction{Path: "/healthz", Port: Str("http"), Scheme: "HTTPS",
				HTTPHeaders: []HTTPHeader{{Name: "X-Probe", Value: "1"}}}, SuccessThreshold: 3}
			c.StartupProbe = &Probe{TCPSocket: &TCPSocketAction{Port: Int(80)}, SuccessThreshold: 1, InitialDelaySeconds: 5}
		}, false, ""},
		{"bad name", func(c *Container) { c.Name = "Web_1" }, false, "spec.containers[0].name"},
		{"no image", func(c *Container) { c.Image = "" }, false, "spec.containers[0].image"},
		{"port 0", func(c *Container) { c.Ports[0].ContainerPort = 0 }, false, "spec.containers[0].ports[0].containerPort"},
		{"bad port name", func(c *Container) { c.Ports[0].Name = "HTTP" }, false, "spec.containers[0].ports[0].name"},
		{"digits-only port name", func(c *Container) { c.Ports[0].Name = "8080" }, false, "spec.containers[0].ports[0].name"},
		{"duplicate port name", func(c *Container) { c.Ports = append(c.Ports, Port{Name: "http", ContainerPort: 81}) }, false, "spec.containers[0].ports[1].name"},
		{"bad protocol", func(c *Container) { c.Ports[0].Protocol = "SCTP" }, false, "spec.containers[0].ports[0].protocol"},
		{"bad env", func(c *Container) { c.Env = []EnvVar{{Name: "A=B"}} }, false, "spec.containers[0].env[0].name"},
		{"pull Always", func(c *Container) { c.ImagePullPolicy = PullAlways }, false, ""},
		{"pull Never", func(c *Container) { c.ImagePullPolicy = PullNever }, false, ""},
		{"pull bogus", func(c *Container) { c.ImagePullPolicy = "always" }, false, "spec.containers[0].imagePullPolicy"},
		{"runAsUser 0", func(c *Container) { c.RunAsUser = i64(0) }, false, ""},
		{"runAsUser negative", func(c *Container) { c.RunAsUser = i64(-1) }, false, "spec.containers[0].runAsUser"},
		{"no action", func(c *Container) { c.LivenessProbe = &Probe{PeriodSeconds: 1} }, false, "spec.containers[0].livenessProbe"},
		{"two actions", func(c *Container) {
			c.ReadinessProbe = &Probe{Exec: &ExecAction{Command: []string{"true"}}, TCPSocket: &TCPSocketAction{Port: Int(80)}}
		}, false, "spec.containers[0].readinessProbe"},
		{"empty exec", func(c *Container) { c.LivenessProbe = &Probe{Exec: &ExecAction{}} }, false, "spec.containers[0].livenessProbe.exec.command"},
		{"http port 0", func(c *Container) { c.LivenessProbe = httpProbe(Int(0)) }, false, "spec.containers[0].livenessProbe.httpGet.port"},
		{"http port 65536", func(c *Container) { c.ReadinessProbe = httpProbe(Int(65536)) }, false, "spec.containers[0].readinessProbe.httpGet.port"},
		{"http port 65535", func(c *Container) { c.ReadinessProbe = httpProbe(Int(65535)) }, false, ""},
		{"undeclared named port", func(c *Container) { c.ReadinessProbe = httpProbe(Str("metrics")) }, false, "spec.containers[0].readinessProbe.httpGet.port"},
		{"malformed named port", func(c *Container) { c.ReadinessProbe = httpProbe(Str("no such")) }, false, "spec.containers[0].readinessProbe.httpGet.port"},
		{"tcp named port", func(c *Container) { c.StartupProbe = &Probe{TCPSocket: &TCPSocketAction{Port: Str("http")}} }, false, ""},
		{"tcp undeclared port", func(c *Container) { c.StartupProbe = &Probe{TCPSocket: &TCPSocketAction{Port: Str("db")}} }, false, "spec.containers[0].startupProbe.tcpSocket.port"},
		{"bad scheme", func(c *Container) { p := httpProbe(Int(80)); p.HTTPGet.Scheme = "ftp"; c.ReadinessProbe = p }, false, "spec.containers[0].readinessProbe.httpGet.scheme"},
		{"relative path", func(c *Container) { p := httpProbe(Int(80)); p.HTTPGet.Path = "healthz"; c.ReadinessProbe = p }, false, "spec.containers[0].readinessProbe.httpGet.path"},
		{"bad header", func(c *Container) {
			p := httpProbe(Int(80))
			p.HTTPGet.HTTPHeaders = []HTTPHeader{{Name: "Bad Header"}}
			c.ReadinessProbe = p
		}, false, "spec.containers[0].readinessProbe.httpGet.httpHeaders[0].name"},
		{"negative delay", func(c *Container) { p := httpProbe(Int(80)); p.InitialDelaySeconds = -1; c.ReadinessProbe = p }, false, "spec.containers[0].readinessProbe.initialDelaySeconds"},
		{"negative period", func(c *Container) { p := httpProbe(Int(80)); p.PeriodSeconds = -1; c.LivenessProbe = p }, false, "spec.containers[0].livenessProbe.periodSeconds"},
		{"negative timeout", func(c *Container) { p := httpProbe(Int(80)); p.TimeoutSeconds = -2; c.LivenessProbe = p }, false, "spec.containers[0].livenessProbe.timeoutSeconds"},
		{"negative failureThreshold", func(c *Container) { p := httpProbe(Int(80)); p.FailureThreshold = -1; c.LivenessProbe = p }, false, "spec.containers[0].livenessProbe.failureThreshold"},
		{"negative successThreshold", func(c *Container) { p := httpProbe(Int(80)); p.SuccessThreshold = -1; c.ReadinessProbe = p }, false, "spec.containers[0].readinessProbe.successThreshold"},
		{"liveness successThreshold 2", func(c *Container) { p := httpProbe(Int(80)); p.SuccessThreshold = 2; c.LivenessProbe = p }, false, "spec.containers[0].livenessProbe.successThreshold"},
		{"startup successThreshold 2", func(c *Container) { p := httpProbe(Int(80)); p.SuccessThreshold = 2; c.StartupProbe = p }, false, "spec.containers[0].startupProbe.successThreshold"},
		{"readiness successThreshold 2", func(c *Container) { p := httpProbe(Int(80)); p.SuccessThreshold = 2; c.ReadinessProbe = p }, false, ""},
		{"init with liveness", func(c *Container) { c.LivenessProbe = httpProbe(Int(80)) }, true, "spec.initContainers[0].livenessProbe"},
		{"init with readiness", func(c *Container) { c.ReadinessProbe = httpProbe(Int(80)) }, true, "spec.initContainers[0].readinessProbe"},
		{"init with startup", func(c *Container) { c.StartupProbe = httpProbe(Int(80)) }, true, "spec.initContainers[0].startupProbe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := web()
			tc.edit(&c)
			field := "spec.containers[0]"
			if tc.init {
				field = "spec.initContainers[0]"
			}
			err := ValidateContainer(field, c, tc.init)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("want ErrInvalid naming %s, got %v", tc.field, err)
			}
			if !strings.HasPrefix(err.Error(), tc.field+":") {
				t.Fatalf("error %q does not start with the field %s", err, tc.field)
			}
		})
	}
}

func TestValidateVMContainers(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name  string
		spec  VMSpec
		field string
	}{
		{"ok", VMSpec{Containers: []Container{web()}, InitContainers: []Container{{Name: "setup", Image: "busybox"}},
			TerminationGracePeriodSeconds: i64(0), Hostname: "web-01"}, ""},
		{"name clash", VMSpec{Containers: []Container{web()}, InitContainers: []Container{{Name: "web", Image: "busybox"}}}, "spec.containers[0].name"},
		{"bad init", VMSpec{Containers: []Container{web()}, InitContainers: []Container{{Name: "setup"}}}, "spec.initContainers[0].image"},
		{"negative grace", VMSpec{Containers: []Container{web()}, TerminationGracePeriodSeconds: i64(-1)}, "spec.terminationGracePeriodSeconds"},
		{"bad hostname", VMSpec{Containers: []Container{web()}, Hostname: "Web.example"}, "spec.hostname"},
	} {
		err := ValidateVMContainers(tc.spec)
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: want valid, got %v", tc.name, err)
		case tc.field != "" && (!errors.Is(err, ErrInvalid) || !strings.HasPrefix(fmtErr(err), tc.field+":")):
			t.Errorf("%s: want ErrInvalid naming %s, got %v", tc.name, tc.field, err)
		}
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestProbeDefaultsAndPorts(t *testing.T) {
	p := Probe{}.WithDefaults()
	if p.PeriodSeconds != 10 || p.TimeoutSeconds != 1 || p.SuccessThreshold != 1 || p.FailureThreshold != 3 || p.InitialDelaySeconds != 0 {
		t.Fatalf("defaults %+v", p)
	}
	q := Probe{PeriodSeconds: 2, TimeoutSeconds: 3, SuccessThreshold: 4, FailureThreshold: 5, InitialDelaySeconds: 6}
	if q.WithDefaults() != q {
		t.Fatalf("set timings changed: %+v", q.WithDefaults())
	}
	if n, err := ResolvePort(Str("http"), web()); n != 80 || err != nil {
		t.Fatalf("ResolvePort(http) = %d, %v", n, err)
	}
	if n, err := ResolvePort(Int(8080), web()); n != 8080 || err != nil {
		t.Fatalf("ResolvePort(8080) = %d, %v", n, err)
	}
}
