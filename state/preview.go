package state

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// PreviewPrefix is where pull-request previews keep their records: the
// runs a branch's preview made, and their cache entries, under
// refs/zen/preview/<branch>, beside the state ref and never in it. A
// preview records no baseline, no model version and no stage.
const PreviewPrefix = "refs/zen/preview/"

// PreviewRef is the ref of branch's preview records.
func PreviewRef(branch string) (string, error) {
	branch = strings.TrimPrefix(branch, "refs/heads/")
	if branch == "" {
		return "", fmt.Errorf("preview: no branch named")
	}
	ref := PreviewPrefix + branch
	if err := gitCheckRefName(ref); err != nil || plumbing.ReferenceName("refs/heads/"+branch).Validate() != nil {
		return "", fmt.Errorf("preview: %q is not a branch name git accepts", branch)
	}
	return ref, nil
}

// Preview is one branch's preview records as this clone has them: its own
// ref (a preview applied here) or the one fetched from a remote.
type Preview struct {
	Branch string
	// Ref is the ref read: refs/zen/preview/<branch>, or its tracking ref
	// refs/zen/remotes/<remote>/preview/<branch>.
	Ref    string
	Remote string // "" for the clone's own
	Commit string
}

// previewTracking is where a remote's previews are fetched to.
func previewTracking(remote string) string { return "refs/zen/remotes/" + remote + "/preview/" }

// FetchPreviews fetches every preview on remote into the clone's
// tracking refs, dropping those the remote no longer has.
func (s *Store) FetchPreviews(ctx context.Context, remote string) error {
	_, err := s.git(ctx, "fetch", "--quiet", "--no-tags", "--prune", "--no-write-fetch-head", remote,
		"+"+PreviewPrefix+"*:"+previewTracking(remote)+"*")
	if err != nil {
		return remoteErrorf("previews: fetch from %s: %v", remote, err)
	}
	s.mu.Lock()
	s.st.Reindex() // the fetch wrote packs go-git has not seen
	s.mu.Unlock()
	return nil
}

// Previews lists the previews the clone has, its own and those fetched,
// by branch, the clone's own first. A ref file that holds no commit hash
// is passed over: a preview is only ever a source of reuse, and a broken
// one must not stop a plan.
func (s *Store) Previews() ([]Preview, error) {
	refs := map[string]string{} // ref → commit; loose refs win over packed ones
	if packed, err := os.ReadFile(filepath.Join(s.commonDir, "packed-refs")); err == nil {
		for line := range strings.Lines(string(packed)) {
			h, name, ok := strings.Cut(strings.TrimSpace(line), " ")
			if ok && plumbing.IsHash(h) && strings.HasPrefix(name, "refs/zen/") {
				refs[name] = h
			}
		}
	}
	root := filepath.Join(s.commonDir, "refs", "zen")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(s.commonDir, p)
		if err != nil {
			return nil
		}
		b, err := os.ReadFile(p)
		if h := strings.TrimSpace(string(b)); err == nil && plumbing.IsHash(h) {
			refs[filepath.ToSlash(rel)] = h
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("previews: %w", err)
	}
	var ps []Preview
	for ref, hash := range refs {
		p := Preview{Ref: ref, Commit: hash}
		switch {
		case strings.HasPrefix(ref, PreviewPrefix):
			p.Branch = strings.TrimPrefix(ref, PreviewPrefix)
		case strings.HasPrefix(ref, "refs/zen/remotes/"):
			remote, rest, ok := strings.Cut(strings.TrimPrefix(ref, "refs/zen/remotes/"), "/preview/")
			if !ok || strings.Contains(remote, "/") {
				continue
			}
			p.Branch, p.Remote = rest, remote
		default:
			continue
		}
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Branch != ps[j].Branch {
			return ps[i].Branch < ps[j].Branch
		}
		return ps[i].Remote < ps[j].Remote
	})
	return ps, nil
}

// PreviewRecords are the records of a preview the clone has.
func (s *Store) PreviewRecords(p Preview) (Records, error) {
	sn, err := s.At(p.Commit)
	if err != nil {
		return Records{}, err
	}
	return Records{Snapshot: sn, Ref: p.Ref}, nil
}

// DeletePreview removes branch's preview: on remote when it is not "",
// then in the clone (its own ref and the tracking ref). Records the state
// ref adopted (runs whose outputs it reuses) are kept there.
func (s *Store) DeletePreview(ctx context.Context, remote, branch string) error {
	ref, err := PreviewRef(branch)
	if err != nil {
		return err
	}
	if remote != "" {
		if _, err := s.git(ctx, "push", "--quiet", remote, ":"+ref); err != nil {
			return remoteErrorf("preview %s: delete on %s: %v", branch, remote, err)
		}
		if _, err := s.git(ctx, "update-ref", "-d", previewTracking(remote)+branch); err != nil {
			return err
		}
	}
	_, err = s.git(ctx, "update-ref", "-d", ref)
	return err
}

// RemoteBranches lists the branches remote has.
func (s *Store) RemoteBranches(ctx context.Context, remote string) (map[string]bool, error) {
	out, err := s.git(ctx, "ls-remote", "--heads", remote)
	if err != nil {
		return nil, remoteErrorf("branches of %s: %v", remote, err)
	}
	heads := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if _, ref, ok := strings.Cut(strings.TrimSpace(line), "\t"); ok {
			heads[strings.TrimPrefix(ref, "refs/heads/")] = true
		}
	}
	return heads, nil
}
