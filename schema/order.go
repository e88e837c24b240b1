package schema

import (
	"maps"
	"slices"
	"sort"
	"strings"
)

// checkRefs checks that every input read from another step names a step
// of the pipeline and one of its outputs. A reference in CUE
// (steps.load.outputs.train) cannot do otherwise, but a ref written by
// hand as a string can.
func (l *loader) checkRefs(p *Pipeline) {
	for _, sname := range slices.Sorted(maps.Keys(p.Steps)) {
		s := p.Steps[sname]
		for _, name := range s.InputNames() {
			in := s.Inputs[name]
			if in.Kind != InputStep || in.Step == "" || in.Step == sname {
				continue // reported already: a malformed ref, or its own output
			}
			at := []string{"pipelines", p.Name, "steps", sname, "inputs", name}
			up, ok := p.Steps[in.Step]
			switch {
			case !ok:
				l.errorf(l.pos(at...), strings.Join(at, "."), "no step %s in pipeline %s", in.Step, p.Name)
			case up.Outputs[in.Output] == nil:
				l.errorf(l.pos(at...), strings.Join(at, "."), "step %s has no output %s (outputs: %s)", in.Step, in.Output, strings.Join(up.OutputNames(), ", "))
			}
		}
	}
}

// order sorts the steps topologically and reports cycles.
func (l *loader) order(p *Pipeline) []string {
	indeg := map[string]int{}
	down := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(p.Steps)) {
		s := p.Steps[name]
		for _, up := range s.Upstream() {
			if _, ok := p.Steps[up]; !ok {
				continue // CUE reported the dangling reference already
			}
			indeg[name]++
			down[up] = append(down[up], name)
		}
	}
	var ready, order []string
	for _, name := range slices.Sorted(maps.Keys(p.Steps)) {
		if indeg[name] == 0 {
			ready = append(ready, name)
		}
	}
	for len(ready) > 0 {
		sort.Strings(ready)
		n := ready[0]
		ready = ready[1:]
		order = append(order, n)
		for _, d := range down[n] {
			if indeg[d]--; indeg[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	if len(order) < len(p.Steps) {
		l.cycle(p, indeg)
	}
	return order
}

// cycle reports one cycle among the steps left with incoming edges.
func (l *loader) cycle(p *Pipeline, indeg map[string]int) {
	var start string
	for _, name := range slices.Sorted(maps.Keys(p.Steps)) {
		if indeg[name] > 0 {
			start = name
			break
		}
	}
	// Walk upstream edges among the remaining steps until a step repeats.
	seen := map[string]int{}
	var path []string
	for cur := start; ; {
		if i, ok := seen[cur]; ok {
			path = path[i:]
			break
		}
		seen[cur] = len(path)
		path = append(path, cur)
		for _, up := range p.Steps[cur].Upstream() {
			if indeg[up] > 0 {
				cur = up
				break
			}
		}
	}
	// path lists each step followed by one it reads from; print it in data-flow order.
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	first := path[0]
	var in string
	for _, name := range p.Steps[first].InputNames() {
		if p.Steps[first].Inputs[name].Step == path[len(path)-1] {
			in = name
		}
	}
	loc := []string{"pipelines", p.Name, "steps", first, "inputs", in}
	l.errorf(l.pos(loc...), strings.Join(loc, "."), "cycle: %s → %s", strings.Join(path, " → "), first)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
