"""The tool surface agent-framework adapters wrap, and what they need to register and test:

- :mod:`agent_il.tools.models`: the limits, the pydantic models of the tools' arguments and results;
- :mod:`agent_il.tools.surface`: the tools (``SPECS``) and ``IntentTools``, which runs them;
- :mod:`agent_il.tools.adapters`: ``Adapter``, what a distribution registers, and their discovery
  (cheap to import: ``agent-il plugins`` lists adapters without loading pydantic or numpy);
- :mod:`agent_il.tools.checks`: ``check_adapter``, the contract every adapter's tests run (the calls
  it makes are in :mod:`agent_il.tools.cases`).
"""
