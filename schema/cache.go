package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"

	"cuelang.org/go/cue/build"
)

// zen keeps the last evaluation of a repository's CUE in .zen/cache, keyed
// by the schema, the overrides and the content of every CUE file the
// evaluation read. Evaluating a large package takes seconds; checking that
// none of its files changed takes milliseconds.

const cacheFormat = "zen-config-cache-v1\n"

type cacheEntry struct {
	Key   string              `json:"key"`
	Dirs  map[string][]string `json:"dirs"`  // folder → its .cue files' names
	Files map[string]string   `json:"files"` // file → sha256 of its content
	Data  json.RawMessage     `json:"data"`  // the evaluated configuration
}

func (l *loader) cachePath() string {
	return filepath.Join(l.root, ".zen", "cache", "config.json")
}

// cacheKey covers what, besides the files, decides the evaluation.
func (l *loader) cacheKey() string {
	h := sha256.New()
	h.Write([]byte(cacheFormat))
	h.Write(Source)
	for _, o := range l.overrides {
		h.Write([]byte("\x00" + o.Path + "=" + o.Value))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cached returns the evaluated configuration when no file it came from
// changed, or nil.
func (l *loader) cached() []byte {
	b, err := os.ReadFile(l.cachePath())
	if err != nil {
		return nil
	}
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil || e.Key != l.cacheKey() || len(e.Dirs) == 0 {
		return nil
	}
	for dir, names := range e.Dirs {
		now, _ := filepath.Glob(filepath.Join(dir, "*.cue"))
		if len(now) != len(names) {
			return nil
		}
		for i, p := range now {
			if filepath.Base(p) != names[i] {
				return nil
			}
		}
	}
	for p, sum := range e.Files {
		if fileSum(p) != sum {
			return nil
		}
	}
	return e.Data
}

// remember saves an evaluation with the files it read. Failing to is not
// an error: the cache only saves time.
func (l *loader) remember(inst *build.Instance, data []byte) {
	e := cacheEntry{Key: l.cacheKey(), Dirs: map[string][]string{}, Files: map[string]string{}, Data: data}
	seen := map[*build.Instance]bool{}
	var walk func(i *build.Instance)
	walk = func(i *build.Instance) {
		if seen[i] {
			return
		}
		seen[i] = true
		if i.Dir != "" && len(i.BuildFiles) > 0 {
			names, _ := filepath.Glob(filepath.Join(i.Dir, "*.cue"))
			for k := range names {
				names[k] = filepath.Base(names[k])
			}
			sort.Strings(names)
			e.Dirs[i.Dir] = names
		}
		for _, f := range i.BuildFiles {
			if f.Filename != "" && filepath.IsAbs(f.Filename) {
				e.Files[f.Filename] = fileSum(f.Filename)
			}
		}
		for _, imp := range i.Imports {
			walk(imp)
		}
	}
	walk(inst)
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	p := l.cachePath()
	if os.MkdirAll(filepath.Dir(p), 0o755) != nil {
		return
	}
	tmp := p + ".tmp"
	if os.WriteFile(tmp, b, 0o644) == nil {
		_ = os.Rename(tmp, p)
	}
}

func fileSum(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
