"""``python -m optimizer`` is the ``chipmix`` command."""

from optimizer.surfaces.cli import main

main()
