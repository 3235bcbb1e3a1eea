"""``python -m api`` runs the ``attune`` CLI."""

from api.cli import main

main()
