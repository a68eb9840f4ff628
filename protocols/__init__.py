"""Everything corral agrees on: messages, the task lifecycle, file formats, wire protocols, the config schema.

Nothing in here imports `actors` or `frontends`, starts a thread or touches a file it was not handed.
"""
