package cli

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/internal/workspace"
	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// Exit codes of zen verify, one per way a model can fail to verify.
const (
	exitUnsigned     = 10 // no signature
	exitBadSignature = 11 // a signature or attestation does not verify
	exitOtherKey     = 12 // signed, but not by this key
	exitDigest       = 13 // the registry's digest differs from the record
	exitContent      = 14 // stored content does not match its digest
	exitMissing      = 15 // not in the store at all
	exitProvenance   = 16 // the attestation names another run, commit, entry point or inputs
)

// keyFiles is where zen keeps the repository's key pair, which every stack
// without a signer signs with: the private key under .zen (ignored by
// git, never stored), the public key at the root, for the user to commit.
func keyFiles(ws *workspace.Workspace) (private, public string) {
	return filepath.Join(ws.Root, workspace.DataDir, "keys", "cosign.key"), filepath.Join(ws.Root, "cosign.pub")
}

// keyID names a public key in records: sha256 of its PEM.
func keyID(pub []byte) string {
	s := sha256.Sum256(pub)
	return "sha256:" + hex.EncodeToString(s[:])
}

// The signer flavors a stack declares. A stack without a signer signs with
// the repository's key pair (keyFiles).
const (
	signerCosign = "cosign"
	signerNone   = "none" // signs nothing: the only way to unsigned versions
)

// signerFlavor is the stack's declared signer flavor, "" for none declared.
func signerFlavor(st *schema.Stack) string {
	if st.Signer == nil {
		return ""
	}
	f, _ := st.Signer["flavor"].(string)
	return f
}

// signer returns the stack's signer, its key id, and the verifier stage
// moves check against. A stack with a signer: {key: {secret: NAME}} uses
// that cosign key (PEM, or a path to one; password from COSIGN_PASSWORD).
// A stack without a signer uses the repository's key pair, which zen
// makes on first use. Only signer: flavor: "none" signs nothing.
func (s *session) signer(st *schema.Stack) (*signature.Signer, string, *signature.Verifier, error) {
	if s.signed == nil {
		s.signed = &signed{}
		s.signed.s, s.signed.id, s.signed.v, s.signed.err = s.loadSigner(st)
	}
	return s.signed.s, s.signed.id, s.signed.v, s.signed.err
}

// checkedSigner is signer, with a declared signer.public_key checked
// against the private key's public half.
func (s *session) checkedSigner(st *schema.Stack) (*signature.Signer, string, *signature.Verifier, error) {
	signer, keyID, verifier, err := s.signer(st)
	if err == nil && signer != nil {
		err = s.checkPublicKey(st, verifier)
	}
	return signer, keyID, verifier, err
}

// signed is a session's signer, loaded once: decrypting a key is slow.
type signed struct {
	s   *signature.Signer
	id  string
	v   *signature.Verifier
	err error
}

// signing tells plan how apply would sign on st, reading no private key:
// a stack that opts out marks what it makes unsigned, and a stack without
// a signer whose repository key is missing from this clone (a CI job, a
// fresh clone: cosign.pub is committed, .zen/keys/cosign.key is not)
// refuses to make versions or move stages. A declared signer whose secret
// is not set here is not refused: a plan for a pull request runs without
// the secrets apply has.
func (s *session) signing(st *schema.Stack) plan.Signing {
	switch signerFlavor(st) {
	case signerNone:
		return plan.Signing{Unsigned: fmt.Sprintf("stack %s: signer none", st.Name)}
	case "":
		priv, pub := keyFiles(s.ws)
		if _, err := os.Stat(priv); errors.Is(err, fs.ErrNotExist) {
			if _, err := os.Stat(pub); err == nil {
				return plan.Signing{Refused: s.missingKey(st)}
			}
		}
	}
	return plan.Signing{}
}

// missingKey says that the repository's private key is not in this clone,
// and what to do.
func (s *session) missingKey(st *schema.Stack) string {
	priv, pub := keyFiles(s.ws)
	return fmt.Sprintf("stack %s signs with the repository's key pair, and %s has no private key %s in this clone: copy the key here, or declare signer: {flavor: \"cosign\", key: {secret: \"cosign_key\"}, public_key: %q} on stack %s and set the secret (ZEN_SECRET_COSIGN_KEY) to the key",
		st.Name, relTo(s.ws.Root, pub), relTo(s.ws.Root, priv), relTo(s.ws.Root, pub), st.Name)
}

func (s *session) loadSigner(st *schema.Stack) (*signature.Signer, string, *signature.Verifier, error) {
	password := []byte(os.Getenv("COSIGN_PASSWORD"))
	switch signerFlavor(st) {
	case signerNone:
		return nil, "", nil, nil
	case signerCosign:
		return s.secretSigner(st, password)
	case "":
		return s.repositorySigner(st, password)
	default:
		f := st.Signer["flavor"]
		return nil, "", nil, fmt.Errorf("stack %s: unknown signer flavor %v (known: cosign, none)", st.Name, f)
	}
}

// secretSigner loads the key of a signer: {flavor: "cosign", key: {secret: NAME}}.
func (s *session) secretSigner(st *schema.Stack, password []byte) (*signature.Signer, string, *signature.Verifier, error) {
	ref, _ := st.Signer["key"].(map[string]any)
	name, _ := ref["secret"].(string)
	if name == "" {
		return nil, "", nil, fmt.Errorf("stack %s: signer needs key: {secret: NAME}", st.Name)
	}
	val, err := apply.LookupSecret(name)
	if err != nil {
		return nil, "", nil, fmt.Errorf("stack %s: signer key: %w", st.Name, err)
	}
	pem := []byte(val)
	if !strings.Contains(val, "-----BEGIN") {
		if pem, err = os.ReadFile(val); err != nil {
			// The value is a secret even when it is not a key: the
			// message names the secret, never its value.
			why := "cannot be read"
			if errors.Is(err, fs.ErrNotExist) {
				why = "does not exist"
			}
			return nil, "", nil, fmt.Errorf("stack %s: signer key: secret %s is neither a PEM key nor the path of a file that holds one (the file it names %s)", st.Name, name, why)
		}
	}
	sg, err := signature.LoadSigner(pem, password)
	if err != nil {
		return nil, "", nil, fmt.Errorf("stack %s: signer key (secret %s): %w", st.Name, name, err)
	}
	v := sg.Public()
	pub, err := v.PEM()
	if err != nil {
		return nil, "", nil, err
	}
	return sg, keyID(pub), v, nil
}

// repositorySigner loads the repository's key pair, making it on first
// use, for a stack that declares no signer.
func (s *session) repositorySigner(st *schema.Stack, password []byte) (*signature.Signer, string, *signature.Verifier, error) {
	priv, pubPath := keyFiles(s.ws)
	committed, err := os.ReadFile(pubPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", nil, err
	}
	key, err := os.ReadFile(priv)
	if errors.Is(err, os.ErrNotExist) {
		if committed != nil {
			// A fresh clone: signing with a new key would make everything
			// fail to verify against the committed one. Plan refuses
			// the same (see signing).
			return nil, "", nil, fmt.Errorf("%s (or remove %s for zen to make a new pair)", s.missingKey(st), relTo(s.ws.Root, pubPath))
		}
		// With no password the key is encrypted with the empty one,
		// which protects nothing that the file's mode does not, but is
		// the format the cosign CLI reads.
		var pub []byte
		if len(password) == 0 {
			key, pub, err = signature.GenerateOpenKeyPair()
		} else {
			key, pub, err = signature.GenerateKeyPair(password)
		}
		if err != nil {
			return nil, "", nil, err
		}
		if err := writePrivateKey(s.ws, priv, key); errors.Is(err, fs.ErrExist) {
			// Of two first applies at once, one makes the pair and
			// the other signs with it.
			return s.repositorySigner(st, password)
		} else if err != nil {
			return nil, "", nil, err
		}
		if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
			return nil, "", nil, err
		}
		committed = pub
		fmt.Fprintf(os.Stderr, "zen: made the repository's signing key pair: %s (private, ignored by git) and %s (commit it)\n", relTo(s.ws.Root, priv), relTo(s.ws.Root, pubPath))
	} else if err != nil {
		return nil, "", nil, err
	}
	sg, err := signature.LoadSigner(key, password)
	if errors.Is(err, signature.ErrWrongPassword) && len(password) > 0 {
		// COSIGN_PASSWORD may be set for another stack's key; the
		// key zen made without one is read with the empty password.
		sg, err = signature.LoadSigner(key, nil)
	}
	if err != nil {
		return nil, "", nil, fmt.Errorf("%s: %w", relTo(s.ws.Root, priv), err)
	}
	if signature.IsPlainKey(key) {
		// Made by an older zen: the same key, rewritten in the format
		// the cosign CLI reads. Signing goes on with it if that fails.
		if err := convertKey(priv, key, password); err != nil {
			fmt.Fprintf(os.Stderr, "zen: %s is a plain PKCS#8 key, which the cosign CLI does not read, and could not be rewritten in cosign's format: %v\n", relTo(s.ws.Root, priv), err)
		} else {
			fmt.Fprintf(os.Stderr, "zen: rewrote %s in cosign's format (the same key; the cosign CLI reads it now)\n", relTo(s.ws.Root, priv))
		}
	}
	pub, err := sg.Public().PEM()
	if err != nil {
		return nil, "", nil, err
	}
	if committed == nil {
		if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
			return nil, "", nil, err
		}
	} else if v, err := signature.LoadVerifier(committed); err != nil || !v.Equal(sg.Public()) {
		return nil, "", nil, fmt.Errorf("%w: restore the matching key, or remove %s for zen to write it anew", errKeyMismatch, relTo(s.ws.Root, pubPath))
	}
	return sg, keyID(pub), sg.Public(), nil
}

// convertKey rewrites the plain PKCS#8 key at path in cosign's format,
// whole or not at all.
func convertKey(path string, key, password []byte) error {
	converted, err := signature.ConvertPlainKey(key, password)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".cosign.key.tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(converted)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// writePrivateKey writes a private key readable by its owner only, never
// over an existing file (fs.ErrExist), under zen's folder, which it makes
// sure git ignores even in a repository whose .gitignore does not say so:
// `git add -A` must never pick a private key up.
func writePrivateKey(ws *workspace.Workspace, path string, key []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := ignoreDataDir(ws); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(key)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// ignoreDataDir writes .zen/.gitignore ignoring everything in .zen, itself
// included, unless it is there: git then ignores zen's folder whatever the
// repository's own .gitignore says.
func ignoreDataDir(ws *workspace.Workspace) error {
	p := filepath.Join(ws.Root, workspace.DataDir, ".gitignore")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte("# zen's local files: never committed.\n*\n"), 0o644)
}

// gitIgnores reports whether git ignores path, inside the work tree of
// ws: whether `git add -A` would leave it out. It reads the same files git
// does (.gitignore at every level, .git/info/exclude, core.excludesFile).
func gitIgnores(ws *workspace.Workspace, path string) (bool, error) {
	rel, err := filepath.Rel(ws.Root, path)
	if err != nil || !filepath.IsLocal(rel) {
		return true, nil // outside the work tree: git never adds it
	}
	wt, err := ws.Repo.Worktree()
	if err != nil {
		return false, err
	}
	ps, err := gitignore.ReadPatterns(wt.Filesystem, nil)
	if err != nil {
		return false, err
	}
	if global, err := gitignore.LoadGlobalPatterns(osfs.New("/")); err == nil {
		ps = append(global, ps...)
	}
	return gitignore.NewMatcher(ps).Match(strings.Split(filepath.ToSlash(rel), "/"), false), nil
}

func newKeys(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Make signing keys",
	}
	var prefix string
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Write a cosign key pair: the repository's, or PREFIX.key and PREFIX.pub",
		Long: `Generate writes an ECDSA P-256 key pair in cosign's formats, which the
cosign CLI reads: the private key encrypted with $COSIGN_PASSWORD, and the
public key.

COSIGN_PASSWORD must be set, as cosign's own generate-key-pair asks for a
password: set it empty (COSIGN_PASSWORD= zen keys generate) for a key
whose file's mode is its only protection.

In a repository, without --prefix, it makes the repository's key pair,
which every stack without a signer signs with: .zen/keys/cosign.key
(ignored by git) and cosign.pub at the root (commit it). With --prefix it
writes PREFIX.key and PREFIX.pub, and refuses a PREFIX.key inside the work
tree that git does not ignore: git add -A would commit it. Hand such a key
to zen as a secret: signer: {flavor: "cosign", key: {secret: "cosign_key"},
public_key: "PREFIX.pub"}.`,
		Example: "  COSIGN_PASSWORD=... zen keys generate\n  COSIGN_PASSWORD=... zen keys generate --prefix ~/keys/release",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			password, ok := os.LookupEnv("COSIGN_PASSWORD")
			if !ok {
				return errors.New("COSIGN_PASSWORD is not set: set the password to encrypt the private key with (COSIGN_PASSWORD=... zen keys generate), or set it empty for a key with no password (COSIGN_PASSWORD= zen keys generate)")
			}
			ws, err := workspace.Open(".")
			if err != nil && !errors.Is(err, workspace.ErrNotRepository) {
				return err
			}
			var priv, pub string
			switch {
			case prefix != "":
				priv, pub = prefix+".key", prefix+".pub"
			case ws != nil:
				priv, pub = keyFiles(ws)
			default:
				priv, pub = "cosign.key", "cosign.pub"
			}
			for _, p := range []string{priv, pub} {
				if _, err := os.Stat(p); err == nil {
					return fmt.Errorf("%s exists: choose another --prefix", p)
				}
			}
			if ws != nil && prefix != "" {
				abs, err := filepath.Abs(priv)
				if err != nil {
					return err
				}
				ignored, err := gitIgnores(ws, abs)
				if err != nil {
					return err
				}
				if !ignored {
					return fmt.Errorf("%s would be in the work tree and not ignored by git, so git add -A would commit the private key: write it outside the repository, or into an ignored path (add it to .gitignore), or leave out --prefix to make the repository's key pair in .zen/keys", priv)
				}
			}
			k, p, err := signature.GenerateKeyPair([]byte(password))
			if err != nil {
				return err
			}
			if ws != nil && prefix == "" {
				err = writePrivateKey(ws, priv, k)
			} else if err = os.MkdirAll(filepath.Dir(priv), 0o700); err == nil {
				// --prefix ~/keys/team makes ~/keys, as the README has it.
				err = os.WriteFile(priv, k, 0o600)
			}
			if err != nil {
				return err
			}
			if err := os.WriteFile(pub, p, 0o644); err != nil {
				return err
			}
			protected := "encrypted"
			if password == "" {
				protected = "no password"
			}
			name := func(p string) string {
				if ws != nil {
					if abs, err := filepath.Abs(p); err == nil {
						return relTo(ws.Root, abs)
					}
				}
				return p
			}
			fmt.Fprintf(g.stdout, "wrote %s (private, %s) and %s\n", name(priv), protected, name(pub))
			return nil
		},
	}
	gen.Flags().StringVar(&prefix, "prefix", "", "write `PREFIX`.key and PREFIX.pub (default: the repository's key pair, or cosign outside a repository)")
	cmd.AddCommand(gen)
	return cmd
}

// modelRef is MODEL, MODEL:VERSION or MODEL@STAGE.
type modelRef struct{ model, version, stage string }

func parseModelRef(s string) modelRef {
	if m, st, ok := strings.Cut(s, "@"); ok {
		return modelRef{model: m, stage: st}
	}
	if m, v, ok := strings.Cut(s, ":"); ok {
		return modelRef{model: m, version: v}
	}
	return modelRef{model: s}
}

// resolveVersion finds the recorded version a reference names; a bare
// model names its newest recorded version.
func resolveVersion(recs state.Records, ref modelRef) (*state.ModelVersion, error) {
	v := ref.version
	if ref.stage != "" {
		st, _, err := recs.Stages(ref.model)
		if err != nil {
			return nil, err
		}
		if st == nil || st.Stages[ref.stage] == nil {
			return nil, fmt.Errorf("model %s has no version in stage %s", ref.model, ref.stage)
		}
		v = st.Stages[ref.stage].ModelVersion
	}
	if v == "" {
		vs, err := recs.ModelVersions(ref.model)
		if err != nil {
			return nil, err
		}
		if len(vs) == 0 {
			return nil, fmt.Errorf("model %s has no recorded version", ref.model)
		}
		var newest *state.ModelVersion
		for _, name := range vs {
			mv, _, err := recs.ModelVersion(ref.model, name)
			if err != nil {
				return nil, err
			}
			if newest == nil || mv.Created.After(newest.Created) {
				newest = mv
			}
		}
		return newest, nil
	}
	mv, ok, err := recs.ModelVersion(ref.model, v)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("model %s has no recorded version %s", ref.model, v)
	}
	return mv, nil
}

func newModels(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List and show model versions and stages",
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List recorded model versions and the stages they hold",
		Example: "  zen models list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, recs, err := openRecords(cmd, g, true)
			if err != nil {
				return err
			}
			type row struct {
				*state.ModelVersion
				Stages []string `json:"stages"`
			}
			var rows []row
			for _, name := range slices.Sorted(maps.Keys(sess.cfg.Models)) {
				st, _, err := recs.Stages(name)
				if err != nil {
					return err
				}
				vs, err := recs.ModelVersions(name)
				if err != nil {
					return err
				}
				for _, v := range vs {
					mv, _, err := recs.ModelVersion(name, v)
					if err != nil {
						return err
					}
					r := row{ModelVersion: mv, Stages: []string{}}
					if st != nil {
						for _, s := range slices.Sorted(maps.Keys(st.Stages)) {
							if st.Stages[s].ModelVersion == v {
								r.Stages = append(r.Stages, s)
							}
						}
					}
					rows = append(rows, r)
				}
			}
			if g.output == "json" {
				if rows == nil {
					rows = []row{}
				}
				return writeJSON(g.stdout, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(g.stderr, "no model versions recorded yet: declare one in models: and zen apply")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MODEL\tVERSION\tSTAGES\tDIGEST\tRUN\tSIGNED")
			for _, r := range rows {
				signed := "no"
				if r.SignedBy != "" {
					signed = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Model, r.ModelVersion.ModelVersion, strings.Join(r.Stages, ","), short(strings.TrimPrefix(r.Digest, "sha256:")), r.RunID, signed)
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:     "show MODEL[:VERSION|@STAGE]",
		Short:   "Show a model version: digest, stages, run, metrics, signature",
		Example: "  zen models show fraud-detector@production\n  zen models show fraud-detector:1.0.0 --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, recs, err := openRecords(cmd, g, false)
			if err != nil {
				return err
			}
			mv, err := resolveVersion(recs, parseModelRef(args[0]))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, mv)
			}
			w := g.stdout
			fmt.Fprintf(w, "model %s %s\n", mv.Model, mv.ModelVersion)
			fmt.Fprintf(w, "  digest:     %s\n", mv.Digest)
			fmt.Fprintf(w, "  repository: %s\n", mv.Repository)
			if st, _, _ := recs.Stages(mv.Model); st != nil {
				var in []string
				for _, s := range slices.Sorted(maps.Keys(st.Stages)) {
					if st.Stages[s].ModelVersion == mv.ModelVersion {
						in = append(in, s)
					}
				}
				if len(in) > 0 {
					fmt.Fprintf(w, "  stages:     %s\n", strings.Join(in, ", "))
				}
			}
			run, _, err := recs.Run(mv.RunID)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "  produced:   %s.%s.%s in run %s, %s\n", mv.Pipeline, mv.Step, mv.Output, mv.RunID, mv.Created.Local().Format(time.DateTime))
			if from := runFrom(mv, run); from != "" {
				fmt.Fprintf(w, "  run:        %s ran from %s\n", mv.RunID, from)
			}
			fmt.Fprintf(w, "  declared:   by commit %s, whose apply made the version\n", mv.SourceCommit)
			signed := "unsigned"
			if mv.SignedBy != "" {
				signed = "signed by key " + mv.SignedBy
			}
			fmt.Fprintf(w, "  signature:  %s\n", signed)
			for _, k := range slices.Sorted(maps.Keys(mv.Metrics)) {
				fmt.Fprintf(w, "  metric %s = %g\n", k, mv.Metrics[k])
			}
			return nil
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

// runFrom says what the run that made a version's output ran from: "commit
// 1a2b…" (whole), then ", with uncommitted changes sha256:…" and ", an
// experiment: p.x=1" as the run was. The commit is the version record's,
// else (a record made before zen kept it) the run's own record's; "" when
// neither says.
func runFrom(mv *state.ModelVersion, run *state.Run) string {
	commit, dirty := mv.RunCommit, mv.RunDirty
	if commit == "" && dirty == "" && run != nil {
		commit, dirty = run.SourceCommit, run.DirtyDigest
	}
	if commit == "" && dirty == "" {
		return ""
	}
	out := "commit " + cmp.Or(commit, "(none)")
	if dirty != "" {
		out += ", with uncommitted changes " + dirty
	}
	if run != nil && run.Experiment {
		out += ", an experiment: " + setsText(run.Overrides)
	}
	return out
}

// setsText is an experiment's overrides as --set would give them, sorted:
// "demo.quality=9, demo.kind=\"rf\"".
func setsText(overrides map[string]any) string {
	var sets []string
	for _, k := range slices.Sorted(maps.Keys(overrides)) {
		b, _ := json.Marshal(overrides[k])
		sets = append(sets, k+"="+string(b))
	}
	return strings.Join(sets, ", ")
}
