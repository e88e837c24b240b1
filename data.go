package zen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/schema"
)

// DataPushOptions are what zen data push stores, and where.
type DataPushOptions struct {
	// Path is the file or folder to store: absolute, or relative to
	// Options.WorkDir (else the process's directory).
	Path string
	// Name is the name the input names the data by; "" is the path's base
	// name without its extension, made a valid name.
	Name string
	// Stack is the stack whose store receives it; "" picks one as plan does.
	Stack string
}

// DataPushed is what zen data push stored.
type DataPushed struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Store  string `json:"artifact_store"`
	// SignedBy is the key id that signed it; "" on a stack that signs
	// nothing.
	SignedBy string `json:"signed_by,omitempty"`
	// Ref is NAME@sha256:…, the value of the {data: …} input.
	Ref string `json:"ref"`
}

// Input is the CUE input to declare for the data: a step reads it at
// $ZEN_INPUTS/NAME.
func (d *DataPushed) Input() string {
	return fmt.Sprintf("inputs: %s: {data: %q}", d.Name, d.Ref)
}

// DataPush stores a file or folder as an artifact in the stack's store,
// signed with the stack's key as apply signs what steps write, so that a
// step can declare it as an input pinned by digest ({data: NAME@sha256:…})
// and any stack that shares the store can pull it. The same bytes give
// the same digest: pushing them again stores nothing new.
func (p *Project) DataPush(ctx context.Context, opts DataPushOptions) (*DataPushed, error) {
	path := opts.Path
	if path == "" {
		return nil, errors.New("data push: name a file or folder to store")
	}
	if !filepath.IsAbs(path) {
		base := p.opts.WorkDir
		if base == "" {
			var err error
			if base, err = os.Getwd(); err != nil {
				return nil, err
			}
		}
		path = filepath.Join(base, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("data push: %w", err)
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return nil, fmt.Errorf("data push: %s is neither a regular file nor a folder", opts.Path)
	}
	name, err := dataName(opts.Name, path)
	if err != nil {
		return nil, err
	}
	st, err := p.SelectStack(opts.Stack)
	if err != nil {
		return nil, err
	}
	// The key first: a missing key or a wrong password fails with
	// nothing stored.
	signer, keyID, _, err := p.Signer(st)
	if err != nil {
		return nil, err
	}
	store, err := p.OpenStore(st)
	if err != nil {
		return nil, err
	}
	if err := store.Check(ctx); err != nil {
		return nil, err
	}
	typ := "data-file"
	if fi.IsDir() {
		typ = "data-dir"
	}
	desc, err := store.Push(ctx, path, typ)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	if signer != nil {
		if err := signature.Sign(ctx, store.ArtifactRepository(), desc.Digest, signer); err != nil {
			_ = store.Close()
			return nil, fmt.Errorf("data push: sign %s: %w", desc.Digest, err)
		}
	}
	if err := store.Close(); err != nil {
		return nil, err
	}
	return &DataPushed{Name: name, Digest: desc.Digest, Size: desc.Size, Store: store.String(), SignedBy: keyID, Ref: schema.DataRef(name, desc.Digest)}, nil
}

// dataName is the name data is declared by: the one given, checked, or
// the path's base name without its extension.
func dataName(given, path string) (string, error) {
	if given != "" {
		if err := schema.CheckName("data", given); err != nil {
			return "", fmt.Errorf("--name: %w", err)
		}
		return given, nil
	}
	base := filepath.Base(path)
	if ext := filepath.Ext(base); ext != base {
		base = strings.TrimSuffix(base, ext)
	}
	if schema.ValidName(base) {
		return base, nil
	}
	if s := schema.SuggestName("data", base); s != "" {
		return s, nil
	}
	return "", fmt.Errorf("data push: %s gives no valid name: name it with --name", filepath.Base(path))
}
