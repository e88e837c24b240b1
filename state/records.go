package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// RecordVersion is the version of the JSON records zen writes. A record of
// another version is refused with a message that names it.
const RecordVersion = 1

// Step and run statuses.
const (
	StatusSucceeded = "succeeded"
	StatusCached    = "cached"
	StatusFailed    = "failed"
	StatusSkipped   = "skipped"
	StatusCancelled = "cancelled"
	// StatusSubmitted is a detached run's, and its steps', while their
	// jobs are on the cluster and not collected yet.
	StatusSubmitted = "submitted"
)

// Artifact is a stored output, log or other blob of a run.
type Artifact struct {
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	Type      string `json:"type"`
	MediaType string `json:"mediaType,omitempty"`
}

// Run is the record of one pipeline run: runs/<shard>/<id>.json.
type Run struct {
	Version      int            `json:"version"`
	ID           string         `json:"id"`
	Pipeline     string         `json:"pipeline"`
	Status       string         `json:"status"`
	Error        string         `json:"error,omitempty"`
	SourceCommit string         `json:"source_commit,omitempty"`
	Dirty        bool           `json:"dirty,omitempty"`
	DirtyDigest  string         `json:"dirty_digest,omitempty"`
	Experiment   bool           `json:"experiment,omitempty"`
	Overrides    map[string]any `json:"overrides,omitempty"`
	// Preview names the branch whose pull-request preview made the run
	// (zen apply --preview): recorded under refs/zen/preview/<branch>,
	// and on the state ref too once an apply reused its outputs.
	Preview      string         `json:"preview,omitempty"`
	Stack        string         `json:"stack"`
	Orchestrator string         `json:"orchestrator"`
	Store        string         `json:"artifact_store"`
	Parameters   map[string]any `json:"parameters,omitempty"`
	// SignedBy identifies the public key that signed the run's artifacts
	// ("" when they are not signed).
	SignedBy string    `json:"signed_by,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Order lists the steps in the order they can run.
	Order []string               `json:"order,omitempty"`
	Steps map[string]*StepResult `json:"steps"`
}

// StepResult is what happened to one step in a run.
type StepResult struct {
	Status     string              `json:"status"`
	Reason     string              `json:"reason,omitempty"`
	CacheKey   string              `json:"cache_key,omitempty"`
	CachedFrom string              `json:"cached_from,omitempty"`
	Attempts   int                 `json:"attempts,omitempty"`
	ExitCode   *int                `json:"exit_code,omitempty"`
	Started    *time.Time          `json:"started,omitempty"`
	Finished   *time.Time          `json:"finished,omitempty"`
	Outputs    map[string]Artifact `json:"outputs,omitempty"`
	Metrics    map[string]float64  `json:"metrics,omitempty"`
	Log        *Artifact           `json:"log,omitempty"`
	// Fingerprint is what the step's cache key was made of, and Sources
	// says where each input came from (load.train, data/iris.csv): the
	// step's lineage.
	Fingerprint *Fingerprint      `json:"fingerprint,omitempty"`
	Sources     map[string]string `json:"input_sources,omitempty"`
	// Job and Node say where a step ran on a cluster: the Slurm job id
	// and the node's name.
	Job  string `json:"job,omitempty"`
	Node string `json:"node,omitempty"`
}

// Cache is one cache index entry: cache/<shard>/<key>.json.
type Cache struct {
	Version    int    `json:"version"`
	Key        string `json:"key"`
	Pipeline   string `json:"pipeline"`
	Step       string `json:"step"`
	RunID      string `json:"run_id"`
	Dirty      bool   `json:"dirty,omitempty"`
	Experiment bool   `json:"experiment,omitempty"`
	// Preview names the branch whose preview made the outputs.
	Preview string              `json:"preview,omitempty"`
	Created time.Time           `json:"created"`
	Outputs map[string]Artifact `json:"outputs"`
	Metrics map[string]float64  `json:"metrics,omitempty"`
	Log     *Artifact           `json:"log,omitempty"`
}

// Pipeline is what plan compares a pipeline against: pipelines/<name>.json,
// the pipeline's baseline. It is the last declaration applied (but for
// experiments): an apply records it with the run it made, and an apply
// that ran none of the pipeline's steps (all cached) records it alone.
type Pipeline struct {
	Version  int    `json:"version"`
	Pipeline string `json:"pipeline"`
	// RunID is the run of the apply that recorded the baseline, "" when
	// that apply ran nothing of the pipeline; each step names the run
	// that made its outputs.
	RunID        string                `json:"run_id,omitempty"`
	SourceCommit string                `json:"source_commit,omitempty"`
	Dirty        bool                  `json:"dirty,omitempty"`
	Updated      time.Time             `json:"updated"`
	Steps        map[string]*StepState `json:"steps"`
}

// StepState is a step's latest fingerprint and what became of it. A step
// that succeeded keeps its outputs here too, so that a plan with nothing
// changed reads one record per pipeline rather than one per step.
type StepState struct {
	Fingerprint *Fingerprint        `json:"fingerprint"`
	Key         string              `json:"cache_key,omitempty"`
	Status      string              `json:"status"`
	Reason      string              `json:"reason,omitempty"`
	RunID       string              `json:"run_id"`
	Outputs     map[string]Artifact `json:"outputs,omitempty"`
	Metrics     map[string]float64  `json:"metrics,omitempty"`
	Log         *Artifact           `json:"log,omitempty"`
}

// Fingerprint is everything the cache key of a step is made of. Secrets
// appear by name only.
type Fingerprint struct {
	Command    []string                   `json:"command"`
	Image      string                     `json:"image,omitempty"`
	Executable string                     `json:"executable,omitempty"`
	Env        map[string]string          `json:"env,omitempty"`
	Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
	Code       map[string]string          `json:"code,omitempty"`
	Inputs     map[string]string          `json:"inputs,omitempty"`
	Outputs    map[string]string          `json:"outputs,omitempty"`
}

// RunPath is where the record of run id is kept. Run ids start with the
// UTC date (20261123-101500.123-3fa2c1), and runs are sharded by month.
func RunPath(id string) string { return path.Join("runs", runShard(id), id+".json") }

// runShard is the month folder of run id, in runs/ and in the index.
func runShard(id string) string {
	if len(id) < 6 {
		return "other"
	}
	return id[:6]
}

// RunIndexDir holds the index of the runs' pipelines, sharded by month
// as runs/ is: an entry per run (see RunIndexPath) whose content is its
// pipeline's name. Finding a pipeline's runs reads these tree entries and
// a blob per pipeline, not the records.
const RunIndexDir = "run-pipelines"

// RunIndexPath is the index entry of run id: run-pipelines/<yyyymm>/<id>
// beside runs/<yyyymm>/<id>.json. Its content is the run's pipeline's
// name and a newline, one blob that every entry of the pipeline shares.
// Every writer of a run record writes its entry in the same commit (see
// AddRun).
func RunIndexPath(id string) string { return path.Join(RunIndexDir, runShard(id), id) }

var (
	// indexPipelineRE is a pipeline name zen's schema accepts, and more:
	// what an index entry holds, a line with no space or quote.
	indexPipelineRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	// indexIDRE is a run id as zen makes them, and more: one path segment.
	indexIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// indexable says whether run id of pipeline can have an index entry:
// zen's names and ids always can; a record edited by hand to name another
// pipeline or id may not, and RunsOf then reads it as it reads a record
// recorded before the index.
func indexable(pipeline, id string) bool {
	return len(pipeline) <= 255 && len(id) <= 255 && indexPipelineRE.MatchString(pipeline) && indexIDRE.MatchString(id)
}

// AddRun adds to files, a Change's, the record of run at RunPath and its
// index entry (IndexRun).
func AddRun(files map[string][]byte, run *Run) error {
	data, err := Encode(run)
	if err != nil {
		return fmt.Errorf("encode %s: %w", RunPath(run.ID), err)
	}
	files[RunPath(run.ID)] = data
	IndexRun(files, run.Pipeline, run.ID)
	return nil
}

// IndexRun adds to files, a Change's, the index entry of run id of
// pipeline, unless the two cannot have one (see indexable).
func IndexRun(files map[string][]byte, pipeline, id string) {
	if indexable(pipeline, id) {
		files[RunIndexPath(id)] = []byte(pipeline + "\n")
	}
}

// CachePath is where the cache entry of key is kept, sharded by its first
// two hex digits.
func CachePath(key string) string {
	shard := "00"
	if len(key) >= 2 {
		shard = key[:2]
	}
	return path.Join("cache", shard, key+".json")
}

// PipelinePath is where the latest fingerprints of a pipeline are kept.
func PipelinePath(name string) string { return path.Join("pipelines", name+".json") }

// Encode marshals a record as indented JSON with a trailing newline, so that
// `git show` and `git diff` of the state ref read well.
func Encode(rec any) ([]byte, error) {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// CorruptError is a record on the state ref that cannot be read.
type CorruptError struct {
	Ref, Commit, Path string
	Err               error
}

func (e *CorruptError) Error() string {
	c := e.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	return fmt.Sprintf("corrupt record on the state ref %s (commit %s): %s: %v", e.Ref, c, e.Path, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// decode parses a record and checks its version.
func decode(data []byte, v any) error {
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return err
	}
	if head.Version == nil {
		return fmt.Errorf("no version field")
	}
	if *head.Version != RecordVersion {
		return fmt.Errorf("record version %d; this zen reads version %d (upgrade zen)", *head.Version, RecordVersion)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return err
	}
	if c, ok := v.(checker); ok {
		return c.check()
	}
	return nil
}

// checker is a record that checks, once decoded, the fields zen makes
// paths and pulls from: the digests of artifacts and model versions. A
// record edited by hand must not lead zen outside its folders.
type checker interface{ check() error }

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// checkDigest fails unless d is a sha256 digest, "sha256:<64 hex digits>".
func checkDigest(field, d string) error {
	if !digestRE.MatchString(d) {
		return fmt.Errorf("%s: %q is not a sha256 digest", field, d)
	}
	return nil
}

// checkArtifacts checks the digests of a step's outputs and log; prefix
// names where they are in the record ("steps.train.", or "").
func checkArtifacts(prefix string, outputs map[string]Artifact, log *Artifact) error {
	for _, name := range slices.Sorted(maps.Keys(outputs)) {
		if err := checkDigest(prefix+"outputs."+name+".digest", outputs[name].Digest); err != nil {
			return err
		}
	}
	if log != nil {
		return checkDigest(prefix+"log.digest", log.Digest)
	}
	return nil
}

func (r *Run) check() error {
	for _, name := range slices.Sorted(maps.Keys(r.Steps)) {
		s := r.Steps[name]
		if s == nil {
			// zen never writes one, and what reads steps expects none.
			return fmt.Errorf("steps.%s: null", name)
		}
		if err := checkArtifacts("steps."+name+".", s.Outputs, s.Log); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cache) check() error { return checkArtifacts("", c.Outputs, c.Log) }

func (p *Pipeline) check() error {
	for _, name := range slices.Sorted(maps.Keys(p.Steps)) {
		s := p.Steps[name]
		if s == nil {
			// zen never writes one, and what reads steps expects none.
			return fmt.Errorf("steps.%s: null", name)
		}
		if err := checkArtifacts("steps."+name+".", s.Outputs, s.Log); err != nil {
			return err
		}
	}
	return nil
}

func (s *Submission) check() error {
	if s.Source == "" {
		return nil
	}
	return checkDigest("source", s.Source)
}

func (m *ModelVersion) check() error {
	if err := checkDigest("digest", m.Digest); err != nil {
		return err
	}
	if m.RunDirty != "" {
		if err := checkDigest("run_dirty_digest", m.RunDirty); err != nil {
			return err
		}
	}
	return checkDigest("output_digest", m.OutputDigest)
}

func (s *Stages) check() error {
	for _, name := range slices.Sorted(maps.Keys(s.Stages)) {
		st := s.Stages[name]
		if st == nil {
			// zen removes a stage it empties; what reads stages expects
			// no null.
			return fmt.Errorf("stages.%s: null", name)
		}
		if err := checkDigest("stages."+name+".digest", st.Digest); err != nil {
			return err
		}
		if st.Rollback != nil {
			if err := checkDigest("stages."+name+".rollback.digest", st.Rollback.Digest); err != nil {
				return err
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.History)) {
		for i, t := range s.History[name] {
			if t == nil {
				// zen never writes one, and Held expects none.
				return fmt.Errorf("history.%s[%d]: null", name, i)
			}
			if err := checkDigest(fmt.Sprintf("history.%s[%d].digest", name, i), t.Digest); err != nil {
				return err
			}
		}
	}
	return nil
}

// readRecord reads and decodes the record at p; ok is false when absent.
func readRecord(sn *Snapshot, ref, p string, v any) (bool, error) {
	data, ok, err := sn.Read(p)
	if err != nil || !ok {
		return ok, err
	}
	if err := decode(data, v); err != nil {
		return true, &CorruptError{Ref: ref, Commit: sn.Commit(), Path: p, Err: err}
	}
	return true, nil
}

// Records reads typed records from one snapshot of the state ref.
type Records struct {
	Snapshot *Snapshot
	Ref      string
	// Previews are pull-request previews' records: Run and Cache read
	// them for a run or a cache entry the state ref lacks, so that the
	// apply after a merge reuses what the branch's preview made.
	// Everything else reads the state ref alone.
	Previews []Records
}

// CheckLayout fails when the top of the state holds a file. zen keeps its
// records in folders (runs/, cache/, pipelines/ and the like), so a file
// there means the ref points at a commit that is not zen's state, such as
// the source's after a git update-ref by hand: planning against it would
// run everything again and record on top of it.
func (r Records) CheckLayout() error {
	names, err := r.Snapshot.List("")
	if err != nil {
		return err
	}
	for _, name := range names {
		e, _, err := r.Snapshot.lookup(name)
		if err != nil {
			return err
		}
		if e.Mode != filemode.Dir {
			return fmt.Errorf("state ref %s: commit %s is not zen's state: it has the file %s at its top, where zen keeps only folders of records (was the ref moved by hand?)", r.Ref, gitShort(r.Snapshot.Commit()), name)
		}
	}
	return nil
}

// Run reads the record of run id, from a preview when the state ref
// lacks it.
func (r Records) Run(id string) (*Run, bool, error) {
	var rec Run
	ok, err := r.read(RunPath(id), &rec)
	if !ok || err != nil {
		return nil, ok, err
	}
	return &rec, true, nil
}

// Cache reads the cache entry of key, from a preview when the state ref
// lacks it.
func (r Records) Cache(key string) (*Cache, bool, error) {
	var rec Cache
	ok, err := r.read(CachePath(key), &rec)
	if !ok || err != nil {
		return nil, ok, err
	}
	return &rec, true, nil
}

// read reads the record at p from the state ref, else from the first
// preview that has it.
func (r Records) read(p string, v any) (bool, error) {
	ok, err := readRecord(r.Snapshot, r.Ref, p, v)
	if ok || err != nil {
		return ok, err
	}
	for _, pr := range r.Previews {
		if ok, err := readRecord(pr.Snapshot, pr.Ref, p, v); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// Adopt returns, as files to record on the state ref, the cache entry of
// key and the record of run id (with its index entry) when only a preview
// has them: an apply that reuses a preview's outputs records where they
// came from, so that the state ref alone traces them, whatever becomes of
// the preview.
func (r Records) Adopt(key, id string) (map[string][]byte, error) {
	if len(r.Previews) == 0 {
		return nil, nil
	}
	files := map[string][]byte{}
	for _, p := range []string{CachePath(key), RunPath(id)} {
		if _, ok, err := r.Snapshot.Read(p); ok || err != nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		for _, pr := range r.Previews {
			data, ok, err := pr.Snapshot.Read(p)
			if err != nil {
				return nil, err
			}
			if ok {
				files[p] = data
				if p == RunPath(id) {
					// Indexed under the pipeline the record names; one
					// that names none is read as a record from before the
					// index.
					if pipeline, err := recordPipeline(data); err == nil {
						IndexRun(files, pipeline, id)
					}
				}
				break
			}
		}
	}
	return files, nil
}

// Pipeline reads the latest fingerprints of a pipeline.
func (r Records) Pipeline(name string) (*Pipeline, bool, error) {
	var rec Pipeline
	ok, err := readRecord(r.Snapshot, r.Ref, PipelinePath(name), &rec)
	if !ok || err != nil {
		return nil, ok, err
	}
	return &rec, true, nil
}

// RunIDs lists every recorded run id, oldest first. It reads tree entries
// only, never the records.
func (r Records) RunIDs() ([]string, error) {
	var ids []string
	err := r.Snapshot.Walk("runs", func(p string) error {
		if strings.HasSuffix(p, ".json") {
			ids = append(ids, strings.TrimSuffix(path.Base(p), ".json"))
		}
		return nil
	})
	return ids, err
}

// Submission is an apply that submitted its steps to a cluster and
// returned (zen apply --detach): submitted/<id>.json, removed when its
// runs are collected and recorded. Its runs are recorded with the status
// "submitted" meanwhile.
type Submission struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	// Runs are the ids of the runs it submitted, one per pipeline.
	Runs []string `json:"runs"`
	// Stack names the stack; Source is the digest of the source tree
	// artifact the jobs run from, whose CUE the runs are collected with.
	Stack  string `json:"stack"`
	Source string `json:"source"`
	// Store names the artifact store as the jobs were given it
	// (oci:REPOSITORY, oci-layout:PATH).
	Store string `json:"store"`
	// Plan is the plan applied, as zen plan --output json writes it.
	Plan      json.RawMessage `json:"plan"`
	Submitted time.Time       `json:"submitted"`
	Jobs      int             `json:"jobs"`
}

// SubmissionPath is where a pending submission is kept.
func SubmissionPath(id string) string { return path.Join("submitted", id+".json") }

// Submissions lists the submissions not collected yet, oldest first.
func (r Records) Submissions() ([]*Submission, error) {
	names, err := r.Snapshot.List("submitted")
	if err != nil {
		return nil, err
	}
	var subs []*Submission
	for _, name := range names {
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		var sub Submission
		ok, err := readRecord(r.Snapshot, r.Ref, path.Join("submitted", name), &sub)
		if err != nil {
			return nil, err
		}
		if ok {
			subs = append(subs, &sub)
		}
	}
	return subs, nil
}

// ModelVersion is the immutable record of a model version:
// models/<model>/<version>.json.
type ModelVersion struct {
	Version      int    `json:"version"`
	Model        string `json:"model"`
	ModelVersion string `json:"model_version"`
	Digest       string `json:"digest"`
	Repository   string `json:"repository"`
	// Stack is the stack whose store the version was pushed to: zen
	// verify looks for it there. Records made before it was kept have
	// only Repository.
	Stack        string `json:"stack,omitempty"`
	Pipeline     string `json:"pipeline"`
	Step         string `json:"step"`
	Output       string `json:"output"`
	OutputDigest string `json:"output_digest"`
	// RunID is the run that made the output; SourceCommit is the commit
	// whose apply made the version, which declares it.
	RunID        string `json:"run_id"`
	SourceCommit string `json:"source_commit"`
	// RunCommit is the commit the run RunID ran from, and RunDirty the
	// digest of its uncommitted changes ("" for a clean run). The run may
	// be of another commit than SourceCommit, an experiment (--set) or a
	// dirty one: its output is reused when SourceCommit's declaration
	// gives the same cache key. Records made before zen kept them have
	// neither, and verification then compares neither.
	RunCommit string             `json:"run_source_commit,omitempty"`
	RunDirty  string             `json:"run_dirty_digest,omitempty"`
	Metrics   map[string]float64 `json:"metrics,omitempty"`
	// Declared is the version's declaration in CUE, as JSON: changing it
	// later is refused.
	Declared json.RawMessage `json:"declared"`
	// SignedBy identifies the public key that signed it ("" when unsigned).
	SignedBy string    `json:"signed_by,omitempty"`
	Created  time.Time `json:"created"`
}

// Stages records which version each stage of a model holds:
// stages/<model>.json.
type Stages struct {
	Version int               `json:"version"`
	Model   string            `json:"model"`
	Stages  map[string]*Stage `json:"stages"`
	// History lists, by stage, the versions each stage held before the
	// one it holds now, oldest first: a stage may always move back to
	// one of them. It is kept apart from Stages so that a stage no longer
	// declared keeps its past. Records written before zen kept it have
	// none, and their earlier tenures are not rollbacks.
	History map[string][]*Tenure `json:"history,omitempty"`
}

// Stage is one stage's version.
type Stage struct {
	ModelVersion string `json:"model_version"`
	Digest       string `json:"digest"`
	// SourceCommit is the commit that declared the move: the one apply
	// was run from.
	SourceCommit string    `json:"source_commit"`
	Updated      time.Time `json:"updated"`
	// Gate is the stage's gate as the move was checked against it, nil
	// when the stage had no gate (or the record is older than zen
	// recording it). A rollback carries the gate result of the tenure it
	// returns to: the version passed it then.
	Gate *GateResult `json:"gate,omitempty"`
	// Rollback, when the move returned the stage to a version it held
	// before, is that earlier tenure; its gate was not evaluated again.
	Rollback *Tenure `json:"rollback,omitempty"`
}

// GateResult is a gate as a stage move was checked against it.
type GateResult struct {
	Expression string `json:"expression"`
	// Results is each comparison with its values and verdict, as plan
	// prints it: "score >= production.score (0.8): 0.9 ✓".
	Results []string `json:"results,omitempty"`
	Passed  bool     `json:"passed"`
}

// String is the gate's results joined as plan prints them, or its
// expression when no result was recorded.
func (g *GateResult) String() string {
	if len(g.Results) == 0 {
		return g.Expression
	}
	return strings.Join(g.Results, " && ")
}

// Tenure is a time a stage held a version: from the move that put it
// there to the one that took it away.
type Tenure struct {
	ModelVersion string      `json:"model_version"`
	Digest       string      `json:"digest"`
	SourceCommit string      `json:"source_commit"`
	From         time.Time   `json:"from"`
	To           time.Time   `json:"to"`
	Gate         *GateResult `json:"gate,omitempty"`
	// Rollback: the tenure began with a rollback, and Gate is the result
	// of the earlier tenure it returned to.
	Rollback bool `json:"rollback,omitempty"`
}

// Held returns the latest tenure in which stage held version with digest
// before the version it holds now, or nil when it never did. Only such a
// move is a rollback: a version that never held the stage is promoted
// through its gate, however old it is.
func (s *Stages) Held(stage, version, digest string) *Tenure {
	if s == nil {
		return nil
	}
	h := s.History[stage]
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].ModelVersion == version && h[i].Digest == digest {
			return h[i]
		}
	}
	return nil
}

// Leave ends the tenure of the version stage holds now, if any, at now,
// appending it to the stage's history. Apply calls it before it moves or
// removes a stage.
func (s *Stages) Leave(stage string, now time.Time) {
	cur := s.Stages[stage]
	if cur == nil {
		return
	}
	if s.History == nil {
		s.History = map[string][]*Tenure{}
	}
	s.History[stage] = append(s.History[stage], &Tenure{
		ModelVersion: cur.ModelVersion, Digest: cur.Digest, SourceCommit: cur.SourceCommit,
		From: cur.Updated, To: now, Gate: cur.Gate, Rollback: cur.Rollback != nil,
	})
}

// ModelVersionPath is where a model version's record is kept.
func ModelVersionPath(model, version string) string {
	return path.Join("models", model, version+".json")
}

// StagesPath is where a model's stages are kept.
func StagesPath(model string) string { return path.Join("stages", model+".json") }

// ModelVersion reads a model version's record.
func (r Records) ModelVersion(model, version string) (*ModelVersion, bool, error) {
	var rec ModelVersion
	ok, err := readRecord(r.Snapshot, r.Ref, ModelVersionPath(model, version), &rec)
	if !ok || err != nil {
		return nil, ok, err
	}
	return &rec, true, nil
}

// Stages reads a model's stages.
func (r Records) Stages(model string) (*Stages, bool, error) {
	var rec Stages
	ok, err := readRecord(r.Snapshot, r.Ref, StagesPath(model), &rec)
	if !ok || err != nil {
		return nil, ok, err
	}
	return &rec, true, nil
}

// ModelVersions lists a model's recorded versions, by name.
func (r Records) ModelVersions(model string) ([]string, error) {
	names, err := r.Snapshot.List(path.Join("models", model))
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, ".json") {
			out = append(out, strings.TrimSuffix(n, ".json"))
		}
	}
	return out, err
}

// Check reads and decodes every record of the snapshot by its folder
// (runs, cache, pipelines, models, stages, submitted), and returns how
// many it read and the errors of those that do not decode, each naming
// the commit and path. Files of other folders are not zen's and are left
// alone.
func (r Records) Check() (int, []error) {
	n := 0
	var errs []error
	err := r.Snapshot.Walk("", func(p string) error {
		var v any
		switch strings.SplitN(p, "/", 2)[0] {
		case "runs":
			v = new(Run)
		case "cache":
			v = new(Cache)
		case "pipelines":
			v = new(Pipeline)
		case "models":
			v = new(ModelVersion)
		case "stages":
			v = new(Stages)
		case "submitted":
			v = new(Submission)
		default:
			return nil
		}
		n++
		if _, err := readRecord(r.Snapshot, r.Ref, p, v); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return n, errs
}
