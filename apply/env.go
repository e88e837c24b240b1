package apply

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/zen-dev/zen/schema"
)

// stepEnv is the one rule for what a step inherits of zen's environment
// environ, whatever runs it. Its own variables (ZEN_INPUTS and the rest,
// and its declared env) come on top.
//
// Never to a step: zen's own variables (ZEN_*: its secrets, its stack,
// its failpoints), the signing key's password and cosign's settings
// (COSIGN_*), and TMPDIR (zen gives each step its own).
//
// offHost is for an environment that leaves this machine through a
// scheduler, which keeps it in its state files, readable by its
// administrators, and hands it to zen step-run on a node: it keeps zen's
// own variables, which that zen reads (it applies this rule again before
// the step starts), but drops anything that holds a secret: zen's
// secrets, cosign's, and whatever is named like a credential (PASSWORD,
// TOKEN, SECRET, in any case).
func stepEnv(environ []string, offHost bool) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		up := strings.ToUpper(name)
		switch {
		case strings.HasPrefix(up, "COSIGN_"):
			continue
		case offHost && (strings.HasPrefix(up, "ZEN_SECRET") || strings.Contains(up, "PASSWORD") ||
			strings.Contains(up, "TOKEN") || strings.Contains(up, "SECRET")):
			continue
		case !offHost && (strings.HasPrefix(name, "ZEN_") || name == "TMPDIR"):
			continue
		}
		out = append(out, kv)
	}
	return out
}

// LookupSecret resolves a secret from the environment variable
// ZEN_SECRET_<NAME> (upper case, other characters as _) when it is set and
// not empty, else from the file $ZEN_SECRETS_DIR/<name>. The error never
// holds the value.
func LookupSecret(name string) (string, error) {
	env := schema.SecretEnv(name)
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	if dir := os.Getenv("ZEN_SECRETS_DIR"); dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			return strings.TrimRight(string(b), "\r\n"), nil
		}
		if !os.IsNotExist(err) {
			return "", fmt.Errorf("secret %s: %v", name, err)
		}
	}
	return "", fmt.Errorf("secret %s is not set: export %s or write it to $ZEN_SECRETS_DIR/%s", name, env, name)
}
