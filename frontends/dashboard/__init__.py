"""The terminal dashboard (blessed): a client of the daemon's control API and event stream, never of the
store."""
