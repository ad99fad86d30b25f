"""``python -m skill_ledger``: the ``skills`` command."""

from skill_ledger.cli.entry import main

main()
