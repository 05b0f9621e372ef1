"""``python -m cardkit``: the same as the ``cardkit`` command."""

from cardkit.cli import main

main()
