"""The bundled example skills (package data): ``hello/`` is what ``skills demo`` builds."""
