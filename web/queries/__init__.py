"""The REST layer's reads and writes (synchronous database work, run through
AppState.run) and the JSON they answer. No Starlette here: the CLI's local backend
(cli/backends.py) answers through them too, so `mtmon` prints the same with or without
--api."""
