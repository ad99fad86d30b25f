"""Where state lives and who is acting: resolved once per command from flags, then the
environment, then defaults (cli.md "Global behaviour").

Who is acting is recorded twice on every event: the principal the operator declares
(``--actor``, ``SKILLS_ACTOR``), and what the machine says: the host, and the operating-system
account the process runs as (its effective uid and that uid's login name, from the password
database, never from ``$USER``). A home that cannot be one (a file, or below a file) is a
``configuration_error`` here, before any command touches it."""

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
    os_user: str | None = None  # the effective uid's login name (its number when it has none)
    os_uid: int | None = None

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


def os_account() -> tuple[str, int]:
    """(login name, uid) of the account this process runs as (effective uid)."""
    import pwd

    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name, uid
    except KeyError:  # a uid without a password-database entry (containers)
        return str(uid), uid


def check_home(home: Path, source: str) -> None:
    """``home`` is a directory, or can become one: no part of it is an existing non-directory."""
    for part in (home, *home.parents):
        try:
            is_dir = part.is_dir()
            exists = is_dir or part.exists()
        except OSError as e:  # e.g. a component we may not search
            raise ConfigurationError(f"the home {home} ({source}) cannot be used: {e.strerror or e}",
                                     {"home": str(home), "source": source}) from None
        if exists and not is_dir:
            what = "is a file" if part == home else f"is below {part}, which is a file"
            raise ConfigurationError(f"the home {home} ({source}) {what}, not a directory: "
                                     "point --home or SKILLS_HOME at a directory",
                                     {"home": str(home), "source": source, "not_a_directory": str(part)})
        if exists:
            return


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
    *, home: str | None, journal: str | None, actor: str | None, command: str = "", env: dict[str, str] | None = None,
    home_must_be_usable: bool = True,
) -> Settings:
    """The settings of one command. ``home_must_be_usable=False`` (``skills doctor``) accepts a
    home that is a file or lies below one, so that the doctor can report it as a failed check."""
    env = dict(os.environ if env is None else env)
    home_path = Path(home).expanduser() if home else default_home(env)
    home_path = home_path.resolve()
    if home_must_be_usable:
        check_home(home_path, "--home" if home else "SKILLS_HOME" if env.get("SKILLS_HOME") else "the default home")
    journal_value = journal or env.get("SKILLS_JOURNAL") or str(home_path / "journal.db")
    actor_value = actor or env.get("SKILLS_ACTOR") or default_actor()
    if not actor_value.strip():
        raise ConfigurationError("--actor must not be empty")
    os_user, os_uid = os_account()
    return Settings(
        home=home_path,
        journal_url=normalise_journal_url(journal_value),
        actor=actor_value,
        host=os.uname().nodename,  # what socket.gethostname() returns, without importing socket
        command=command,
        os_user=os_user,
        os_uid=os_uid,
    )
