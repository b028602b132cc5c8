"""The language server: `storyc lsp` (server.py), what it knows of a script (analysis.py),
completion (complete.py) and hover (describe.py)."""
