"""``python -m cardkit``: the same as the ``cardkit`` command (library and agent commands).

This is the application's entry point, not a library module: it may start the agent's CLI.
"""

from agent.cli import main

main()
