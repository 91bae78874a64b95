"""The commands of ``agent-il``, one module per area; each module's ``register(app)`` adds its
commands to the root app. They import agent_il.cli.context and agent_il.cli.render, never the app."""
