package plan

// Signing says how apply would sign what a plan makes on its stack. Plan
// cannot find out itself (it reads no keys): the caller does, without
// decrypting anything.
type Signing struct {
	// Unsigned, when not "", says why the stack signs nothing: its
	// signer opts out (signer: flavor: "none"). Every model version the
	// plan makes and every stage it moves is marked with it.
	Unsigned string
	// Refused, when not "", says why apply cannot sign here, and what to
	// declare instead. Every model version the plan would make and every
	// stage it would move is refused with it: an immutable version made
	// unsigned would stay unsigned.
	Refused string
}

// mark refuses or marks the model changes that make a version or move a
// stage. A deleted stage and a repaired tag point at nothing new.
func (sg Signing) mark(models []*ModelChange) {
	for _, c := range models {
		if c.Action == Delete || c.Action == Repair {
			continue
		}
		switch {
		case sg.Refused != "":
			if c.Refused == "" {
				c.Refused = sg.Refused
			}
		case sg.Unsigned != "":
			c.Unsigned = sg.Unsigned
		}
	}
}
