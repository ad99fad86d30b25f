"""What a ``postgresql://USER:PASSWORD@HOST:PORT/DB[?schema=S&connect_timeout=N&host=SOCKETDIR]``
journal URL names (``postgres://`` is an alias). Anything else libpq knows (TLS and so on) comes
from its ``PG*`` environment variables. The password never appears in a message."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, quote, unquote, urlsplit

from skill_ledger.domain.errors import ConfigurationError

QUERY_PARAMETERS = ("schema", "connect_timeout", "host")
DEFAULT_CONNECT_TIMEOUT_S = 10


class PgTarget:
    """What a ``postgresql://`` URL names. ``str()`` and ``display`` never show the password."""

    def __init__(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port or 5432
        except ValueError:
            raise ConfigurationError("invalid PostgreSQL journal URL: bad host or port",
                                     {"journal": _without_userinfo(url)}) from None
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - set(QUERY_PARAMETERS))
        if unknown:
            raise ConfigurationError(
                f"unsupported PostgreSQL journal URL parameter {unknown[0]!r} (supported: {', '.join(QUERY_PARAMETERS)}; "
                "for TLS and other connection settings use libpq's PG* environment variables)",
                {"journal": _without_userinfo(url)})
        self.user = unquote(parts.username or "") or _login()
        self.password = unquote(parts.password or "")
        self.host = query.get("host", [""])[-1] or (parts.hostname or "")
        self.port = port
        self.dbname = unquote(parts.path.lstrip("/")) or self.user
        self.schema = query.get("schema", [""])[-1] or "public"
        timeout = query.get("connect_timeout", [str(DEFAULT_CONNECT_TIMEOUT_S)])[-1]
        if not timeout.isdigit() or int(timeout) < 1:
            raise ConfigurationError("connect_timeout in a PostgreSQL journal URL must be a whole number of seconds",
                                     {"journal": self.display})
        self.connect_timeout = int(timeout)

    @property
    def display(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        schema = f"?schema={self.schema}" if self.schema != "public" else ""
        return f"postgresql://{quote(self.user, safe='')}@{host}:{self.port}/{quote(self.dbname, safe='')}{schema}"

    def __str__(self) -> str:
        return self.display

    def __repr__(self) -> str:
        return f"PgTarget({self.display})"

    def redact(self, text: str) -> str:
        """``text`` with the password (raw or percent-encoded) blanked out."""
        if self.password:
            for form in {self.password, quote(self.password, safe=""), quote(self.password)}:
                text = text.replace(form, "***")
        return text


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _without_userinfo(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"
