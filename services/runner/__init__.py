"""tubewatch.runner: run and demo (everything in one process)."""
