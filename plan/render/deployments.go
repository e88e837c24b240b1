package render

import (
	"fmt"
	"strings"

	"github.com/zen-dev/zen/plan"
)

// DeploymentLine renders a deployment change:
//
//   - deployment api fraud@production → 1.0.0 (sha256:3f2a9c1d7e4b): not running
//     ~ deployment api fraud@production 1.0.0 (sha256:3f2a9c1d7e4b) → 1.1.0 (sha256:9e8d7c6b5a41): the stage holds another version
//   - deployment old 1.0.0 (sha256:3f2a9c1d7e4b) at http://127.0.0.1:8500: no longer declared
func DeploymentLine(c *plan.DeploymentChange, s Style) string {
	if c.Action == plan.Delete {
		return fmt.Sprintf("%s deployment %s %s at %s: %s", s.paint("31", "-"), c.Name, versionDigest(c.FromVersion, c.FromDigest), c.URL, c.Reason)
	}
	to := versionDigest(c.Version, c.Digest)
	if c.Pending {
		to = c.Version + " (made by this apply)"
	}
	from := ""
	if c.Action != plan.Create && c.FromVersion != "" {
		from = versionDigest(c.FromVersion, c.FromDigest) + " "
	}
	line := fmt.Sprintf("%s deployment %s %s@%s %s→ %s: %s", s.action(c.Action), c.Name, c.Model, c.Stage, from, to, c.Reason)
	if c.Image != nil && c.Image.Tagged() {
		line += fmt.Sprintf("; image %s → %s", c.Image.Declared, c.Image.Digest())
	}
	return line
}

// versionDigest is "1.0.0 (sha256:3f2a9c1d7e4b)".
func versionDigest(version, digest string) string {
	if digest == "" {
		return version
	}
	return fmt.Sprintf("%s (sha256:%s)", version, short(strings.TrimPrefix(digest, "sha256:")))
}
