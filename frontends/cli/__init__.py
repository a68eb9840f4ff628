"""The `corral` command line. `main.main` is the console script; this package's `__init__` imports nothing."""
