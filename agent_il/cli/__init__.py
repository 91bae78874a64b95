"""The ``agent-il`` command line. Importing it loads only Typer; each command imports the
learning stack (torch, sentence-transformers, chromadb) when it runs."""

from agent_il.cli.app import app, main

__all__ = ["app", "main"]
