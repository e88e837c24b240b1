package schema

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The name rule is schema.cue's #Name: its pattern and length are read
// from there, so that CUE (for `cue vet`) and zen check the same rule.
// They are read from the text, not by evaluating the schema: a plan from
// the cache evaluates no CUE at all, and a name is checked in every
// plan. TestNameRuleFromSchema checks the reading against CUE's.
var nameRule = sync.OnceValue(func() struct {
	re, version *regexp.Regexp
	max         int
} {
	pattern, err := readDecl(Source, "#NamePattern")
	if err != nil {
		panic(err)
	}
	version, err := readDecl(Source, "#VersionPattern")
	if err != nil {
		panic(err)
	}
	maxText, err := readDecl(Source, "#NameMaxLength")
	if err != nil {
		panic(err)
	}
	max, err := strconv.Atoi(maxText)
	if err != nil {
		panic("schema.cue: #NameMaxLength: " + err.Error())
	}
	return struct {
		re, version *regexp.Regexp
		max         int
	}{regexp.MustCompile(pattern), regexp.MustCompile(version), max}
})

// readDecl reads the value of a top-level definition of the schema's
// text written on one line: a quoted string (unquoted) or a number.
func readDecl(src []byte, name string) (string, error) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:\s*("(?:[^"\\]|\\.)*"|[0-9]+)\s*$`)
	m := re.FindSubmatch(src)
	if m == nil {
		return "", fmt.Errorf("schema.cue: no line %s: VALUE", name)
	}
	v := string(m[1])
	if strings.HasPrefix(v, `"`) {
		return strconv.Unquote(v)
	}
	return v, nil
}

// ValidVersion reports whether v is a model version schema.cue's
// #Version takes: an OCI tag.
func ValidVersion(v string) bool { return nameRule().version.MatchString(v) }

// NameRule states the rule every name follows, for messages.
const NameRule = "names are lowercase letters, digits, '-' and '_', starting with a letter, with no '-' or '_' at the end or two in a row"

// VersionRule states the rule every model version follows, for messages.
const VersionRule = "versions are OCI tags: letters, digits, '.', '_' and '-', not starting with '.' or '-', at most 128 characters"

// ValidName reports whether name follows the name rule: lowercase letters
// and digits, starting with a letter, with a single '-' or '_' between
// them, at most 128 characters.
func ValidName(name string) bool {
	r := nameRule()
	return utf8.RuneCountInString(name) <= r.max && r.re.MatchString(name)
}

// CheckName says what is wrong with a name of kind ("pipeline", "step",
// ...) and what to write instead, or returns nil.
func CheckName(kind, name string) error {
	if ValidName(name) {
		return nil
	}
	if n := utf8.RuneCountInString(name); n > nameRule().max {
		return fmt.Errorf("%s name %s: names are at most %d characters, this one has %d", kind, clipName(name), nameRule().max, n)
	}
	if s := SuggestName(kind, name); s != "" {
		return fmt.Errorf("%s name %q: %s; write %q", kind, name, NameRule, s)
	}
	return fmt.Errorf("%s name %q: %s; write a name such as %q", kind, name, NameRule, example(kind))
}

// SuggestName turns a name that breaks the rule into one that follows it:
// lowercase, each run of other characters one '-' (or '_' when that is
// all the run held), no separator at either end, and the kind in front of
// a leading digit. It returns "" when nothing of the name is left.
func SuggestName(kind, name string) string {
	for _, r := range name {
		if r > unicode.MaxASCII && unicode.IsLetter(r) {
			return "" // dropping a letter makes another name
		}
	}
	var b strings.Builder
	sep := rune(0) // the separator owed before the next letter or digit
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			if sep != 0 && b.Len() > 0 {
				b.WriteRune(sep)
			}
			sep = 0
			b.WriteRune(r)
		case r == '_' && (sep == 0 || sep == '_'):
			sep = '_'
		default:
			sep = '-'
		}
	}
	s := b.String()
	if s == "" {
		return ""
	}
	if s[0] >= '0' && s[0] <= '9' {
		s = strings.ReplaceAll(kind, " ", "-") + "-" + s
	}
	if !ValidName(s) {
		return ""
	}
	return s
}

func example(kind string) string {
	switch kind {
	case "pipeline":
		return "get-started"
	case "step":
		return "get-data"
	case "input", "output":
		return "raw-data"
	case "model":
		return "churn-model"
	case "stage":
		return "production"
	case "stack":
		return "local"
	case "deployment":
		return "fraud-api"
	}
	return "n_estimators"
}

// clipName quotes a name for a message, cut to its first 40 characters.
func clipName(name string) string {
	if utf8.RuneCountInString(name) <= 40 {
		return fmt.Sprintf("%q", name)
	}
	r := []rune(name)
	return fmt.Sprintf("%q…", string(r[:40]))
}

// QuoteKey shows a parameter's key, or a field's of one, where people
// read it: as it is when it is letters, digits, '_' and '-', else quoted
// (a key may hold anything, '.' and line breaks too).
func QuoteKey(k string) string {
	plain := k != ""
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			plain = false
			break
		}
	}
	if plain {
		return k
	}
	b, _ := json.Marshal(k)
	return string(b)
}
