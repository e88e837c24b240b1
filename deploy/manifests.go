package deploy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Manifests says how a deployment is rendered as Kubernetes manifests:
// the gitops model deployer's settings.
type Manifests struct {
	// Kind is KindDeployment (an apps/v1 Deployment and a v1 Service) or
	// KindKServe (a serving.kserve.io/v1beta1 InferenceService).
	Kind      string
	Namespace string
	Replicas  int
	// ModelVolume is VolumeInit (an init container pulls and verifies the
	// version by digest into an emptyDir: any cluster) or VolumeImage (the
	// version mounted as an OCI image volume: Kubernetes 1.33 and later).
	ModelVolume string
	// ZenImage is the image the init container runs zen in, pinned by
	// digest.
	ZenImage string
	// Key is the public key (cosign.pub's PEM) the init container
	// verifies the version's signature with; nil when the stack signs
	// nothing.
	Key []byte
}

// The kinds and model volumes Manifests knows.
const (
	KindDeployment = "deployment"
	KindKServe     = "kserve"
	VolumeInit     = "init"
	VolumeImage    = "image"
)

// The annotations a rendered deployment carries: what it serves, read
// back by Status.
const (
	AnnotationModel   = "zen.dev/model"
	AnnotationStage   = "zen.dev/stage"
	AnnotationVersion = "zen.dev/version"
	AnnotationDigest  = "zen.dev/digest"
	AnnotationSpec    = "zen.dev/serve-spec"
)

// The files of a rendered deployment, in its folder.
const (
	fileDeployment = "deployment.yaml"
	fileService    = "service.yaml"
	fileConfigMap  = "configmap.yaml"
	fileKServe     = "inferenceservice.yaml"
)

// Where the version is, in the serving container; the init container
// writes it at modelDir/model.
const (
	modelDir  = "/model"
	keyDir    = "/etc/zen"
	keyFile   = "cosign.pub"
	httpPort  = 8080
	labelName = "app.kubernetes.io/name"
)

// InferenceService is KServe's serving.kserve.io/v1beta1 InferenceService,
// as much of it as a deployment renders: a predictor whose pod runs the
// model's serving command.
type InferenceService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              InferenceServiceSpec `json:"spec"`
}

// InferenceServiceSpec is an InferenceService's spec.
type InferenceServiceSpec struct {
	Predictor PredictorSpec `json:"predictor"`
}

// PredictorSpec is a custom predictor: a pod spec, inline, and its
// replicas.
type PredictorSpec struct {
	corev1.PodSpec `json:",inline"`
	MinReplicas    *int32 `json:"minReplicas,omitempty"`
	MaxReplicas    int32  `json:"maxReplicas,omitempty"`
}

// Render renders t as the files of its folder in the deploy repository,
// by name: the same t and settings give the same bytes. The version is
// named by digest, never by tag, and so is the serving image.
func (m Manifests) Render(t *Target) (map[string][]byte, error) {
	what := "deployment " + t.Name
	switch {
	case t.Image == "":
		return nil, fmt.Errorf("%s: model %s declares no serve.image: a cluster runs the serving command in an image", what, t.Model)
	case !strings.Contains(t.Image, "@sha256:"):
		return nil, fmt.Errorf("%s: serve.image %q is a tag: a deploy repository names images by digest (name@sha256:…)", what, t.Image)
	case t.Ref == "" || !strings.Contains(t.Ref, "@sha256:"):
		return nil, fmt.Errorf("%s: %s %s is not in a registry a cluster can pull from: the stack's artifact store must be an oci registry", what, t.Model, t.Version)
	case m.ModelVolume == VolumeInit && !strings.Contains(m.ZenImage, "@sha256:"):
		return nil, fmt.Errorf("%s: the zen image %q is not pinned by digest (name@sha256:…)", what, m.ZenImage)
	}
	labels := map[string]string{labelName: t.Name, "app.kubernetes.io/managed-by": "zen"}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: m.Namespace, Labels: labels}
	}
	annotated := meta(t.Name)
	annotated.Annotations = map[string]string{
		AnnotationModel: t.Model, AnnotationStage: t.Stage, AnnotationVersion: t.Version,
		AnnotationDigest: t.Digest, AnnotationSpec: t.Spec,
	}
	port := t.Port
	if port == 0 {
		port = httpPort
	}
	pod := m.pod(t, port)
	files := map[string]any{}
	replicas := int32(max(m.Replicas, 1))
	switch m.Kind {
	case KindKServe:
		pod.Containers[0].Name = "kserve-container"
		files[fileKServe] = &InferenceService{
			TypeMeta:   metav1.TypeMeta{APIVersion: "serving.kserve.io/v1beta1", Kind: "InferenceService"},
			ObjectMeta: annotated,
			Spec:       InferenceServiceSpec{Predictor: PredictorSpec{PodSpec: pod, MinReplicas: &replicas, MaxReplicas: replicas}},
		}
	default:
		selector := map[string]string{labelName: t.Name}
		files[fileDeployment] = &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: annotated,
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: selector},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{AnnotationDigest: t.Digest}},
					Spec:       pod,
				},
			},
		}
		files[fileService] = &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: meta(t.Name),
			Spec: corev1.ServiceSpec{
				Selector: selector,
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
			},
		}
	}
	if m.ModelVolume != VolumeImage && len(m.Key) > 0 {
		files[fileConfigMap] = &corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: meta(keyConfigMap(t.Name)),
			Data:       map[string]string{keyFile: string(m.Key)},
		}
	}
	out := map[string][]byte{}
	for name, obj := range files {
		b, err := manifestYAML(obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", what, name, err)
		}
		out[name] = b
	}
	return out, nil
}

// pod is the pod that serves t: the serving container in t's image, and
// the version at /model, pulled by an init container or mounted as an
// image volume.
func (m Manifests) pod(t *Target, port int) corev1.PodSpec {
	modelPath := modelDir + "/model"
	vol := corev1.Volume{Name: "model", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	if m.ModelVolume == VolumeImage {
		modelPath = modelDir
		vol.VolumeSource = corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: t.Ref, PullPolicy: corev1.PullIfNotPresent}}
	}
	env := []corev1.EnvVar{
		{Name: "PORT", Value: strconv.Itoa(port)},
		{Name: "ZEN_DEPLOYMENT", Value: t.Name},
		{Name: "ZEN_MODEL", Value: modelPath},
		{Name: "ZEN_MODEL_DIGEST", Value: t.Digest},
		{Name: "ZEN_MODEL_NAME", Value: t.Model},
		{Name: "ZEN_MODEL_VERSION", Value: t.Version},
	}
	for _, k := range sortedKeys(t.Env) {
		env = append(env, corev1.EnvVar{Name: k, Value: t.Env[k]})
	}
	probe := &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}},
		PeriodSeconds: 5,
	}
	if t.Health != "" {
		probe.ProbeHandler = corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: t.Health, Port: intstr.FromString("http")}}
	}
	startup := probe.DeepCopy()
	startup.FailureThreshold = int32(max(1, (t.StartTimeout.Milliseconds()+4999)/5000))
	serve := corev1.Container{
		Name:            "serve",
		Image:           t.Image,
		Command:         t.Run,
		Env:             env,
		Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port), Protocol: corev1.ProtocolTCP}},
		ReadinessProbe:  probe,
		StartupProbe:    startup,
		VolumeMounts:    []corev1.VolumeMount{{Name: "model", MountPath: modelDir, ReadOnly: true}},
		ImagePullPolicy: corev1.PullIfNotPresent,
	}
	pod := corev1.PodSpec{Containers: []corev1.Container{serve}, Volumes: []corev1.Volume{vol}}
	if m.ModelVolume == VolumeImage {
		return pod
	}
	args := []string{"zen", "models", "pull"}
	mounts := []corev1.VolumeMount{{Name: "model", MountPath: modelDir}}
	if len(m.Key) > 0 {
		args = append(args, "--key", keyDir+"/"+keyFile)
		mounts = append(mounts, corev1.VolumeMount{Name: "zen-key", MountPath: keyDir, ReadOnly: true})
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "zen-key", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: keyConfigMap(t.Name)}},
		}})
	}
	args = append(args, t.Ref, modelPath)
	pod.InitContainers = []corev1.Container{{
		Name:            "zen-pull",
		Image:           m.ZenImage,
		Command:         args,
		VolumeMounts:    mounts,
		ImagePullPolicy: corev1.PullIfNotPresent,
	}}
	return pod
}

// keyConfigMap is the ConfigMap that holds a deployment's public key.
func keyConfigMap(name string) string { return name + "-zen-key" }

// manifestYAML is obj as YAML, its keys sorted, without the status and
// the empty fields a server fills in.
func manifestYAML(obj any) ([]byte, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	return yaml.Marshal(m)
}

// renderedMeta is what Status reads back of a rendered deployment.
type renderedMeta struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
}
