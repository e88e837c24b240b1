package testscript

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretsNeverLeak sets secrets to random values, runs a pipeline
// whose steps use them (one prints its whole environment, then fails),
// and looks for the values everywhere zen writes: every object of the git
// repository (the state ref's records and commits), every file of the work
// tree and of .git (the artifact store, caches, journals, saved plans),
// and everything zen printed. None may appear. The step's log has the
// values masked.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel() // beside the scripts: each waits on processes as much as on the CPU
	if testing.Short() {
		t.Skip("searches every object of a real apply: not in -short (make test runs it)")
	}
	token, dbpass, password := randomSecret(t), randomSecret(t), randomSecret(t)
	c := newTestRepo(t, secretsCUE, "COSIGN_PASSWORD="+password, "ZEN_SECRET_API_TOKEN="+token, "ZEN_SECRETS_DIR="+filepath.Join(t.TempDir()))
	secretsDir := c.envValue("ZEN_SECRETS_DIR")
	if err := os.WriteFile(filepath.Join(secretsDir, "db_pass"), []byte(dbpass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.commit("secrets")

	var printed bytes.Buffer
	run := func(args ...string) {
		cmd := exec.Command("zen", args...)
		cmd.Dir, cmd.Env = c.dir, c.env
		cmd.Stdout, cmd.Stderr = &printed, &printed
		_ = cmd.Run() // failures are expected: the leaky step fails
	}
	run("plan")
	run("plan", "-o", "plan.zen")
	run("plan", "--output", "json")
	run("plan", "--output", "markdown")
	run("apply", "plan.zen")
	run("apply")
	run("runs", "show", "latest")
	run("runs", "show", "latest", "--output", "json")
	run("logs", "latest", "leaky")
	run("logs", "latest", "use")
	run("verify", "run", "latest", "--key", "release.pub")
	run("lineage", "latest")
	run("state", "log")

	// The steps had the values: the one hashed the token, the other
	// printed its environment, masked.
	sum := sha256.Sum256([]byte(token))
	if !strings.Contains(printed.String(), "TOKEN=***") || !strings.Contains(printed.String(), "DB_PASS=***") {
		t.Errorf("the leaky step's log does not show its secrets masked:\n%s", printed.String())
	}
	c.zen("artifacts", "get", "latest", "use", "h", "-o", filepath.Join(c.home, "h"))
	if h, _ := os.ReadFile(filepath.Join(c.home, "h")); !strings.HasPrefix(string(h), hex.EncodeToString(sum[:])) {
		t.Errorf("the step did not get the token: its hash is %q", h)
	}

	secrets := map[string]string{"ZEN_SECRET_API_TOKEN": token, "db_pass": dbpass, "COSIGN_PASSWORD": password}
	places, leaks := 0, 0
	check := func(where string, data []byte) {
		places++
		for name, v := range secrets {
			if bytes.Contains(data, []byte(v)) {
				leaks++
				t.Errorf("the value of %s is in %s", name, where)
			}
		}
	}
	check("zen's output", printed.Bytes())
	objects, err := exec.Command("sh", "-c", "cd '"+c.dir+"' && git cat-file --batch-all-objects --batch").Output()
	if err != nil {
		t.Fatal(err)
	}
	check("the git objects", objects)
	err = filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(c.dir, p)
		check(rel, data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stressReport(t, "leaks", leaks, places)
	t.Logf("looked for 3 secrets in %d places (%d bytes of git objects): %d leaks", places, len(objects), leaks)
}

func randomSecret(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "s" + hex.EncodeToString(b)
}

func (c *crashRepo) envValue(name string) string {
	for _, kv := range c.env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

const secretsCUE = `package zen

pipelines: secrets: steps: {
	use: {
		run: ["sh", "-c", "echo token is $TOKEN; echo pass is $DB_PASS >&2; printf %s \"$TOKEN\" | sha256sum > $ZEN_OUTPUTS/h"]
		env: {TOKEN: {secret: "api_token"}, DB_PASS: {secret: "db_pass"}}
		outputs: h: type: "file"
	}
	leaky: {
		run: ["sh", "-c", "env; echo \"$TOKEN$DB_PASS\" > $ZEN_OUTPUTS/x; exit 3"]
		env: {TOKEN: {secret: "api_token"}, DB_PASS: {secret: "db_pass"}}
		inputs: h: steps.use.outputs.h
		outputs: x: type: "file"
	}
}

default_stack: "signed"
stacks: signed: {
	orchestrator: flavor: "local"
	artifact_store: {flavor: "oci-layout", path: ".zen/store"}
	signer: {flavor: "cosign", key: {secret: "cosign_key"}, public_key: "release.pub"}
}
`
