"""`python -m sdplay` is the `sdplay` command."""

from .cli import main

main()
