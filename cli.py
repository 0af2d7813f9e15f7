"""The `aggregator` command, from the top of the checkout: ``python cli.py ...``.

The commands live in the package, in aggregator/cli/; this file only runs them.
"""

from aggregator.cli import cli, main

__all__ = ["cli", "main"]

if __name__ == "__main__":
    main()
