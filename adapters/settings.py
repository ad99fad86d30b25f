"""Where state lives and who is acting: resolved once per command from flags, then the
environment, then defaults (cli.md "Global behaviour")."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from skill_ledger.domain.errors import ConfigurationError


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    home: Path
    journal_url: str  # "sqlite:///abs/path" or "postgresql://..."
    actor: str
    host: str
    command: str = ""

    @property
    def journal_is_sqlite(self) -> bool:
        return self.journal_url.startswith("sqlite:")

    @property
    def journal_path(self) -> Path:
        return Path(self.journal_url[len("sqlite://") :])

    @property
    def views_path(self) -> Path:
        return self.home / "views.db"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def secrets_path(self) -> Path:
        return self.home / "secrets.json"


def default_home(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("SKILLS_HOME"):
        return Path(env["SKILLS_HOME"]).expanduser()
    xdg = env.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "skill-ledger"


def default_actor() -> str:
    import getpass  # only when no --actor or SKILLS_ACTOR is given

    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = str(os.getuid())
    return f"user:{login}"


def normalise_journal_url(value: str) -> str:
    """A bare path, ``sqlite:///path`` or ``postgresql://...`` (``postgres://`` is an alias)."""
    if value.startswith("postgresql://"):
        require_postgres_support()
        return value
    if value.startswith("postgres://"):
        require_postgres_support()
        return "postgresql://" + value[len("postgres://") :]
    if value.startswith("sqlite:///"):
        return "sqlite://" + str(Path(value[len("sqlite://") :]).resolve())
    if "://" in value:
        raise ConfigurationError(
            f"unsupported journal URL scheme in {value.split('://', 1)[0]!r}: use a path, sqlite:///PATH or postgresql://...",
        )
    return "sqlite://" + str(Path(value).expanduser().resolve())


def require_postgres_support() -> None:
    """A PostgreSQL journal needs psycopg and its pool: the ``postgres`` extra. Without them, say
    which extra to install instead of failing later with an ImportError."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as e:
        raise ConfigurationError(
            "a postgresql:// journal needs the PostgreSQL support of skill-ledger, which is not installed: "
            "pip install 'skill-ledger[postgres]'", {"extra": "postgres", "missing": e.name or str(e)},
        ) from None


def resolve(
    *, home: str | None, journal: str | None, actor: str | None, command: str = "", env: dict[str, str] | None = None
) -> Settings:
    env = dict(os.environ if env is None else env)
    home_path = Path(home).expanduser() if home else default_home(env)
    home_path = home_path.resolve()
    journal_value = journal or env.get("SKILLS_JOURNAL") or str(home_path / "journal.db")
    actor_value = actor or env.get("SKILLS_ACTOR") or default_actor()
    if not actor_value.strip():
        raise ConfigurationError("--actor must not be empty")
    return Settings(
        home=home_path,
        journal_url=normalise_journal_url(journal_value),
        actor=actor_value,
        host=os.uname().nodename,  # what socket.gethostname() returns, without importing socket
        command=command,
    )
