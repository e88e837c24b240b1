package apply

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/state"
)

// TestRunRemoteStepImage: the step runner on a node runs a step with an
// image through the container runner, with the image its spec pins; a
// spec that holds a tag instead runs nothing.
func TestRunRemoteStepImage(t *testing.T) {
	const pinned = "example.com/base@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tt := range []struct {
		image  string
		status string
		reason string
	}{
		{pinned, state.StatusSucceeded, ""},
		{"example.com/base:1", state.StatusFailed, "image example.com/base:1 is not pinned to a digest"},
	} {
		t.Run(tt.image, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			cue := `package zen

pipelines: p: steps: s: {
	image: "example.com/base:1"
	run: ["true"]
	outputs: out: type: "file"
}
`
			if err := os.MkdirAll(src, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, "zen.cue"), []byte(cue), 0o644); err != nil {
				t.Fatal(err)
			}
			// podman, faked: it records its command line and writes the
			// step's output where the contract says.
			args := filepath.Join(dir, "args")
			fake := filepath.Join(dir, "podman")
			script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + args + "\nfor a; do case $a in ZEN_OUTPUTS=*) echo done > \"${a#ZEN_OUTPUTS=}/out\";; esac; done\n"
			if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			defer func(p string) { podman = p }(podman)
			podman = fake

			store, err := registry.OpenLayout(filepath.Join(dir, "store"))
			if err != nil {
				t.Fatal(err)
			}
			sd, err := store.Push(ctx, src, "source")
			if err != nil {
				t.Fatal(err)
			}
			spec := &StepSpec{Version: specVersion, RunID: "r1", Pipeline: "p", Step: "s", Source: sd.Digest, Image: tt.image}
			tag := specTag("r1", "p", "s")
			if err := putJSON(ctx, store, tag, "step-spec", spec); err != nil {
				t.Fatal(err)
			}
			res, err := RunRemoteStep(ctx, store, tag, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tt.status || res.Reason != tt.reason {
				t.Fatalf("result %s %q, want %s %q", res.Status, res.Reason, tt.status, tt.reason)
			}
			b, err := os.ReadFile(args)
			if tt.status != state.StatusSucceeded {
				if err == nil {
					t.Fatalf("podman ran: %s", b)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			argv := "\n" + string(b)
			if !strings.Contains(argv, "\nrun\n") || !strings.HasSuffix(argv, "\n"+pinned+"\ntrue\n") {
				t.Errorf("podman ran %q, want podman run … %s true", b, pinned)
			}
			if strings.Contains(argv, "base:1") {
				t.Errorf("podman was given the tag: %q", b)
			}
		})
	}
}
