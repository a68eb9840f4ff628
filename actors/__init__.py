"""Everything that runs: the supervision tree and every supervised actor, and the store they write to.

This package's `__init__` imports nothing, so that `actors.store` can be used by short-lived commands
(`corral signal emit`) without loading pykka.
"""
