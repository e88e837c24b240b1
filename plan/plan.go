// Package plan computes what zen apply would do: for every step of every
// pipeline, whether its recorded outputs can be reused or it must run, and
// why. Compute is a pure function of the loaded configuration, the recorded
// state, the digests of the repository's files and what the artifact store
// holds; it reads, and never writes. Rendering lives in plan/render.
package plan

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/zen-dev/zen/registry/provenance"
	"github.com/zen-dev/zen/registry/verify"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// Version is the version of the Plan's JSON form.
const Version = 1

// Action is what apply does with a step.
type Action string

// The actions.
const (
	Cached Action = "cached" // reuse recorded outputs; the step does not run
	Run    Action = "run"    // the step runs
	Create Action = "create" // the step runs for the first time
)

// Symbol is the one-character mark of the action in the text plan.
func (a Action) Symbol() string {
	switch a {
	case Cached:
		return "="
	case Create:
		return "+"
	default:
		return "~"
	}
}

// Plan is the whole plan: plain data, rendered by plan/render.
type Plan struct {
	Version     int        `json:"format_version"`
	Stack       string     `json:"stack"`
	Store       string     `json:"artifact_store"`
	StateCommit string     `json:"state_commit,omitempty"`
	Source      Source     `json:"source"`
	Overrides   []Override `json:"overrides,omitempty"`
	NoCache     bool       `json:"no_cache,omitempty"`
	// Preview, for zen apply --preview, is the branch's preview the runs
	// are recorded in: no baseline moves, and the model changes are what
	// the apply after the merge would make.
	Preview   *Preview    `json:"preview,omitempty"`
	Pipelines []*Pipeline `json:"pipelines"`
	// Models lists the model versions to produce and the stages to move.
	Models []*ModelChange `json:"models,omitempty"`
	// Deployments lists the deployments to start, move or stop, once the
	// stages have moved.
	Deployments []*DeploymentChange `json:"deployments,omitempty"`
	// Warnings are things the plan could not check.
	Warnings []string `json:"warnings,omitempty"`
}

// Source is the commit the plan was made from.
type Source struct {
	Commit string `json:"commit,omitempty"`
	// Dirty: the work tree has uncommitted changes; DirtyDigest identifies them.
	Dirty       bool   `json:"dirty,omitempty"`
	DirtyDigest string `json:"dirty_digest,omitempty"`
	// Changed lists the uncommitted paths, for messages.
	Changed []string `json:"changed,omitempty"`
}

// Preview is a pull-request preview: the branch, the ref its runs are
// recorded on (refs/zen/preview/<branch>), and that ref's commit the plan
// read ("" for none yet).
type Preview struct {
	Branch      string `json:"branch"`
	Ref         string `json:"ref"`
	StateCommit string `json:"state_commit,omitempty"`
}

// Override is a parameter set with --set for one experiment.
type Override struct {
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// Pipeline is the plan of one pipeline.
type Pipeline struct {
	Name  string  `json:"name"`
	Steps []*Step `json:"steps"`
	// Baseline is set when no step runs but the pipeline's baseline, the
	// last applied declaration that plan compares against
	// (pipelines/<name>.json), has other keys than this plan's: apply
	// records this plan's steps as the baseline, and runs nothing. Without
	// it, a git revert whose steps are all cached would leave the next
	// plan explaining itself against the reverted declaration.
	Baseline *Baseline `json:"baseline,omitempty"`
}

// Baseline is a pipeline's baseline that an apply moves without running
// anything.
type Baseline struct {
	// From is the source commit of the baseline recorded now, "" when
	// none is.
	From string `json:"from,omitempty"`
	// Steps lists, in order, the steps whose recorded key (or status)
	// is not this plan's.
	Steps []string `json:"steps"`
}

// Step is the plan of one step.
type Step struct {
	Name   string `json:"name"`
	Action Action `json:"action"`
	// Key is the cache key, "" while an upstream step must run first.
	Key     string   `json:"cache_key,omitempty"`
	Reasons []Reason `json:"reasons,omitempty"`
	// For a cached step: the run that produced the outputs, and the outputs.
	CachedFrom string `json:"cached_from,omitempty"`
	// Preview names the branch whose preview made the outputs reused.
	Preview string                    `json:"preview,omitempty"`
	Outputs map[string]state.Artifact `json:"outputs,omitempty"`
	Metrics map[string]float64        `json:"metrics,omitempty"`
	Log     *state.Artifact           `json:"log,omitempty"`
	// Fingerprint is what the key is made of; inputs from upstream steps
	// that must run are missing from it.
	Fingerprint *state.Fingerprint `json:"fingerprint"`
	// Resources are what the step asks of the machine that runs it (on a
	// Slurm stack, sbatch options).
	Resources *schema.Resources `json:"resources,omitempty"`
	// Image is the image the step runs in, as declared and as pinned;
	// nil for a step on the host. The pinned reference is also the
	// fingerprint's Image, which apply runs.
	Image *Image `json:"image,omitempty"`
}

// Image is a step's image: the reference declared in CUE (a tag or a
// digest) and the one plan pinned it to, name@sha256:….
type Image struct {
	Declared string `json:"declared"`
	Pinned   string `json:"pinned"`
}

// Digest is the pinned manifest digest, sha256:….
func (im *Image) Digest() string {
	_, d, _ := strings.Cut(im.Pinned, "@")
	return d
}

// Tagged reports whether the declared reference was not already a digest.
func (im *Image) Tagged() bool {
	return im.Declared != im.Pinned && !strings.Contains(im.Declared, "@sha256:")
}

// Runs reports whether the step runs.
func (s *Step) Runs() bool { return s.Action != Cached }

// Reason explains why a step runs.
type Reason struct {
	Kind    ReasonKind `json:"kind"`
	Subject string     `json:"subject,omitempty"`
	Old     string     `json:"old,omitempty"`
	New     string     `json:"new,omitempty"`
}

// ReasonKind classifies reasons.
type ReasonKind string

// The reasons a step runs.
const (
	ReasonNew        ReasonKind = "new"        // never run
	ReasonCode       ReasonKind = "code"       // a code file changed, was added or removed
	ReasonParameter  ReasonKind = "parameter"  // a parameter value changed
	ReasonInput      ReasonKind = "input"      // an input's content changed
	ReasonUpstream   ReasonKind = "upstream"   // an upstream step runs first
	ReasonCommand    ReasonKind = "command"    // run: changed
	ReasonImage      ReasonKind = "image"      // image: changed
	ReasonEnv        ReasonKind = "env"        // an environment variable changed
	ReasonExecutable ReasonKind = "executable" // the program run[0] names changed
	ReasonOutputs    ReasonKind = "outputs"    // declared outputs changed
	ReasonFailed     ReasonKind = "failed"     // the same step failed last time
	ReasonCancelled  ReasonKind = "cancelled"  // the same step was cancelled last time
	ReasonMissing    ReasonKind = "missing"    // recorded outputs are gone from the store
	ReasonUnverified ReasonKind = "unverified" // recorded outputs' signatures do not verify
	ReasonNoCache    ReasonKind = "no-cache"   // cache: false or --no-cache
	ReasonNotCached  ReasonKind = "not-cached" // same fingerprint but no cache entry
)

// String renders the reason for people.
func (r Reason) String() string {
	switch r.Kind {
	case ReasonNew:
		return "new step"
	case ReasonCode:
		switch {
		case r.Old == "":
			return "code added: " + r.Subject
		case r.New == "":
			return "code removed: " + r.Subject
		}
		return "code changed: " + r.Subject
	case ReasonParameter:
		old, nw := r.Old, r.New
		if old == "" {
			old = "(unset)"
		}
		if nw == "" {
			nw = "(unset)"
		}
		return fmt.Sprintf("parameter changed: %s %s → %s", clip(r.Subject), clip(old), clip(nw))
	case ReasonInput:
		return "input changed: " + r.Subject
	case ReasonUpstream:
		return "upstream re-runs: " + r.Subject
	case ReasonCommand:
		return fmt.Sprintf("command changed: %s → %s", clip(r.Old), clip(r.New))
	case ReasonImage:
		return fmt.Sprintf("image changed: %s → %s", clip(r.Old), clip(r.New))
	case ReasonEnv:
		return "env changed: " + r.Subject
	case ReasonExecutable:
		return "executable changed: " + r.Subject
	case ReasonOutputs:
		return "outputs changed: " + r.Subject
	case ReasonFailed:
		return "failed in run " + r.Subject
	case ReasonCancelled:
		return "cancelled in run " + r.Subject
	case ReasonMissing:
		return "cached outputs missing from the store: " + r.Subject
	case ReasonUnverified:
		return "cached outputs no longer verify: " + r.Subject + " (" + r.New + ")"
	case ReasonNoCache:
		return r.Subject
	case ReasonNotCached:
		return "no cache entry for key " + short(r.Subject)
	}
	return string(r.Kind)
}

// maxShown is how much of a value a reason shows; the JSON plan has it
// whole.
const maxShown = 200

// clip shortens a value too long to read in a plan (a parameter of
// megabytes would make the plan, and the pull request comment made of
// it, megabytes too), saying how long it is.
func clip(s string) string {
	if len(s) <= maxShown {
		return s
	}
	cut := maxShown - 40
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
}

// Recorded is what plan reads of the state ref.
type Recorded interface {
	Cache(key string) (*state.Cache, bool, error)
	Pipeline(name string) (*state.Pipeline, bool, error)
}

// Store is what plan asks of the artifact store.
type Store interface {
	Has(ctx context.Context, digest string) (bool, error)
	String() string
}

// Options select what to plan.
type Options struct {
	Stack     string
	Pipelines []string // only these; none means all
	NoCache   bool
	Source    Source
	Overrides []Override
	// StateCommit is the state ref's commit that Recorded reads.
	StateCommit string
	// Verify, when not nil, checks the signature and provenance of a
	// stored artifact a cache hit would reuse; made is what its
	// attestation must name. An error wrapping ErrUntrusted makes the step
	// run again; any other error fails the plan.
	Verify func(ctx context.Context, digest string, made *provenance.Build) error
	// Tags, when not nil, returns the digest a model's tag points at in
	// the store (found false when there is no such tag): plan compares the
	// recorded stages with it and repairs what moved outside zen.
	Tags func(ctx context.Context, model, tag string) (digest string, found bool, err error)
	// Signing is how apply would sign the model versions and stage moves
	// the plan makes: it refuses or marks them.
	Signing Signing
	// Preview plans a pull-request preview (see Plan.Preview).
	Preview *Preview
	// Images pins a step's image reference to name@sha256:… (see
	// registry.ResolveImage); an error names why the image cannot run.
	// Nil keeps images as declared.
	Images func(ctx context.Context, ref string) (string, error)
	// Served reports what each deployment serves now, by name, as the
	// stack's model deployer, of flavor Deployer, says; nil plans no
	// deployment (a stack whose model_deployer is none). A plan of some
	// pipelines, or a preview, plans none either: their stages do not
	// move.
	Served   func(ctx context.Context) (map[string]*Served, error)
	Deployer string
	// DeployerSettings are the model deployer's settings, part of each
	// deployment's spec: manifests rendered with other settings are
	// rendered again.
	DeployerSettings map[string]any
}

// ErrUntrusted is wrapped by the errors of Options.Verify for an artifact
// that is not signed, or not by the right key, or whose signature does not
// verify.
var ErrUntrusted = errors.New("signature does not verify")

// Compute makes the plan.
func Compute(ctx context.Context, cfg *schema.Config, rec Recorded, src Sources, store Store, opts Options) (*Plan, error) {
	p := &Plan{
		Version:     Version,
		Stack:       opts.Stack,
		Store:       store.String(),
		StateCommit: opts.StateCommit,
		Source:      opts.Source,
		Overrides:   opts.Overrides,
		NoCache:     opts.NoCache,
		Preview:     opts.Preview,
	}
	names, err := selectPipelines(cfg, opts.Pipelines)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		pp, err := planPipeline(ctx, cfg.Pipelines[name], rec, src, store, &opts)
		if err != nil {
			return nil, fmt.Errorf("pipeline %s: %w", name, err)
		}
		p.Pipelines = append(p.Pipelines, pp)
	}
	if len(opts.Pipelines) == 0 {
		if p.Models, err = planModels(cfg, p, rec); err != nil {
			return nil, err
		}
		opts.Signing.mark(p.Models)
		if err := planDrift(ctx, cfg, p, rec, opts.Tags); err != nil {
			return nil, err
		}
		if opts.Served != nil && opts.Preview == nil {
			served, err := opts.Served(ctx)
			if err != nil {
				return nil, fmt.Errorf("deployments: %w", err)
			}
			if p.Deployments, err = planDeployments(ctx, cfg, p, rec, schema.Component{Flavor: opts.Deployer, Settings: opts.DeployerSettings}, served, opts.Images); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

func selectPipelines(cfg *schema.Config, want []string) ([]string, error) {
	if len(want) == 0 {
		return cfg.PipelineNames(), nil
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range want {
		if _, ok := cfg.Pipelines[n]; !ok {
			return nil, fmt.Errorf("no pipeline %q (pipelines: %s)", n, joinNames(cfg.PipelineNames()))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

func planPipeline(ctx context.Context, pl *schema.Pipeline, rec Recorded, src Sources, store Store, opts *Options) (*Pipeline, error) {
	noCache := opts.NoCache
	prev, _, err := rec.Pipeline(pl.Name)
	if err != nil {
		return nil, err
	}
	pp := &Pipeline{Name: pl.Name}
	byName := map[string]*Step{}
	for _, name := range pl.Order {
		s := pl.Steps[name]
		ps := &Step{Name: name, Resources: s.Resources}
		byName[name] = ps
		pp.Steps = append(pp.Steps, ps)

		// Inputs from upstream steps are known only when those are cached.
		upstream := map[string]string{}
		var rerun []string
		for _, up := range s.Upstream() {
			if byName[up].Runs() {
				rerun = append(rerun, up)
			}
		}
		for _, in := range s.Inputs {
			if in.Kind == schema.InputModel {
				d, err := stageDigest(rec, in.Model, in.Stage)
				if err != nil {
					return nil, fmt.Errorf("step %s: input %s: %w", name, in.Name, err)
				}
				upstream[in.Name] = d
			}
			if in.Kind == schema.InputStep && !byName[in.Step].Runs() {
				art, ok := byName[in.Step].Outputs[in.Output]
				if !ok {
					return nil, fmt.Errorf("step %s: cached step %s has no recorded output %s", name, in.Step, in.Output)
				}
				upstream[in.Name] = art.Digest
			}
		}
		fp, err := Fingerprint(s, src, upstream)
		if err != nil {
			return nil, fmt.Errorf("step %s: %w", name, err)
		}
		if err := checkData(ctx, store, s); err != nil {
			return nil, fmt.Errorf("step %s: %w", name, err)
		}
		if s.Image != "" && opts.Images != nil {
			pinned, err := opts.Images(ctx, s.Image)
			if err != nil {
				return nil, fmt.Errorf("step %s: image %s: %w", name, s.Image, err)
			}
			// The key holds the digest, never the tag: a tag that moves
			// changes the key, and apply runs what was planned.
			fp.Image = pinned
			ps.Image = &Image{Declared: s.Image, Pinned: pinned}
		}
		ps.Fingerprint = fp
		var last *state.StepState
		if prev != nil {
			last = prev.Steps[name]
		}
		if len(rerun) > 0 {
			ps.Action = Run
			if last == nil {
				ps.Action = Create
			}
			ps.Reasons = append(ps.Reasons, Reason{Kind: ReasonUpstream, Subject: joinNames(rerun)})
			if last != nil {
				ps.Reasons = append(ps.Reasons, Diff(last.Fingerprint, fp, true)...)
			}
			continue
		}
		ps.Key = Key(fp)
		if noCache || !s.Cache {
			ps.Action = Run
			why := "cache: false"
			if noCache {
				why = "--no-cache"
			}
			ps.Reasons = []Reason{{Kind: ReasonNoCache, Subject: why}}
			continue
		}
		hit, ok, err := lookup(rec, pl.Name, name, last, ps.Key)
		if err != nil {
			return nil, err
		}
		if ok {
			missing, err := missingOutputs(ctx, store, hit)
			if err != nil {
				return nil, err
			}
			var untrusted []string
			var why string
			if len(missing) == 0 && opts.Verify != nil {
				untrusted, why, err = untrustedOutputs(ctx, opts.Verify, hit, fp.Inputs)
				if err != nil {
					return nil, fmt.Errorf("step %s: %w", name, err)
				}
			}
			if len(untrusted) > 0 {
				ps.Action = Run
				ps.Reasons = []Reason{{Kind: ReasonUnverified, Subject: joinNames(untrusted), New: why}}
				continue
			}
			if len(missing) == 0 {
				ps.Action = Cached
				ps.CachedFrom = hit.RunID
				ps.Preview = hit.Preview
				ps.Outputs = hit.Outputs
				ps.Metrics = hit.Metrics
				ps.Log = hit.Log
				continue
			}
			ps.Action = Run
			ps.Reasons = []Reason{{Kind: ReasonMissing, Subject: joinNames(missing)}}
			continue
		}
		ps.Action = Run
		switch {
		case last == nil:
			ps.Action = Create
			ps.Reasons = []Reason{{Kind: ReasonNew}}
		default:
			ps.Reasons = Diff(last.Fingerprint, fp, false)
			if len(ps.Reasons) == 0 && last.Status == state.StatusFailed {
				ps.Reasons = []Reason{{Kind: ReasonFailed, Subject: last.RunID, New: last.Reason}}
			}
			if len(ps.Reasons) == 0 && last.Status == state.StatusCancelled {
				ps.Reasons = []Reason{{Kind: ReasonCancelled, Subject: last.RunID}}
			}
			if len(ps.Reasons) == 0 {
				ps.Reasons = []Reason{{Kind: ReasonNotCached, Subject: ps.Key}}
			}
		}
	}
	if len(opts.Overrides) == 0 && opts.Preview == nil {
		pp.Baseline = baselineMove(prev, pp)
	}
	return pp, nil
}

// baselineMove says whether applying pp, in which no step runs, moves the
// pipeline's baseline: whether a step's recorded key is not the one pp
// applies, or the step did not succeed then. An experiment never moves
// it, and a pipeline with steps to run moves it by recording its run.
func baselineMove(prev *state.Pipeline, pp *Pipeline) *Baseline {
	if len(pp.Steps) == 0 || pp.ToRun() > 0 {
		return nil
	}
	b := &Baseline{}
	if prev != nil {
		b.From = prev.SourceCommit
	}
	for _, s := range pp.Steps {
		var last *state.StepState
		if prev != nil {
			last = prev.Steps[s.Name]
		}
		if last == nil || last.Key != s.Key || last.Status != state.StatusSucceeded && last.Status != state.StatusCached {
			b.Steps = append(b.Steps, s.Name)
		}
	}
	if len(b.Steps) == 0 {
		return nil
	}
	return b
}

// stageDigest is the digest of the model version now in a stage: a
// champion a step compares against.
func stageDigest(rec Recorded, model, stage string) (string, error) {
	mr, ok := rec.(ModelRecorded)
	if !ok {
		return "", fmt.Errorf("model %s@%s: no model records", model, stage)
	}
	st, _, err := mr.Stages(model)
	if err != nil {
		return "", err
	}
	if st == nil || st.Stages[stage] == nil {
		return "", fmt.Errorf("model %s has no version in stage %s yet", model, stage)
	}
	return st.Stages[stage].Digest, nil
}

// lookup finds the cache entry of key: in the pipeline's record when the
// step's last result has that key, else in the cache index.
func lookup(rec Recorded, pipeline, step string, last *state.StepState, key string) (*state.Cache, bool, error) {
	if last != nil && last.Key == key && last.Outputs != nil && (last.Status == state.StatusSucceeded || last.Status == state.StatusCached) {
		return &state.Cache{Key: key, Pipeline: pipeline, Step: step, RunID: last.RunID, Outputs: last.Outputs, Metrics: last.Metrics, Log: last.Log}, true, nil
	}
	return rec.Cache(key)
}

// untrustedOutputs lists the outputs of a cache entry whose signatures do
// not verify, with the first reason.
func untrustedOutputs(ctx context.Context, check func(context.Context, string, *provenance.Build) error, c *state.Cache, inputs map[string]string) (names []string, why string, err error) {
	for _, name := range slices.Sorted(maps.Keys(c.Outputs)) {
		err := check(ctx, c.Outputs[name].Digest, verify.CacheBuild(c, name, inputs))
		switch {
		case errors.Is(err, ErrUntrusted):
			names = append(names, name)
			if why == "" {
				why = err.Error()
			}
		case err != nil:
			return nil, "", fmt.Errorf("output %s: %w", name, err)
		}
	}
	return names, why, nil
}

// missingOutputs lists the outputs of a cache entry that the store lacks.
func missingOutputs(ctx context.Context, store Store, c *state.Cache) ([]string, error) {
	var missing []string
	for _, name := range slices.Sorted(maps.Keys(c.Outputs)) {
		ok, err := store.Has(ctx, c.Outputs[name].Digest)
		if err != nil {
			return nil, err
		}
		if !ok {
			missing = append(missing, name)
		}
	}
	return missing, nil
}

// Summary counts what a plan does.
type Summary struct {
	Pipelines  int `json:"pipelines_to_run"`
	Run        int `json:"steps_to_run"`
	Cached     int `json:"steps_cached"`
	Versions   int `json:"new_versions"`
	Promotions int `json:"stage_changes"`
	Refused    int `json:"refused"`
	// Repairs counts stage tags to put back where the state ref says.
	Repairs int `json:"repairs"`
	// Baselines counts the pipelines whose baseline moves although none
	// of their steps runs.
	Baselines int `json:"baselines"`
	// Deployments counts the deployments to start, move or stop.
	Deployments int `json:"deployments"`
}

// Summary counts the pipelines and steps that run, and the cached steps.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, pl := range p.Pipelines {
		n := pl.ToRun()
		if n > 0 {
			s.Pipelines++
		}
		s.Run += n
		s.Cached += len(pl.Steps) - n
		if pl.Baseline != nil {
			s.Baselines++
		}
	}
	s.Deployments = len(p.Deployments)
	for _, c := range p.Models {
		switch {
		case c.Refused != "":
			s.Refused++
		case c.Action == Repair:
			s.Repairs++
		case c.IsVersion():
			s.Versions++
		default:
			s.Promotions++
		}
	}
	return s
}

// ToRun counts the steps of the pipeline that run.
func (pl *Pipeline) ToRun() int {
	n := 0
	for _, s := range pl.Steps {
		if s.Runs() {
			n++
		}
	}
	return n
}

// Changes reports whether applying the plan would do anything. A
// preview's apply only runs steps.
func (p *Plan) Changes() bool {
	return p.StateChanges() || p.Preview == nil && len(p.Deployments) > 0
}

// StateChanges reports whether applying the plan records anything: runs
// steps, or makes model changes. Deployments are not recorded.
func (p *Plan) StateChanges() bool {
	s := p.Summary()
	if p.Preview != nil {
		return s.Run > 0
	}
	return s.Run > 0 || s.Versions > 0 || s.Promotions > 0 || s.Repairs > 0 || s.Baselines > 0
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
