package zen

import (
	"context"
	"testing"
)

// Watch with nothing submitted collects nothing; it takes the clone's
// apply lock, and refuses while an apply holds it.
func TestWatchNothing(t *testing.T) {
	p, err := Open(testRepo(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := p.Watch(ctx, WatchOptions{Run: "2026"})
	if err != nil || w.Pending != 0 || w.Pushed || w.Remote != "" {
		t.Errorf("Watch: %+v, %v", w, err)
	}
	pl, err := p.Plan(ctx, PlanOptions{ForApply: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Release()
	if w, err := p.Watch(ctx, WatchOptions{}); err == nil || w != nil {
		t.Errorf("Watch while a plan for an apply holds the lock: %+v, %v", w, err)
	}
}
