package state

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// A run's pipeline is inside its record, so finding a pipeline's runs
// would read every record recorded since. Two things spare that:
//
//   - the index on the state ref (RunIndexDir): every writer of a run
//     record writes, in the same commit, the run's entry holding its
//     pipeline's name, a blob shared by all the pipeline's entries; so
//     the runs' pipelines are a month's tree entries and a blob per
//     pipeline, in a fresh clone too;
//   - for records without an entry (those recorded before the index,
//     or by a zen that did not write it), a local cache in the git dir
//     (runCacheFile) of the pipelines of the records read through.

// runCacheFile, in the repository's git dir, remembers the pipeline of
// each unindexed run record zen has looked through. A line per record:
// its blob's hash and its pipeline, quoted. It is keyed by the record's
// content, so no entry is ever stale, whatever the state ref did since (a
// pull, a rewrite, another clone's push); the file is local and a cache
// only: a missing or damaged one costs reading the records again.
const runCacheFile = "zen-run-pipelines"

// runCacheHeader starts the file; a file with another one is not read.
const runCacheHeader = "zen run pipelines 1\n"

// runEntry is a run record's id and tree entry.
type runEntry struct {
	id, path string
	e        object.TreeEntry
}

// RunsOf yields the recorded runs of pipeline, newest first (the reverse
// of the order RunIDs lists them); with before, only those listed before
// run before, and none when there is no such run. It decodes only the
// runs it yields. The others' pipelines it learns from the index on the
// state ref (a tree a month, a blob a pipeline); of a run the index
// lacks, it reads the record's version and pipeline, and remembers the
// pipeline in the git dir (see runCacheFile), so that asking again costs
// tree entries. An error ends the sequence.
func (r Records) RunsOf(pipeline, before string) iter.Seq2[*Run, error] {
	return func(yield func(*Run, error) bool) {
		var runs []runEntry
		err := r.Snapshot.walk("runs", func(p string, e object.TreeEntry) error {
			if strings.HasSuffix(p, ".json") {
				runs = append(runs, runEntry{id: strings.TrimSuffix(path.Base(p), ".json"), path: p, e: e})
			}
			return nil
		})
		if err != nil {
			yield(nil, err)
			return
		}
		at := len(runs)
		if before != "" {
			at = slices.IndexFunc(runs, func(e runEntry) bool { return e.id == before })
		}
		s := r.Snapshot.s
		index := runIndex{sn: r.Snapshot}
		var cache map[plumbing.Hash]string // read at the first run the index lacks
		learned := false
		defer func() {
			if learned {
				s.saveRunCache(cache, runs)
			}
		}()
		fail := func(err error) {
			learned = false // a search that failed writes nothing
			yield(nil, err)
		}
		for i := at - 1; i >= 0; i-- {
			e := runs[i]
			if e.path != RunPath(e.id) {
				// Run(id) reads the record only where zen writes it.
				continue
			}
			p, ok, err := index.pipeline(e.id)
			if err != nil {
				fail(err)
				return
			}
			var data []byte
			if !ok {
				if cache == nil {
					cache = s.loadRunCache()
				}
				if p, ok = cache[e.e.Hash]; !ok {
					if data, p, err = r.runPipeline(e); err != nil {
						fail(err)
						return
					}
					cache[e.e.Hash], learned = p, true
				}
			}
			if p != pipeline {
				continue
			}
			if data == nil {
				if data, err = r.runRecord(e); err != nil {
					fail(err)
					return
				}
			}
			run := new(Run)
			if err := decode(data, run); err != nil {
				fail(&CorruptError{Ref: r.Ref, Commit: r.Snapshot.Commit(), Path: e.path, Err: err})
				return
			}
			if run.Pipeline != pipeline {
				// A record edited by hand can name two pipelines (the one
				// decoding keeps is the last), or another than its index
				// entry names.
				continue
			}
			if !yield(run, nil) {
				return
			}
		}
	}
}

// runIndex reads a snapshot's index of the runs' pipelines (RunIndexDir),
// a month at a time, as the runs asked about need.
type runIndex struct {
	sn *Snapshot
	// top is the index's folder; read is false until it is looked up.
	top  object.TreeEntry
	read bool
	// months maps a month (a shard) to its runs' entries' blobs, by id.
	months map[string]map[string]plumbing.Hash
	// names maps an entry's blob to the pipeline it names, "" for one
	// that names none.
	names map[plumbing.Hash]string
}

// pipeline is the pipeline the index names for run id; ok is false when
// it has no entry for it, or one that names no pipeline.
func (x *runIndex) pipeline(id string) (string, bool, error) {
	shard := runShard(id)
	m, ok := x.months[shard]
	if !ok {
		var err error
		if m, err = x.month(shard); err != nil {
			return "", false, err
		}
		if x.months == nil {
			x.months = map[string]map[string]plumbing.Hash{}
		}
		x.months[shard] = m
	}
	h, ok := m[id]
	if !ok {
		return "", false, nil
	}
	p, ok := x.names[h]
	if !ok {
		data, err := x.sn.s.load(h, plumbing.BlobObject)
		if err != nil {
			return "", false, x.sn.errorf(RunIndexPath(id), "%w", err)
		}
		if p, ok = strings.CutSuffix(string(data), "\n"); !ok || len(p) > 255 || !indexPipelineRE.MatchString(p) {
			p = ""
		}
		if x.names == nil {
			x.names = map[plumbing.Hash]string{}
		}
		x.names[h] = p
	}
	return p, p != "", nil
}

// month reads the index entries of one shard. What zen would not have
// written (a file where a folder goes, a folder where an entry goes) is
// passed over: its runs are read as unindexed ones are.
func (x *runIndex) month(shard string) (map[string]plumbing.Hash, error) {
	if !x.read {
		e, ok, err := x.sn.lookup(RunIndexDir)
		if err != nil {
			return nil, err
		}
		x.top, x.read = e, true
		if !ok {
			x.top.Mode = filemode.Empty
		}
	}
	if x.top.Mode != filemode.Dir {
		return nil, nil
	}
	months, err := x.sn.s.readTree(x.top.Hash)
	if err != nil {
		return nil, x.sn.errorf(RunIndexDir, "%w", err)
	}
	i := slices.IndexFunc(months, func(e object.TreeEntry) bool { return e.Name == shard })
	if i < 0 || months[i].Mode != filemode.Dir {
		return nil, nil
	}
	entries, err := x.sn.s.readTree(months[i].Hash)
	if err != nil {
		return nil, x.sn.errorf(path.Join(RunIndexDir, shard), "%w", err)
	}
	m := make(map[string]plumbing.Hash, len(entries))
	for _, e := range entries {
		if e.Mode != filemode.Dir && e.Mode != filemode.Submodule {
			m[e.Name] = e.Hash
		}
	}
	return m, nil
}

// runRecord reads the record of a run entry, as Snapshot.Read would.
func (r Records) runRecord(e runEntry) ([]byte, error) {
	if e.e.Mode == filemode.Submodule {
		return nil, r.Snapshot.errorf(e.path, "not a file")
	}
	data, err := r.Snapshot.s.load(e.e.Hash, plumbing.BlobObject)
	if err != nil {
		return nil, r.Snapshot.errorf(e.path, "%w", err)
	}
	return data, nil
}

// runPipeline reads a run record and the pipeline it names, checking its
// version as decode does.
func (r Records) runPipeline(e runEntry) ([]byte, string, error) {
	data, err := r.runRecord(e)
	if err != nil {
		return nil, "", err
	}
	p, err := recordPipeline(data)
	if err != nil {
		return nil, "", &CorruptError{Ref: r.Ref, Commit: r.Snapshot.Commit(), Path: e.path, Err: err}
	}
	return data, p, nil
}

// recordPipeline reads a record's version and pipeline fields, and no
// further: zen writes them first, so that a record's other thousands of
// bytes are not parsed. Keys match as decoding matches them, whatever
// their case.
func recordPipeline(data []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", errors.New("not a JSON object")
	}
	var version *int
	var pipeline *string
	for dec.More() && (version == nil || pipeline == nil) {
		t, err := dec.Token()
		if err != nil {
			return "", err
		}
		key, _ := t.(string)
		switch {
		case strings.EqualFold(key, "version"):
			err = dec.Decode(&version)
		case strings.EqualFold(key, "pipeline"):
			err = dec.Decode(&pipeline)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", key, err)
		}
	}
	switch {
	case version == nil:
		return "", fmt.Errorf("no version field")
	case *version != RecordVersion:
		return "", fmt.Errorf("record version %d; this zen reads version %d (upgrade zen)", *version, RecordVersion)
	case pipeline == nil:
		return "", fmt.Errorf("no pipeline field")
	}
	return *pipeline, nil
}

// loadRunCache reads runCacheFile; lines it cannot read are left out.
func (s *Store) loadRunCache() map[plumbing.Hash]string {
	index := map[plumbing.Hash]string{}
	data, err := os.ReadFile(filepath.Join(s.commonDir, runCacheFile))
	if err != nil || !bytes.HasPrefix(data, []byte(runCacheHeader)) {
		return index
	}
	for line := range bytes.Lines(data[len(runCacheHeader):]) {
		h, q, ok := bytes.Cut(bytes.TrimSuffix(line, []byte("\n")), []byte(" "))
		if !ok || !bytes.HasSuffix(line, []byte("\n")) || !plumbing.IsHash(string(h)) {
			continue
		}
		if p, err := strconv.Unquote(string(q)); err == nil {
			index[plumbing.NewHash(string(h))] = p
		}
	}
	return index
}

// saveRunCache writes the entries of index for the records of runs, the
// state's, by renaming a full file into place: a reader sees the old file
// or the new one, and two writers leave one of theirs. It is a cache, so
// a failure (a read-only clone, say) is not one of the command's.
func (s *Store) saveRunCache(index map[plumbing.Hash]string, runs []runEntry) {
	var keep []plumbing.Hash
	for _, e := range runs {
		if _, ok := index[e.e.Hash]; ok {
			keep = append(keep, e.e.Hash)
		}
	}
	slices.SortFunc(keep, func(a, b plumbing.Hash) int { return bytes.Compare(a[:], b[:]) })
	keep = slices.Compact(keep)
	f, err := os.CreateTemp(s.commonDir, runCacheFile+"-*")
	if err != nil {
		return
	}
	w := bufio.NewWriter(f)
	w.WriteString(runCacheHeader)
	for _, h := range keep {
		w.WriteString(h.String())
		w.WriteByte(' ')
		w.WriteString(strconv.Quote(index[h]))
		w.WriteByte('\n')
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(s.commonDir, runCacheFile))
	}
	if err != nil {
		os.Remove(f.Name())
	}
}
