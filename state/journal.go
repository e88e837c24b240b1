package state

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// An apply records its runs in one commit once every step has a result.
// Until then, its journal keeps the steps that finished, one line each as
// they finish, so that an apply killed on the way (SIGKILL, a crash, the
// machine's CI job timing out) loses none of them: the next apply in the
// clone records what the journal holds (see Recover) before it plans, and
// the steps that finished are cache hits for it.
//
// Journals live in the common git dir, zen-journal/<id>.jsonl, beside the
// apply lock; they are local to a clone, like the apply they belong to.
// Lines are written whole with one write each, and need no fsync: what a
// killed process wrote is in the kernel's page cache and survives it.

// JournalLine is one line of a journal: a run as it started, or a step
// of a run that finished, with its cache entry when it has one.
type JournalLine struct {
	Run   *Run        `json:"run,omitempty"`
	RunID string      `json:"run_id,omitempty"`
	Step  string      `json:"step,omitempty"`
	Res   *StepResult `json:"result,omitempty"`
	Cache *Cache      `json:"cache,omitempty"`
}

// Journal is an open journal.
type Journal struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// journalDir is where the journals of applies to the ref are kept: the
// state ref's in zen-journal, another ref's (a preview's) in a folder of
// its own below it, so that each ref's applies recover only their own.
func (s *Store) journalDir() string {
	dir := filepath.Join(s.commonDir, "zen-journal")
	if s.ref == DefaultRef {
		return dir
	}
	return filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(s.ref, "refs/")))
}

// OpenJournal starts the journal of an apply: id names it (its first
// run's id), runs are its runs as they start.
func (s *Store) OpenJournal(id string, runs []*Run) (*Journal, error) {
	if err := os.MkdirAll(s.journalDir(), 0o755); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	p := filepath.Join(s.journalDir(), id+".jsonl")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{f: f, path: p}
	for _, r := range runs {
		if err := j.add(JournalLine{Run: r}); err != nil {
			j.Close()
			j.Remove()
			return nil, err
		}
	}
	return j, nil
}

// Add writes that step of run finished with res, and its cache entry c
// (nil for none).
func (j *Journal) Add(runID, step string, res *StepResult, c *Cache) error {
	return j.add(JournalLine{RunID: runID, Step: step, Res: res, Cache: c})
}

func (j *Journal) add(l JournalLine) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return errors.New("journal closed")
	}
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

// Close closes the journal and keeps it, for Recover.
func (j *Journal) Close() {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}

// Remove closes and deletes the journal, once its runs are recorded.
func (j *Journal) Remove() {
	if j == nil {
		return
	}
	j.Close()
	_ = os.Remove(j.path)
}

// LeftJournal is a journal an apply left behind: its runs, with the
// steps that finished, and the cache entries of those.
type LeftJournal struct {
	Path  string
	Runs  []*Run
	Cache []*Cache
	// Modified is when the last line was written.
	Modified time.Time
}

// Steps counts the steps that finished in the journal.
func (l *LeftJournal) Steps() int {
	n := 0
	for _, r := range l.Runs {
		n += len(r.Steps)
	}
	return n
}

// LeftJournals reads the journals in the clone that no apply holds: the
// caller holds the apply lock, so every journal there is one a killed
// apply left. A last line cut short (the kill came while it was written)
// is ignored.
func (s *Store) LeftJournals() ([]*LeftJournal, error) {
	entries, err := os.ReadDir(s.journalDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var out []*LeftJournal
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".jsonl") {
			continue
		}
		p := filepath.Join(s.journalDir(), e.Name())
		l, err := readJournal(p)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

func readJournal(p string) (*LeftJournal, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	l := &LeftJournal{Path: p, Modified: fi.ModTime().UTC()}
	byID := map[string]*Run{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var line JournalLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			// Only the last line can be cut short by a kill.
			break
		}
		switch {
		case line.Run != nil:
			r := line.Run
			if r.Steps == nil {
				r.Steps = map[string]*StepResult{}
			}
			byID[r.ID] = r
			l.Runs = append(l.Runs, r)
		case byID[line.RunID] != nil && line.Step != "" && line.Res != nil:
			byID[line.RunID].Steps[line.Step] = line.Res
			if line.Cache != nil {
				l.Cache = append(l.Cache, line.Cache)
			}
		}
	}
	slices.SortFunc(l.Runs, func(a, b *Run) int { return strings.Compare(a.ID, b.ID) })
	return l, nil
}

// Recover records the runs of a journal a killed apply left, as
// cancelled, with the steps that finished and their cache entries, and
// removes the journal. A journal with no finished step is removed with
// nothing recorded. It returns the new state commit ("" for none).
func (s *Store) Recover(ctx context.Context, l *LeftJournal) (string, error) {
	head, err := s.Head()
	if err != nil {
		return "", err
	}
	files := map[string][]byte{}
	var lines []string
	recorded := map[string]bool{}
	for _, r := range l.Runs {
		// Killed after its runs were recorded, before the journal went.
		if _, ok, err := head.Read(RunPath(r.ID)); err != nil {
			return "", err
		} else if ok {
			recorded[r.ID] = true
			continue
		}
		if len(r.Steps) == 0 {
			continue
		}
		r.Status = StatusCancelled
		r.Error = fmt.Sprintf("zen apply was stopped before it recorded this run; the next apply recorded the %d steps that had finished", len(r.Steps))
		r.Finished = l.Modified
		if err := AddRun(files, r); err != nil {
			return "", err
		}
		lines = append(lines, fmt.Sprintf("Run: %s %s %s", r.ID, r.Pipeline, r.Status))
	}
	for _, c := range l.Cache {
		if recorded[c.RunID] {
			continue
		}
		b, err := Encode(c)
		if err != nil {
			return "", err
		}
		files[CachePath(c.Key)] = b
	}
	var commit string
	if len(files) > 0 {
		msg := fmt.Sprintf("zen apply: recorded %d steps of a stopped apply\n\n%s\n", l.Steps(), strings.Join(lines, "\n"))
		if commit, err = s.Commit(ctx, head.Commit(), Change{Files: files, Message: msg}); err != nil {
			return "", fmt.Errorf("record the journal %s: %w", l.Path, err)
		}
	}
	if err := os.Remove(l.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return commit, err
	}
	return commit, nil
}
