"""Everything a person or another program touches: the CLI, the dashboard, the web admin, the daemon's API."""
