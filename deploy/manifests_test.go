package deploy

import (
	"bytes"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

const (
	testDigest = "sha256:3f2a9c1d7e4b3f2a9c1d7e4b3f2a9c1d7e4b3f2a9c1d7e4b3f2a9c1d7e4b0000"
	testImage  = "registry.example.com/serve:1@sha256:9e8d7c6b5a419e8d7c6b5a419e8d7c6b5a419e8d7c6b5a419e8d7c6b5a410000"
	testZen    = "registry.example.com/zen@sha256:1111111111111111111111111111111111111111111111111111111111111111"
)

func testTarget() *Target {
	return &Target{
		Name: "api", Model: "scorer", Stage: "production", Version: "1.0.0", Digest: testDigest,
		Spec: "sha256:00", Run: []string{"python3", "serve.py"}, Image: testImage, Health: "/healthz",
		StartTimeout: 20 * time.Second, Env: map[string]string{"WORKERS": "2", "A_FIRST": "x"},
		Ref: "registry.example.com/ml/models/scorer@" + testDigest,
	}
}

// strict decodes a rendered manifest into v, refusing any field the
// Kubernetes API type does not have.
func strict(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
}

// checkPod runs the checks of the API server's validation that a pod
// spec's content can fail here: names, a volume for every mount, named
// ports the probes use, images by digest.
func checkPod(t *testing.T, pod *corev1.PodSpec, mode string) {
	t.Helper()
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		if errs := validation.IsDNS1123Label(v.Name); len(errs) > 0 {
			t.Errorf("volume %q: %v", v.Name, errs)
		}
		volumes[v.Name] = true
	}
	all := append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...)
	for _, c := range all {
		if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
			t.Errorf("container %q: %v", c.Name, errs)
		}
		if !strings.Contains(c.Image, "@sha256:") {
			t.Errorf("container %s: image %q not by digest", c.Name, c.Image)
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				t.Errorf("container %s mounts %q, which is no volume", c.Name, m.Name)
			}
		}
		for _, e := range c.Env {
			if errs := validation.IsEnvVarName(e.Name); len(errs) > 0 {
				t.Errorf("env %q: %v", e.Name, errs)
			}
		}
	}
	serve := pod.Containers[0]
	if len(serve.Ports) != 1 || serve.Ports[0].Name != "http" || serve.Ports[0].ContainerPort != 8080 {
		t.Errorf("ports %+v", serve.Ports)
	}
	if p := serve.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.StrVal != "http" {
		t.Errorf("readiness probe %+v", p)
	}
	if p := serve.StartupProbe; p == nil || p.FailureThreshold != 4 {
		t.Errorf("startup probe %+v: 20s at 5s a probe is 4 tries", p)
	}
	if strings.Join(serve.Command, " ") != "python3 serve.py" || serve.Image != testImage {
		t.Errorf("serving container %+v", serve)
	}
	env := map[string]string{}
	var names []string
	for _, e := range serve.Env {
		env[e.Name] = e.Value
		names = append(names, e.Name)
	}
	if env["ZEN_MODEL_DIGEST"] != testDigest || env["PORT"] != "8080" || env["WORKERS"] != "2" {
		t.Errorf("env %v", env)
	}
	if names[len(names)-2] != "A_FIRST" || names[len(names)-1] != "WORKERS" {
		t.Errorf("declared env not sorted after zen's: %v", names)
	}
	switch mode {
	case VolumeImage:
		if len(pod.InitContainers) != 0 || pod.Volumes[0].Image == nil || pod.Volumes[0].Image.Reference != testTarget().Ref ||
			pod.Volumes[0].Image.PullPolicy != corev1.PullIfNotPresent || env["ZEN_MODEL"] != "/model" {
			t.Errorf("image volume: %+v, env %v", pod.Volumes, env)
		}
	default:
		init := pod.InitContainers
		if len(init) != 1 || pod.Volumes[0].EmptyDir == nil || env["ZEN_MODEL"] != "/model/model" {
			t.Fatalf("init container: %+v, volumes %+v", init, pod.Volumes)
		}
		want := "zen models pull --key /etc/zen/cosign.pub " + testTarget().Ref + " /model/model"
		if got := strings.Join(init[0].Command, " "); got != want || init[0].Image != testZen {
			t.Errorf("init container runs %q in %s, want %q", got, init[0].Image, want)
		}
	}
}

func checkMeta(t *testing.T, m metav1.ObjectMeta, name string) {
	t.Helper()
	if errs := validation.IsDNS1123Subdomain(m.Name); len(errs) > 0 || m.Name != name || m.Namespace != "ml" {
		t.Errorf("metadata %+v: %v", m, errs)
	}
	for k, v := range m.Labels {
		if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
			t.Errorf("label %s=%s: %v", k, v, errs)
		}
	}
	for k := range m.Annotations {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			t.Errorf("annotation %s: %v", k, errs)
		}
	}
}

// TestRenderDeployment decodes the rendered Deployment, Service and
// ConfigMap strictly into k8s.io/api's types and checks them.
func TestRenderDeployment(t *testing.T) {
	for _, mode := range []string{VolumeInit, VolumeImage} {
		t.Run(mode, func(t *testing.T) {
			m := Manifests{Kind: KindDeployment, Namespace: "ml", Replicas: 2, ModelVolume: mode, ZenImage: testZen, Key: []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")}
			files, err := m.Render(testTarget())
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"deployment.yaml", "service.yaml"}
			if mode == VolumeInit {
				want = append([]string{"configmap.yaml"}, want...)
			}
			if len(files) != len(want) {
				t.Fatalf("files %v, want %v", keys(files), want)
			}
			var d appsv1.Deployment
			strict(t, files["deployment.yaml"], &d)
			if d.APIVersion != "apps/v1" || d.Kind != "Deployment" || *d.Spec.Replicas != 2 {
				t.Errorf("deployment %+v", d.TypeMeta)
			}
			checkMeta(t, d.ObjectMeta, "api")
			if d.Annotations[AnnotationDigest] != testDigest || d.Annotations[AnnotationVersion] != "1.0.0" {
				t.Errorf("annotations %v", d.Annotations)
			}
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil || !sel.Matches(labelsSet(d.Spec.Template.Labels)) {
				t.Errorf("selector %v does not select the template's labels %v (%v)", d.Spec.Selector, d.Spec.Template.Labels, err)
			}
			checkPod(t, &d.Spec.Template.Spec, mode)
			var s corev1.Service
			strict(t, files["service.yaml"], &s)
			checkMeta(t, s.ObjectMeta, "api")
			if s.Kind != "Service" || !sel.Matches(labelsSet(s.Spec.Selector)) || s.Spec.Ports[0].TargetPort.StrVal != "http" {
				t.Errorf("service %+v", s)
			}
			if mode == VolumeInit {
				var c corev1.ConfigMap
				strict(t, files["configmap.yaml"], &c)
				checkMeta(t, c.ObjectMeta, "api-zen-key")
				if !strings.Contains(c.Data["cosign.pub"], "BEGIN PUBLIC KEY") {
					t.Errorf("configmap %+v", c.Data)
				}
			}
			for name, b := range files {
				if bytes.Contains(b, []byte("status")) || bytes.Contains(b, []byte("creationTimestamp")) {
					t.Errorf("%s holds what a server fills in:\n%s", name, b)
				}
				if bytes.Contains(b, []byte("scorer:1.0.0")) || bytes.Contains(b, []byte("scorer:production")) {
					t.Errorf("%s names the model by tag:\n%s", name, b)
				}
			}
			again, _ := m.Render(testTarget())
			for name := range files {
				if !bytes.Equal(files[name], again[name]) {
					t.Errorf("%s: two renderings differ", name)
				}
			}
		})
	}
}

// kserveInferenceService mirrors KServe's serving.kserve.io/v1beta1 Go
// types (pkg/apis/serving/v1beta1: InferenceService, InferenceServiceSpec,
// and PredictorSpec, which inlines a corev1.PodSpec and the
// ComponentExtensionSpec's minReplicas and maxReplicas), written apart
// from the renderer's own, so that a field KServe does not have fails the
// strict decode.
type kserveInferenceService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Predictor struct {
			corev1.PodSpec `json:",inline"`
			MinReplicas    *int32 `json:"minReplicas,omitempty"`
			MaxReplicas    int32  `json:"maxReplicas,omitempty"`
		} `json:"predictor"`
	} `json:"spec"`
}

func TestRenderKServe(t *testing.T) {
	m := Manifests{Kind: KindKServe, Namespace: "ml", Replicas: 1, ModelVolume: VolumeInit, ZenImage: testZen, Key: []byte("KEY")}
	files, err := m.Render(testTarget())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files["inferenceservice.yaml"] == nil || files["configmap.yaml"] == nil {
		t.Fatalf("files %v", keys(files))
	}
	var is kserveInferenceService
	strict(t, files["inferenceservice.yaml"], &is)
	if is.APIVersion != "serving.kserve.io/v1beta1" || is.Kind != "InferenceService" || *is.Spec.Predictor.MinReplicas != 1 {
		t.Errorf("inference service %+v", is)
	}
	checkMeta(t, is.ObjectMeta, "api")
	if is.Spec.Predictor.Containers[0].Name != "kserve-container" {
		t.Errorf("KServe serves the container named kserve-container, not %q", is.Spec.Predictor.Containers[0].Name)
	}
	checkPod(t, &is.Spec.Predictor.PodSpec, VolumeInit)
}

func TestRenderRefuses(t *testing.T) {
	m := Manifests{Kind: KindDeployment, ModelVolume: VolumeInit, ZenImage: testZen}
	for _, c := range []struct {
		change func(*Target)
		want   string
	}{
		{func(t *Target) { t.Image = "registry.example.com/serve:1" }, `serve.image "registry.example.com/serve:1" is a tag`},
		{func(t *Target) { t.Image = "" }, "declares no serve.image"},
		{func(t *Target) { t.Ref = "" }, "not in a registry a cluster can pull from"},
	} {
		tg := testTarget()
		c.change(tg)
		if _, err := m.Render(tg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
	m.ZenImage = "registry.example.com/zen:latest"
	if _, err := m.Render(testTarget()); err == nil || !strings.Contains(err.Error(), "not pinned by digest") {
		t.Errorf("zen image by tag: %v", err)
	}
}

type labelsSet map[string]string

func (l labelsSet) Has(k string) bool   { _, ok := l[k]; return ok }
func (l labelsSet) Get(k string) string { return l[k] }
func (l labelsSet) Lookup(k string) (string, bool) {
	v, ok := l[k]
	return v, ok
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
