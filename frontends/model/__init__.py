"""`corral-model`: a scripted local model server, so the real agent CLIs (Claude Code, Codex) do real work
offline — their screens, permission prompts, tool execution and SDK protocols run for real; only the paid
model API is replaced.

    corral-model --port 0 --scenario lifecycle      # prints http://127.0.0.1:PORT, then serves
    ANTHROPIC_BASE_URL=http://127.0.0.1:PORT ANTHROPIC_API_KEY=any claude -p "…" --allowedTools "Bash Write"

It answers the Anthropic Messages API (`anthropic`) and the OpenAI Responses API (`openai`) from a scenario
(`scenario`: per role or per prompt, a list of turns, each a text and/or a tool call), or from the built-in
`lifecycle` scenario that plays every corral role from its prompt as corral-sim does. Which turn a request
gets is decided from the conversation the client sends (`conversation`), never from server state, so a
retried request gets the same answer. Faults (`faults`) are injected per turn or globally. docs/model.md is
the manual.

Modules, one job each: `main` (argv), `server` (aiohttp routes, the request log), `conversation` (the
API-neutral view of a request, pure), `scenario` (the file format), `script` (which turn a conversation is
at, pure), `roles` (which corral role a prompt is for, pure), `lifecycle` (the built-in scenario),
`anthropic` and `openai` (each API's request reading and reply encoding, pure), `sse` (event encoding and
the streamed reply with its faults), `side` (the side requests the CLIs make), `faults`, `requestlog`.
"""
