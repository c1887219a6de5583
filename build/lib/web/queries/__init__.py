"""Synchronous database reads and writes of the REST layer (run through AppState.run)."""
