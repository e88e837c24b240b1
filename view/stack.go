package view

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/zen-dev/zen/schema"
)

// StackList draws the stacks a line each, by name, the current one
// marked with a '*': its orchestrator and its artifact store.
func StackList(out io.Writer, stacks map[string]*schema.Stack, current string) error {
	w := &writer{w: out}
	for _, n := range slices.Sorted(maps.Keys(stacks)) {
		mark := " "
		if n == current {
			mark = "*"
		}
		st := stacks[n]
		fmt.Fprintf(w, "%s %-12s orchestrator %-6s artifact store %s\n", mark, n, st.Orchestrator.Flavor, describeStore(st))
	}
	return w.err
}

// Stack draws a stack: its description, and its components with their
// settings.
func Stack(out io.Writer, st *schema.Stack) error {
	w := &writer{w: out}
	fmt.Fprintf(w, "stack %s\n", st.Name)
	if st.Description != "" {
		fmt.Fprintf(w, "  %s\n", st.Description)
	}
	fmt.Fprintf(w, "  orchestrator:   %s%s\n", st.Orchestrator.Flavor, settings(st.Orchestrator))
	fmt.Fprintf(w, "  artifact_store: %s%s\n", st.ArtifactStore.Flavor, settings(st.ArtifactStore))
	return w.err
}

// describeStore names a stack's artifact store by flavor and where it is.
func describeStore(st *schema.Stack) string {
	switch st.ArtifactStore.Flavor {
	case "oci-layout":
		p := st.ArtifactStore.String("path")
		if p == "" {
			p = ".zen/store"
		}
		return "oci-layout " + p
	case "oci":
		return "oci " + st.ArtifactStore.String("repository")
	}
	return st.ArtifactStore.Flavor
}

// settings is a component's settings, sorted, in parentheses: "" for none.
func settings(c schema.Component) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c.Settings)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, c.Settings[k]))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
