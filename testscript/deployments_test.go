package testscript

import (
	"context"
	"path/filepath"

	"github.com/zen-dev/zen/deploy"
)

// stopDeployments stops every deployment a script's zen apply left
// serving in the repository at dir, so that no serving process outlives
// its script, whether the script passed or not.
func stopDeployments(dir string) {
	l := &deploy.Local{Dir: filepath.Join(dir, ".zen", "deployments")}
	list, _ := l.List(context.Background())
	for _, s := range list {
		_ = l.Stop(context.Background(), s.Name)
	}
}
