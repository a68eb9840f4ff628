"""Agent runtimes: one interface, three supervised actors (tmux, PTY, SDK). See docs/runtimes.md."""
