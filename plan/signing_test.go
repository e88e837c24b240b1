package plan

import "testing"

func TestSigningMark(t *testing.T) {
	changes := func() []*ModelChange {
		return []*ModelChange{
			{Model: "m", Version: "2", Action: Create, From: "p.s.o"},
			{Model: "m", Version: "2", Stage: "prod", Action: Run, From: "1"},
			{Model: "m", Version: "1", Stage: "old", Action: Delete},
			{Model: "m", Version: "1", Stage: "dev", Action: Repair},
			{Model: "m", Version: "3", Stage: "canary", Action: Create, Refused: "gate failed"},
		}
	}
	for _, tc := range []struct {
		name              string
		sg                Signing
		refused, unsigned []string
	}{
		{"signs", Signing{}, []string{"", "", "", "", "gate failed"}, []string{"", "", "", "", ""}},
		{"none", Signing{Unsigned: "stack s: signer none"},
			[]string{"", "", "", "", "gate failed"},
			[]string{"stack s: signer none", "stack s: signer none", "", "", "stack s: signer none"}},
		{"no key", Signing{Refused: "no key"},
			[]string{"no key", "no key", "", "", "gate failed"},
			[]string{"", "", "", "", ""}},
	} {
		cs := changes()
		tc.sg.mark(cs)
		for i, c := range cs {
			if c.Refused != tc.refused[i] || c.Unsigned != tc.unsigned[i] {
				t.Errorf("%s: change %d (%s %s): refused %q, unsigned %q; want %q, %q", tc.name, i, c.Action, c.Stage, c.Refused, c.Unsigned, tc.refused[i], tc.unsigned[i])
			}
		}
	}
}
