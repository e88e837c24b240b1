package testscript

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// TestREADME runs every command that README.md shows in a code block, as
// written, so that the README cannot drift from what zen does.
//
//   - The ```console blocks are the tour: their "$ " lines run in order in
//     one bash, in an empty folder with a HOME of its own, as a new user
//     would type them (zen is on PATH, as the Install block puts it). Each
//     must exit 0. The lines a block shows under a command must appear in
//     what the command printed (stdout and stderr), in that order, with
//     digests, run ids, durations and the user's home folder matching any
//     value. After the tour the work tree is clean: the tour leaves nothing
//     behind that git would commit.
//   - The ```sh blocks (Install, the two commands, Development) run in
//     this source tree. `make test` is this very suite: the test
//     checks that .ci/run runs it, rather than running it again. `make
//     bench` and `make stress` take tens of minutes and are checked with
//     `make -n`.
//   - An HTML comment `<!-- test: BASH -->` right before a block is bash
//     the tour runs first: the edit of a file the text around the block
//     describes in words, such as uncommenting a stack, or the repository
//     a fragment of CUE shown before the block belongs to ($README_CUE is
//     a file holding the last cue block). $REGISTRY is a registry on
//     loopback, for the blocks that use one.
func TestREADME(t *testing.T) {
	t.Parallel() // beside the scripts: each waits on processes as much as on the CPU
	if testing.Short() {
		t.Skip("the README's tour applies pipelines: not in -short")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("the quickstart's steps need python3")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseREADME(readme)
	if err != nil {
		t.Fatal(err)
	}
	var tour, build []readmeBlock
	for _, b := range blocks {
		switch b.lang {
		case "console":
			tour = append(tour, b)
		case "sh":
			build = append(build, b)
		}
	}
	if len(tour) == 0 || len(build) == 0 {
		t.Fatalf("README.md: %d console and %d sh blocks; the parser is wrong", len(tour), len(build))
	}
	t.Run("tour", func(t *testing.T) { runTour(t, tour) })
	t.Run("build", func(t *testing.T) { runBuild(t, build) })
}

// readmeBlock is a fenced code block of the README.
type readmeBlock struct {
	lang  string
	line  int    // of the opening fence
	setup string // the bash of a <!-- test: --> comment before it
	cue   string // the last cue block before it, for its setup
	cmds  []readmeCmd
	text  []string // every line
}

// readmeCmd is a command of a block, and the lines shown under it.
type readmeCmd struct {
	line  int
	text  string
	shown []string
}

var testComment = regexp.MustCompile(`^<!-- test: (.*) -->$`)

// parseREADME reads the fenced blocks of a markdown file: console blocks'
// "$ " lines with the lines under them, and sh blocks' lines.
func parseREADME(src []byte) ([]readmeBlock, error) {
	var blocks []readmeBlock
	var cur *readmeBlock
	setup, cue := "", ""
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &readmeBlock{lang: strings.TrimPrefix(line, "```"), line: n, setup: setup, cue: cue}
			setup = ""
		case cur == nil:
			if m := testComment.FindStringSubmatch(line); m != nil {
				setup = m[1]
			} else if strings.TrimSpace(line) != "" {
				setup = ""
			}
		case line == "```":
			if cur.lang == "cue" {
				cue = strings.Join(cur.text, "\n") + "\n"
			}
			blocks = append(blocks, *cur)
			cur = nil
		case cur.lang == "cue":
			cur.text = append(cur.text, line)
		case cur.lang == "console" && strings.HasPrefix(line, "$ "):
			cur.cmds = append(cur.cmds, readmeCmd{line: n, text: strings.TrimPrefix(line, "$ ")})
		case cur.lang == "console":
			if len(cur.cmds) == 0 {
				return nil, fmt.Errorf("README.md:%d: console block shows output before any command", n)
			}
			c := &cur.cmds[len(cur.cmds)-1]
			c.shown = append(c.shown, line)
		case cur.lang == "sh" && strings.TrimSpace(line) != "" && !strings.HasPrefix(strings.TrimSpace(line), "#"):
			cur.cmds = append(cur.cmds, readmeCmd{line: n, text: line})
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("README.md:%d: code block not closed", cur.line)
	}
	return blocks, sc.Err()
}

// readmeEnv is the environment of a new user: a HOME of their own, git
// knowing their name, zen on PATH.
func readmeEnv(t *testing.T, home string) []string {
	t.Helper()
	gitconfig := filepath.Join(home, ".gitconfig")
	if err := os.WriteFile(gitconfig, []byte("[user]\n\tname = Zen Test\n\temail = test@zen.invalid\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ZEN_") || strings.HasPrefix(k, "GIT_") || k == "HOME" || k == "COSIGN_PASSWORD" || k == "DOCKER_CONFIG" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "GIT_CONFIG_GLOBAL="+gitconfig, "GIT_CONFIG_NOSYSTEM=1", "NO_COLOR=1")
}

// script writes the commands as one bash script that marks where each
// command's output ends, and with what status.
func script(blocks []readmeBlock) string {
	var b strings.Builder
	b.WriteString("set -o pipefail\n")
	for i, bl := range blocks {
		if bl.setup != "" && bl.cue != "" {
			fmt.Fprintf(&b, "cat > \"$README_CUE\" <<'ZEN_README_EOF'\n%sZEN_README_EOF\n", bl.cue)
		}
		if bl.setup != "" {
			fmt.Fprintf(&b, "{ %s\n} >/dev/null 2>&1 || { echo '::setup-failed %d::'; exit 1; }\n", bl.setup, i)
		}
		for j, c := range bl.cmds {
			fmt.Fprintf(&b, "%s\nprintf '\\n::end %d %d %%d::\\n' $?\n", c.text, i, j)
		}
	}
	return b.String()
}

var endMarker = regexp.MustCompile(`(?m)^::end (\d+) (\d+) (\d+)::$`)

// runScript runs the blocks' commands in dir and checks each: exit 0, and
// the lines shown under it printed.
func runScript(t *testing.T, blocks []readmeBlock, dir string, env []string) {
	t.Helper()
	cmd := exec.Command("bash", "-c", script(blocks))
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("what the README's commands printed:\n%s", out)
	}
	rest := string(out)
	for i, bl := range blocks {
		for j, c := range bl.cmds {
			loc := endMarker.FindStringSubmatchIndex(rest)
			if loc == nil {
				t.Fatalf("README.md:%d: %s: no end marker; the script stopped:\n%s", c.line, c.text, rest)
			}
			printed := rest[:loc[0]]
			bi, _ := strconv.Atoi(rest[loc[2]:loc[3]])
			ci, _ := strconv.Atoi(rest[loc[4]:loc[5]])
			code := rest[loc[6]:loc[7]]
			rest = rest[loc[1]:]
			if bi != i || ci != j {
				t.Fatalf("README.md:%d: end marker of block %d command %d, want %d %d", c.line, bi, ci, i, j)
			}
			if code != "0" {
				t.Errorf("README.md:%d: $ %s\nexit status %s; printed:\n%s", c.line, c.text, code, printed)
				continue
			}
			if err := matchShown(c.shown, printed); err != nil {
				t.Errorf("README.md:%d: $ %s\n%v\nprinted:\n%s", c.line, c.text, err, printed)
			}
		}
	}
}

// runTour runs the console blocks in one bash, in a new user's empty
// folder, with a registry on loopback as $REGISTRY.
func runTour(t *testing.T, tour []readmeBlock) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	home := t.TempDir()
	work := filepath.Join(home, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(readmeEnv(t, home), "REGISTRY="+strings.TrimPrefix(srv.URL, "http://"), "README_CUE="+filepath.Join(home, "block.cue"))
	runScript(t, tour, work, env)
	if t.Failed() {
		return
	}
	// The tour starts with mkdir demo && cd demo.
	cmd := exec.Command("git", "status", "--porcelain", "--untracked-files=all")
	cmd.Dir, cmd.Env = filepath.Join(work, "demo"), env
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("after the tour, git status --porcelain: %v\n%s\nwant a clean work tree", err, out)
	}
}

// dryRun are the make targets of sh blocks that are checked with make -n
// only: each runs for minutes (test-fast runs this very package, and
// .ci/run runs lint).
var dryRun = map[string]bool{"make bench": true, "make stress": true, "make test-fast": true, "make lint": true}

// runBuild runs the sh blocks in this source tree, as its developer
// would: with their Go caches (a HOME of its own would build every
// dependency again), and the quickstart's repository in a temporary
// folder. What they write (bin/, the quickstart) git ignores.
func runBuild(t *testing.T, build []readmeBlock) {
	src, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile(filepath.Join(src, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	var run []readmeBlock
	for _, b := range build {
		var cmds []readmeCmd
		for _, c := range b.cmds {
			text, _, _ := strings.Cut(c.text, "#")
			text = strings.TrimSpace(text)
			switch {
			case text == "make test":
				// This suite: CI runs it.
				if !regexp.MustCompile(`(?m)^make test$`).Match(ci) {
					t.Errorf("README.md:%d: make test: .ci/run does not run it", c.line)
				}
			case dryRun[text]:
				// A target the Makefile lacks is "Nothing to be done" for
				// make -n when .PHONY names it: that fails too.
				dry := strings.Replace(text, "make ", "make -n ", 1)
				cmds = append(cmds, readmeCmd{line: c.line, text: fmt.Sprintf(`out=$(%s 2>&1) && [ -n "$out" ] && ! grep -q "Nothing to be done" <<<"$out"`, dry)})
			default:
				cmds = append(cmds, c)
			}
		}
		b.cmds = cmds
		run = append(run, b)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ZEN_") {
			env = append(env, kv)
		}
	}
	env = append(env, "QUICKSTART_DIR="+filepath.Join(t.TempDir(), "quickstart"))
	runScript(t, run, src, env)
}

// Values that differ from run to run, as the README shows them, and what
// they match.
var variable = []struct {
	re   *regexp.Regexp
	want string
}{
	{regexp.MustCompile(`\d{8}-\d{6}(?:\.\d{3})?-[0-9a-f]{6}`), `\d{8}-\d{6}(?:\.\d{3})?-[0-9a-f]{6}`}, // run ids
	{regexp.MustCompile(`\b[0-9a-f]{12,64}\b`), `[0-9a-f]{12,64}`},                                     // digests, commits
	{regexp.MustCompile(`\b\d+(?:\.\d+)?(?:ms|µs|s)\b`), `\d+(?:\.\d+)?(?:ms|µs|s)`},                   // durations
	{regexp.MustCompile(`/home/me\b`), `/\S+`},                                                         // the user's home
}

// shownPattern turns a line the README shows into a regular expression
// for a printed line: spaces collapse, variable values match any value.
func shownPattern(line string) *regexp.Regexp {
	line = strings.Join(strings.Fields(line), " ")
	var b strings.Builder
	for len(line) > 0 {
		first, which := -1, -1
		for i, v := range variable {
			if loc := v.re.FindStringIndex(line); loc != nil && (first == -1 || loc[0] < first) {
				first, which = loc[0], i
			}
		}
		if which == -1 {
			b.WriteString(regexp.QuoteMeta(line))
			break
		}
		loc := variable[which].re.FindStringIndex(line)
		b.WriteString(regexp.QuoteMeta(line[:loc[0]]))
		b.WriteString(variable[which].want)
		line = line[loc[1]:]
	}
	return regexp.MustCompile("^" + b.String() + "$")
}

// matchShown checks that the shown lines are printed, in order, each a
// whole line (spaces collapsed); "..." stands for lines left out.
func matchShown(shown []string, printed string) error {
	var got []string
	for _, l := range strings.Split(printed, "\n") {
		got = append(got, strings.Join(strings.Fields(l), " "))
	}
	i := 0
	for _, s := range shown {
		if strings.TrimSpace(s) == "..." || strings.TrimSpace(s) == "" {
			continue
		}
		re := shownPattern(s)
		for i < len(got) && !re.MatchString(got[i]) {
			i++
		}
		if i == len(got) {
			return fmt.Errorf("the README shows %q, not printed (in this order)", s)
		}
		i++
	}
	return nil
}

// TestMatchShown checks the README's matcher: variable values match any
// value, anything else must be printed as shown, in order.
func TestMatchShown(t *testing.T) {
	printed := "stack local (artifact store oci-layout .zen/store), source 2e58f1a0256b\n" +
		"  = load      cached (key b03dcdd1bb48, from run 20261123-100940.123-845e74)\n" +
		"✓ quickstart.evaluate succeeded in 1.53s\n" +
		"initialized a git repository in /tmp/x/demo\n"
	for _, c := range []struct {
		shown []string
		ok    bool
	}{
		{[]string{"stack local (artifact store oci-layout .zen/store), source 0123456789ab", "...", "✓ quickstart.evaluate succeeded in 283ms"}, true},
		{[]string{"= load cached (key ffffffffffff, from run 20260101-000000.000-abcdef)"}, true},
		{[]string{"initialized a git repository in /home/me/demo"}, true},
		{[]string{"✓ quickstart.evaluate succeeded in 283ms", "= load cached (key b03dcdd1bb48, from run 20261123-100940.123-845e74)"}, false}, // order
		{[]string{"✓ quickstart.train succeeded in 283ms"}, false},                                                                             // another step
		{[]string{"stack local (artifact store oci-layout .zen/store)"}, false},                                                                // a part of a line
		{[]string{"initialized a git repository in /home/me/other"}, false},
	} {
		if err := matchShown(c.shown, printed); (err == nil) != c.ok {
			t.Errorf("matchShown(%q) = %v, want ok %v", c.shown, err, c.ok)
		}
	}
}

// TestParseREADME checks the parser on the forms README.md uses.
func TestParseREADME(t *testing.T) {
	src := "text\n\n<!-- test: echo setup -->\n```console\n$ zen plan\nPlan: 1\n...\n$ zen apply   # runs\n```\n\n```sh\nmake build    # bin/zen\n# a comment\n\nmake test\n```\n\n```cue\na: 1\n```\n"
	blocks, err := parseREADME([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 3 {
		t.Fatalf("%d blocks, want 3", len(blocks))
	}
	con, sh := blocks[0], blocks[1]
	if con.setup != "echo setup" || len(con.cmds) != 2 || con.cmds[0].text != "zen plan" || strings.Join(con.cmds[0].shown, "|") != "Plan: 1|..." || con.cmds[1].line != 8 {
		t.Errorf("console block %+v", con)
	}
	if sh.setup != "" || len(sh.cmds) != 2 || sh.cmds[1].text != "make test" {
		t.Errorf("sh block %+v", sh)
	}
	if _, err := parseREADME([]byte("```console\nout first\n```\n")); err == nil {
		t.Error("output before a command: no error")
	}
	if _, err := parseREADME([]byte("```sh\nmake\n")); err == nil {
		t.Error("a block not closed: no error")
	}
}
