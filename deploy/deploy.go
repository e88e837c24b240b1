// Package deploy serves model versions: a Deployer starts, moves, lists
// and stops the deployments a repository declares (deployments: in CUE).
// What a deployment should serve, and whether the version verifies, is
// decided by its caller (zen's apply, from the stage the state ref
// records); a Deployer is handed a Target and the means to fetch the
// version's files, and reports what it serves.
//
// Local serves each deployment as a process on this machine, on the host
// or in the model's image with podman. GitOps renders each as Kubernetes
// manifests committed to a deploy repository, which a controller of the
// cluster applies.
package deploy

import (
	"context"
	"io"
	"time"
)

// Deployer serves deployments.
type Deployer interface {
	// Status reports what a deployment serves now, nil when it serves
	// nothing.
	Status(ctx context.Context, name string) (*Status, error)
	// Deploy serves t: it starts t's version and, once that is ready,
	// stops what served the deployment before. When t cannot start,
	// what served the deployment before goes on serving.
	Deploy(ctx context.Context, t *Target) (*Status, error)
	// List reports every deployment served, sorted by name.
	List(ctx context.Context) ([]*Status, error)
	// Stop stops a deployment; stopping one that serves nothing is not an
	// error.
	Stop(ctx context.Context, name string) error
	// Logs copies a deployment's log to w, and with follow goes on
	// copying what it writes until ctx ends.
	Logs(ctx context.Context, name string, w io.Writer, follow bool) error
}

// Target is a deployment to serve: a model version and how to serve it.
type Target struct {
	Name    string `json:"name"`
	Model   string `json:"model"`
	Stage   string `json:"stage"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
	// Spec is the digest of how it is served (schema.ServeSpec): a
	// process started with another spec is started again.
	Spec string `json:"spec"`
	// Run is the serving command, run from Root.
	Run  []string `json:"run"`
	Root string   `json:"root"`
	// Image is the image to run it in, pinned by digest; "" for the host.
	Image string `json:"image,omitempty"`
	// Health is the path that answers 2xx once the process is ready; ""
	// for ready once the port accepts connections.
	Health       string            `json:"health,omitempty"`
	StartTimeout time.Duration     `json:"start_timeout"`
	Env          map[string]string `json:"env,omitempty"`
	// Port is the port to listen on; 0 for a free one, picked for each
	// start.
	Port int `json:"port,omitempty"`
	// Fetch writes the version's files at dest: pulled by digest and
	// verified by the caller.
	Fetch func(ctx context.Context, dest string) error `json:"-"`
	// Ref is the version in its registry, by digest
	// (registry/repo/models/NAME@sha256:…), for a deployer whose cluster
	// pulls it; "" when the artifact store is not a registry.
	Ref string `json:"ref,omitempty"`
	// Source is the commit of the repository that declares the
	// deployment.
	Source string `json:"source,omitempty"`
}

// Status is what a deployment serves.
type Status struct {
	Name    string `json:"name"`
	Model   string `json:"model"`
	Stage   string `json:"stage"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
	Spec    string `json:"spec"`
	URL     string `json:"url"`
	// State is running (the process answers its health check), unhealthy
	// (it runs, but does not answer) or exited.
	State   State     `json:"state"`
	Started time.Time `json:"started"`
	// PID is the serving process (podman's, for one in an image), and
	// Container its container; Log is its log file.
	PID       int    `json:"pid"`
	Container string `json:"container,omitempty"`
	Log       string `json:"log"`
	// Image is the image it runs in; "" for the host.
	Image string `json:"image,omitempty"`
}

// State is whether a deployment's process serves.
type State string

// The states.
const (
	Running   State = "running"
	Unhealthy State = "unhealthy"
	Exited    State = "exited"
	// Stopped: declared, and nothing serves it. A Deployer never
	// reports it; a listing of the declared deployments does.
	Stopped State = "stopped"
	// Rendered: its manifests are committed to a GitOps deploy
	// repository, whose controller applies them to a cluster; whether
	// that serves is the cluster's to say.
	Rendered State = "rendered"
)

// Serves reports whether s serves t's version as t says: running (or
// rendered), the same digest and the same spec.
func (s *Status) Serves(digest, spec string) bool {
	return s != nil && s.State.Current() && s.Digest == digest && s.Spec == spec
}

// Current reports whether a deployment in state s is as its deployer
// made it: running, or rendered.
func (s State) Current() bool { return s == Running || s == Rendered }
