"""`corral-sim`: the simulated coding agent, corral's stand-in for claude, codex and the rest in the demo and
the tests, and the way tests inject faults.

    corral-sim                       an interactive, claude-like screen (trust screen, `> ` prompt, spinner,
                                     permission prompts) in a terminal: a tmux pane or a PTY
    corral-sim app-server            codex's `app-server` JSON-RPC on stdio
    corral-sim -p --input-format stream-json --output-format stream-json --verbose
                                     claude's print mode with stream-json in and out

All three do the same work (`behaviour.agent`): a prompt is either plain text (a small real change: append to
`sim/<task>.txt`, `git commit`) or directives, one a line (`/edit`, `/commit`, `/signal`, `/crash`, `/hang`…,
the table is `directives.DIRECTIVES`). An agent corral starts in a role (`CORRAL_AGENT_TYPE`) plays it
(`behaviour.roles`): the planner writes a plan, a wave coder commits its own task, the reviewer approves.
Faults are real: a crash exits, a hang stops reading and writing, a flood writes megabytes. docs/sim.md is
the manual.

Modules, one job each: `main` (argv), `options`, `directives` (prompt → steps, pure), `scenario` (steps from a
file), `terminal` (tty mode and keys), `screen` (the interactive mode), `behaviour.agent` (what a prompt
does), `behaviour.roles` (what a role does with corral's prompt), `behaviour.workspace` (files, git,
`corral signal emit`), `faults`, `state` (sessions to resume), `jsonlines` (the SDK transport), `sdk_codex`,
`sdk_claude`. This package imports only the standard library.
"""
