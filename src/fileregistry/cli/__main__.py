"""``python -m fileregistry.cli``."""

from fileregistry.cli import main

main()
