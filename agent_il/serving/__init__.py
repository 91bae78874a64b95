"""Serving the tool surface to systems over HTTP: bearer tokens with scopes (:mod:`.tokens`), the
REST API (:mod:`.rest`), what every HTTP server shares (:mod:`.guard`: Host/Origin allow-list, body
limit, rate limit; :mod:`.metrics`; :mod:`.logs`) and running one (:mod:`.runner`). Above
:mod:`agent_il.tools`, below the CLI; the MCP adapter reuses it."""
