"""skill-ledger: install, trust, audit and run signed WebAssembly skills, every decision an
event in an append-only journal.

This is the one import package a wheel installs. In the repository its sub-packages are the
top-level folders ``domain/``, ``adapters/``, ``projections/``, ``cli/`` and ``examples/``,
mapped into ``skill_ledger`` at build time (``package-dir`` in ``pyproject.toml``).
"""

__version__ = "0.2.0"
