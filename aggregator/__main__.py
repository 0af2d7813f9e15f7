"""``python -m aggregator``: the same command as the `aggregator` script."""

from aggregator.cli import main

main()
