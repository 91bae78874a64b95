"""Run the agent-il command line from a checkout: ``python cli.py --help``."""

from agent_il.cli import main

if __name__ == "__main__":
    main()
