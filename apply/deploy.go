package apply

import "os"

// ServeProcess is how a deployment's serving process is started: its
// command line and its whole environment.
type ServeProcess struct {
	Argv []string
	Env  []string
	// Container names the podman container it runs in; "" for a process
	// of the host.
	Container string
}

// Serve says how to run a serving command argv from the repository root
// with the variables env (NAME=value) added: on the host with zen's
// environment less what no step gets, or, with image (pinned by digest),
// in a container named name, run as a step in an image is, by the
// same podman command, but on the host's network, so that the port it
// listens on is the host's, and with the folders ro mounted read-only.
func Serve(root string, argv []string, env []string, image, name string, ro []string) ServeProcess {
	if image == "" {
		return ServeProcess{Argv: argv, Env: append(stepEnv(os.Environ(), false), env...)}
	}
	c := &container{image: image, name: name, hostNetwork: true, root: root, ro: ro, env: env}
	return ServeProcess{Argv: c.command(argv), Env: c.environ(), Container: name}
}

// RemoveContainer stops and removes a serving process's container, if it
// is still there.
func RemoveContainer(name string) { (&container{name: name}).remove() }

// ServeContainerName is the container a deployment's release runs in:
// zen-deploy-NAME-RELEASE, each character podman does not allow as '_'.
func ServeContainerName(deployment, release string) string {
	return containerName("deploy", deployment, release)
}
