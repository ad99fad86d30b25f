"""The corpus of real WebAssembly modules (issues 10 and 17): see build.py and
docs/real-world-modules.md."""
