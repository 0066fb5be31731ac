"""Allow ``python -m digestcli``."""

from digestcli.cli import main

main()
