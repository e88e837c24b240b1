package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/zen-dev/zen/internal/wait"
	"github.com/zen-dev/zen/progress"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// runStep runs a step on this machine, with its retries, and stores its
// outputs and log: the step runner of the local orchestrator and of zen
// step-run on a node. Signing and journaling are the executor's.
func (a *applier) runStep(ctx context.Context, n *node, key string) *state.StepResult {
	start := time.Now().UTC()
	res := &state.StepResult{Status: state.StatusFailed, CacheKey: key, Started: &start}
	defer func() {
		end := time.Now().UTC()
		res.Finished = &end
	}()
	dir := filepath.Join(a.work, n.pr.pipeline.Name, n.step.Name)
	inputs, outputs, tmp := filepath.Join(dir, "inputs"), filepath.Join(dir, "outputs"), filepath.Join(dir, "tmp")
	params, metrics, logPath := filepath.Join(dir, "params.json"), filepath.Join(dir, "metrics.json"), filepath.Join(dir, "log.txt")
	var ctr *container
	if n.step.Image != "" {
		// The step writes its metrics into a folder of their own: the
		// container sees the step's folder read-only but for it, its
		// outputs and TMPDIR.
		metrics = filepath.Join(dir, "metrics", "metrics.json")
		ctr = &container{
			image: n.planned.Fingerprint.Image, name: containerName(n.pr.run.ID, n.pr.pipeline.Name, n.step.Name),
			network: n.step.Network, root: a.env.Config.Root,
			ro: []string{a.work}, rw: []string{outputs, tmp, filepath.Dir(metrics)},
		}
		if r := n.step.Resources; r != nil {
			ctr.memory = r.Memory
		}
		if !strings.Contains(ctr.image, "@sha256:") {
			// Plan pins every image (Options.Images); a tag here would run
			// whatever it points at now.
			res.Reason = fmt.Sprintf("image %s is not pinned to a digest", ctr.image)
			return res
		}
	}
	for _, d := range []string{inputs, tmp, filepath.Dir(metrics)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			res.Reason = err.Error()
			return res
		}
	}
	if err := a.linkInputs(ctx, n, inputs); err != nil {
		res.Reason = err.Error()
		return res
	}
	pb, err := json.MarshalIndent(n.step.Parameters, "", "  ")
	if err == nil {
		err = os.WriteFile(params, append(pb, '\n'), 0o644)
	}
	if err != nil {
		res.Reason = "write parameters: " + err.Error()
		return res
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	contract := []string{
		"ZEN_INPUTS=" + inputs, "ZEN_OUTPUTS=" + outputs, "ZEN_PARAMS=" + params, "ZEN_METRICS=" + metrics,
		"ZEN_RUN_ID=" + n.pr.run.ID, "ZEN_PIPELINE=" + n.pr.pipeline.Name, "ZEN_STEP=" + n.step.Name,
		"ZEN_COMMIT=" + n.pr.run.SourceCommit, "TMPDIR=" + tmp, "PYTHONDONTWRITEBYTECODE=1"}
	env := append(append(stepEnv(os.Environ(), false), contract...), n.env...)
	argv := n.step.Run
	if ctr != nil {
		ctr.env = contract
		for _, kv := range n.env {
			name, _, _ := strings.Cut(kv, "=")
			if n.step.Env[name].Secret != "" {
				ctr.secrets = append(ctr.secrets, kv)
			} else {
				ctr.env = append(ctr.env, kv)
			}
		}
		argv, env = ctr.command(n.step.Run), ctr.environ()
	}

	attempts := n.step.Retries.Attempts + 1
	backoff := n.step.Retries.Backoff
	a.report(n, progress.Running, "%s %s %s", n.planned.Action.Symbol(), stepLabel(n), "running")
	for attempt := 1; attempt <= attempts; attempt++ {
		res.Attempts = attempt
		if attempt > 1 {
			fmt.Fprintf(logFile, "--- attempt %d of %d ---\n", attempt, attempts)
			a.progress(n, "~ %s retrying (attempt %d of %d) after %s", stepLabel(n), attempt, attempts, backoff)
			werr := wait.Sleep(ctx, backoff)
			backoff *= 2
			if werr != nil {
				res.Status, res.Reason = state.StatusCancelled, "apply cancelled"
				break
			}
		}
		_ = os.RemoveAll(outputs)
		_ = os.Remove(metrics)
		if err := os.MkdirAll(outputs, 0o755); err != nil {
			res.Reason = err.Error()
			break
		}
		p := &process{argv: argv, dir: a.env.Config.Root, env: env, timeout: n.step.Timeout, log: logFile, stream: a.stream, prefix: n.prefix(), redact: a.secrets}
		if ctr != nil {
			p.exitSignals, p.stopped = true, ctr.remove
		}
		out := p.run(ctx)
		// A container over its memory limit is killed by the kernel with
		// SIGKILL; podman says so where it can tell (cgroup v2), and
		// where it cannot, SIGKILL under a limit is most likely that.
		oom := ""
		if ctr != nil && ctr.kept() {
			if out.signal == syscall.SIGKILL && !out.timedOut && !out.cancelled {
				oom = "likely out of memory"
				if ctr.oomKilled() {
					oom = "out of memory"
				}
			}
			ctr.remove()
		}
		code := out.exitCode
		res.ExitCode = &code
		switch {
		case out.cancelled:
			res.Status, res.Reason = state.StatusCancelled, "apply cancelled while the step ran"
		case out.timedOut:
			res.Reason = fmt.Sprintf("timed out after %s", n.step.Timeout)
		case oom != "":
			res.Reason = fmt.Sprintf("%s: %s (resources.memory %s)", out, oom, ctr.memory)
		case !out.ok():
			res.Reason = out.String()
		default:
			if err := checkOutputs(n.step, outputs); err != nil {
				res.Reason = err.Error()
			} else if m, err := readMetrics(metrics); err != nil {
				res.Reason = err.Error()
			} else {
				res.Status, res.Reason, res.Metrics = state.StatusSucceeded, "", m
			}
		}
		if res.Status != state.StatusFailed || noRetry(n.step, out) {
			break
		}
		fmt.Fprintf(logFile, "zen: attempt %d failed: %s\n", attempt, res.Reason)
	}
	logFile.Close()

	// The log is stored whatever became of the step, and outlives a cancel.
	store := context.WithoutCancel(ctx)
	d, err := a.env.Store.Push(store, logPath, "log")
	if err == nil {
		res.Log = &state.Artifact{Digest: d.Digest, Size: d.Size, Type: "log", MediaType: d.MediaType}
	} else if res.Status == state.StatusSucceeded {
		res.Status, res.Reason = state.StatusFailed, "store log: "+err.Error()
	}
	if res.Status == state.StatusSucceeded {
		res.Outputs = map[string]state.Artifact{}
		for _, name := range n.step.OutputNames() {
			o := n.step.Outputs[name]
			d, err := a.env.Store.Push(store, filepath.Join(outputs, name), o.Type)
			if err != nil {
				res.Status, res.Reason, res.Outputs = state.StatusFailed, fmt.Sprintf("store output %s: %v", name, err), nil
				break
			}
			res.Outputs[name] = state.Artifact{Digest: d.Digest, Size: d.Size, Type: o.Type, MediaType: d.MediaType}
		}
	}
	if res.Status == state.StatusSucceeded {
		n.outDir = outputs
		readOnly(outputs)
	}
	res.Reason = Redact(res.Reason, a.secrets)
	return res
}

func stepLabel(n *node) string { return n.pr.pipeline.Name + "." + n.step.Name }

// noRetry reports whether a failed attempt must not be retried.
func noRetry(s *schema.Step, out outcome) bool {
	if out.cancelled {
		return true
	}
	for _, c := range s.Retries.ExceptExitCodes {
		if !out.timedOut && out.exitCode == c {
			return true
		}
	}
	return false
}

// linkInputs makes one entry per input in dir: a link to the repository
// file or folder, to the output of an upstream step that ran here, or to an
// artifact pulled from the store.
func (a *applier) linkInputs(ctx context.Context, n *node, dir string) error {
	for _, name := range n.step.InputNames() {
		in := n.step.Inputs[name]
		var target string
		switch in.Kind {
		case schema.InputFile, schema.InputDir:
			target = filepath.Join(a.env.Config.Root, filepath.FromSlash(in.Path))
		case schema.InputStep:
			up := n.pr.nodes[in.Step]
			if up.outDir != "" {
				target = filepath.Join(up.outDir, in.Output)
				break
			}
			p, err := a.pull(ctx, up.res.Outputs[in.Output].Digest)
			if err != nil {
				return fmt.Errorf("input %s (%s): %w", name, in.Source(), err)
			}
			target = p
		case schema.InputModel:
			ms, ok := a.env.Store.(registry.ModelStore)
			if !ok {
				return fmt.Errorf("input %s: artifact store %s holds no models", name, a.env.Store)
			}
			digest := n.planned.Fingerprint.Inputs[name]
			p, err := a.once("models", digest, func(dest string) error {
				if err := a.verifyStageInput(ctx, ms, in.Model, in.Stage, digest); err != nil {
					return err
				}
				return ms.PullModel(ctx, digest, in.Model, dest)
			})
			if err != nil {
				return fmt.Errorf("input %s (%s): %w", name, in.Source(), err)
			}
			target = p
		case schema.InputData:
			p, err := a.once("artifacts", in.Digest, func(dest string) error {
				if err := a.verifyData(ctx, in); err != nil {
					return err
				}
				// Pull checks the bytes against the digest: content that
				// does not match never appears at dest.
				return a.env.Store.Pull(ctx, in.Digest, dest)
			})
			if err != nil {
				return fmt.Errorf("input %s (data %s): %w", name, in.Source(), err)
			}
			target = p
		}
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("input %s: %w", name, err)
		}
	}
	return nil
}

// verifyData checks that a data input is signed by the stack's key, as a
// cache hit's outputs are, before a step reads it. Without a key (a stack
// that signs nothing, or a Slurm node, whose submitting apply checked it)
// the content's digest is all that is checked.
func (a *applier) verifyData(ctx context.Context, in *schema.Input) error {
	if a.env.Verifier == nil {
		return nil
	}
	if err := signature.Verify(ctx, a.env.Store.ArtifactRepository(), in.Digest, a.env.Verifier); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	return nil
}

// pull fetches an artifact from the store once per apply.
func (a *applier) pull(ctx context.Context, digest string) (string, error) {
	return a.once("artifacts", digest, func(dest string) error { return a.env.Store.Pull(ctx, digest, dest) })
}

// once fetches content, by digest, into the apply's work folder once, for
// every step that reads it; the copy is read-only.
func (a *applier) once(kind, digest string, fetch func(dest string) error) (string, error) {
	// The digest names a folder: one that is not a sha256 digest (a record
	// edited by hand) must not lead outside the work folder.
	hex, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%q is not a sha256 digest", digest)
	}
	a.mu.Lock()
	p, ok := a.pulled[kind+"/"+digest]
	if !ok {
		p = &pull{path: filepath.Join(a.work, kind, strings.TrimPrefix(digest, "sha256:"))}
		a.pulled[kind+"/"+digest] = p
	}
	a.mu.Unlock()
	p.once.Do(func() {
		if err := os.MkdirAll(filepath.Dir(p.path), 0o755); err != nil {
			p.err = err
			return
		}
		p.err = fetch(p.path)
		if p.err == nil {
			readOnly(p.path)
		}
	})
	return p.path, p.err
}

// checkOutputs checks that the step wrote exactly its declared outputs,
// each of the declared shape.
func checkOutputs(s *schema.Step, dir string) error {
	// The folder itself must still be the one zen made: replaced by a
	// link, it would have zen store whatever the link leads to.
	if fi, err := os.Lstat(dir); err != nil {
		return fmt.Errorf("$ZEN_OUTPUTS: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("$ZEN_OUTPUTS: the step replaced the folder with %s; write the outputs into it", fileKind(fi.Mode()))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var extra []string
	for _, e := range entries {
		if _, ok := s.Outputs[e.Name()]; !ok {
			extra = append(extra, e.Name())
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("wrote undeclared outputs: %s (declared: %s)", strings.Join(extra, ", "), strings.Join(s.OutputNames(), ", "))
	}
	for _, name := range s.OutputNames() {
		o := s.Outputs[name]
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("output %s: not written (the step must create $ZEN_OUTPUTS/%s)", name, name)
		}
		if err != nil {
			return fmt.Errorf("output %s: %v", name, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("output %s: is a symbolic link; write the content itself", name)
		}
		switch o.Type {
		case "dir":
			if !fi.IsDir() {
				return fmt.Errorf("output %s: type dir, but the step wrote a file", name)
			}
		case "model":
			if fi.IsDir() {
				if es, _ := os.ReadDir(p); len(es) == 0 {
					return fmt.Errorf("output %s: type model, but the folder is empty", name)
				}
			} else if !fi.Mode().IsRegular() {
				return fmt.Errorf("output %s: type model must be a file or a folder, not %s", name, fileKind(fi.Mode()))
			}
		default:
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("output %s: type %s must be a file", name, o.Type)
			}
			if o.Type == "json" {
				b, err := os.ReadFile(p)
				if err == nil && !json.Valid(b) {
					err = errors.New("not valid JSON")
				}
				if err != nil {
					return fmt.Errorf("output %s: type json: %v", name, err)
				}
			}
		}
	}
	return nil
}

// maxMetrics bounds the metrics file a step writes. Metrics go into every
// run record; a megabyte is some twenty thousand of them.
const maxMetrics = 1 << 20

// readMetrics reads the step's metrics: a JSON object of numbers, nested
// objects flattened with dots. No file means no metrics. The file must be
// a regular file of at most maxMetrics bytes: a step can leave a link to
// /dev/zero there, or a FIFO no one writes to.
func readMetrics(path string) (map[string]float64, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("metrics ($ZEN_METRICS): is %s; write the JSON itself", fileKind(fi.Mode()))
	}
	if fi.Size() > maxMetrics {
		return nil, fmt.Errorf("metrics ($ZEN_METRICS): %d bytes, more than the %d a step may write", fi.Size(), maxMetrics)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetrics+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetrics {
		return nil, fmt.Errorf("metrics ($ZEN_METRICS): more than the %d bytes a step may write", maxMetrics)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("metrics ($ZEN_METRICS): want a JSON object of numbers: %v", err)
	}
	out := map[string]float64{}
	var walk func(prefix string, m map[string]any) error
	walk = func(prefix string, m map[string]any) error {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			name := prefix + k
			switch v := m[k].(type) {
			case float64:
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("metrics: %s is not a finite number", name)
				}
				out[name] = v
			case map[string]any:
				if err := walk(name+".", v); err != nil {
					return err
				}
			default:
				return fmt.Errorf("metrics: %s is not a number", name)
			}
		}
		return nil
	}
	if err := walk("", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// fileKind names the kind of a file, for messages.
func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a folder"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	case m.IsRegular():
		return "a file"
	}
	return "a special file"
}

// readOnly makes a step's finished outputs read-only for the steps that
// read them.
func readOnly(root string) {
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return nil
		}
		if fi.IsDir() {
			return os.Chmod(p, 0o555)
		}
		return os.Chmod(p, fi.Mode().Perm()&^0o222)
	})
}
