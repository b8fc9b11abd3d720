"""``python -m slmctl``."""

from slmctl.cli import main

main()
