"""``python -m skill_ledger``: the ``skills`` command."""

from skill_ledger.cli.main import main

main()
