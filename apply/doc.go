// Package apply carries out a plan: it runs the steps that must run,
// stores and signs their outputs, makes the plan's model changes, and
// records the runs on the state ref.
//
// It owns, once for every orchestrator:
//
//   - the executor (executor.go): when each step is submitted, the -j
//     limit, skipping the steps after a failed one, cancelling on Ctrl-C,
//     the early cache cut-off, cache keys, signing (sign.go) and the
//     journal that keeps finished steps across a crash;
//   - recording (record.go): the runs, their cache entries and the
//     pipelines' baselines in one state commit; a detached apply's
//     submission and its collection later (detach.go, Resume);
//   - the environment a step inherits (env.go), and the step runner
//     (step.go, process.go) that runs a step's command with its retries
//     and stores what it wrote, here or on a node (remote.go, zen
//     step-run);
//   - model versions and stages (models.go).
//
// Where steps run is an Orchestrator's (orchestrator.go): local (local.go,
// processes of this zen) and slurm (slurm.go, a job each, through the
// commands in slurmcmd.go).
package apply
