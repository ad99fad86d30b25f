"""``skills doctor``: the health of one home, one line per check, each with the fix.

What it looks at, in order: the home directory, the files that must stay private, the
journal (PostgreSQL reachability when configured, then ``journal verify``), the views
against the journal head, the stored artifacts every installed version references, the
runner's cache, the newest checkpoint's age with its anchor file and signing key, and the
versions of Python and the libraries.

Each check ends ``ok``, ``warn`` or ``fail`` and names the *area* a failure is about:
``files`` (the home, permissions, artifacts, the cache: ``skills doctor`` exits 5) or
``journal`` (integrity, drift, reachability: exit 9, which wins over 5). A warning never
changes the exit status. A check that cannot run (an unreadable file, a journal that does
not decode) is itself a failure of its area, never a traceback: the operator gets every
line even on a broken home.

The doctor decides nothing and records nothing. It reads the journal as it is (opened
without creating tables or guards), reads the installed versions from the journal (the
``Skill`` aggregates), not from the views, and never deletes a cache entry or a blob it
finds wrong: it says what to run. (Some opening goes through the code every command uses:
an unusable ``views.db`` is replaced by an empty one, as any read would; a home that group
or others may enter is tightened; with ``--thorough``, over a journal that verified, the
views replay opens the journal as ``index verify`` does. Each check reports what it found
before that.) The checks of stored artifacts and of the cache are in ``doctor_storage.py``.
"""

from __future__ import annotations

import datetime as dt
import inspect
import os
import shlex
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from skill_ledger.adapters.settings import Settings
from skill_ledger.domain.errors import SkillLedgerError

OK, WARN, FAIL = "ok", "warn", "fail"
FILES, JOURNAL = "files", "journal"  # what a failure is about: exit 5 / exit 9
DEFAULT_MAX_CHECKPOINT_AGE_S = 7 * 86400
MAX_LISTED = 5  # problems named in one line; the rest are counted

# Files of the home that hold secrets (a group/other bit fails) or state (group/other may not
# write; reading is a warning: the home itself is 0700).
SECRET_FILES = ("journal-signing-key.pem", "secrets.json", "cache.key")
STATE_FILES = ("journal.db", "views.db", "journal-anchor.json")
SQLITE_SIDE_FILES = ("-wal", "-shm")


class Check(msgspec.Struct, frozen=True):
    id: str
    status: str
    message: str
    fix: str | None = None
    area: str = FILES
    code: str | None = None  # a failure's error code, when the check's id does not say it (FAILURE_CODES)


class Summary(msgspec.Struct, frozen=True):
    ok: int
    warn: int
    fail: int
    failing_area: str | None  # "journal" when any journal check failed, else "files" when any failed


class DoctorReport(msgspec.Struct, frozen=True):
    home: str
    journal: str  # the journal URL without its password
    thorough: bool
    checks: list[Check]
    summary: Summary


def q(path: Path | str) -> str:
    return shlex.quote(str(path))


def diagnose(settings: Settings, *, raw_home: Path, thorough: bool = False,
             max_checkpoint_age_s: int = DEFAULT_MAX_CHECKPOINT_AGE_S,
             now: dt.datetime | None = None) -> DoctorReport:
    """Every check of one home. ``raw_home`` is the home as given (before symlinks are resolved)."""
    from skill_ledger.adapters import doctor_storage as storage

    now = now or dt.datetime.now(dt.timezone.utc)
    checks: list[Check] = []
    home_check = _guarded("home", FILES, lambda: _home(raw_home, settings.home))
    checks.append(home_check)
    if home_check.status != FAIL or not _home_unusable(settings.home):
        checks += _file_checks(settings.home)
        journal_ready = _journal_reachable(settings, checks)
        if journal_ready:
            verified = _guarded("journal.verify", JOURNAL, lambda: _journal_verify(settings, thorough))
            checks.append(verified)
            # A replay of the views opens the journal as every command does (re-creating a dropped
            # guard, for one): only over a journal that verified, which also makes it meaningful.
            replay = thorough and verified.status == OK
            checks += _with_ledger(settings, lambda ledger: [
                _guarded("views", JOURNAL, lambda: _views(ledger, replay)),
                _guarded("blobs", FILES, lambda: storage.blobs_check(ledger, thorough)),
                *_checkpoints(ledger, now, max_checkpoint_age_s),
            ])
        checks.append(_guarded("cache", FILES, lambda: storage.cache_check(settings.home)))
    checks.append(_guarded("versions", FILES, lambda: _versions(settings)))
    return DoctorReport(str(raw_home), redacted_url(settings.journal_url), thorough, checks, _summary(checks))


# The error code a failing check stands for (its exit status follows from cli/errors.py: 5 or 9).
FAILURE_CODES = {"journal": "journal_unavailable", "journal.verify": "journal_tampered", "views": "projection_drift",
                 "checkpoint.age": "journal_tampered", "checkpoint.anchor": "journal_tampered"}
HOME_CHECK_FAILED = "home_check_failed"  # the home, a file's permissions, the cache


def failure(report: DoctorReport) -> SkillLedgerError | None:
    """The error a failing report ends the command with (its details are the whole report): the
    first failing check of the area that decides the exit status; ``None`` when nothing failed."""
    area = report.summary.failing_area
    if area is None:
        return None
    first = next(c for c in report.checks if c.status == FAIL and c.area == area)
    code = first.code or FAILURE_CODES.get(first.id, HOME_CHECK_FAILED)
    return SkillLedgerError(f"{report.summary.fail} check(s) failed; first {first.id}: {first.message}",
                            msgspec.to_builtins(report), code=code)


def _summary(checks: list[Check]) -> Summary:
    failing = [c.area for c in checks if c.status == FAIL]
    area = JOURNAL if JOURNAL in failing else (FILES if failing else None)
    return Summary(sum(c.status == OK for c in checks), sum(c.status == WARN for c in checks), len(failing), area)


def _guarded(check_id: str, area: str, run: Callable[[], Check]) -> Check:
    """The check's result, or a failure that says why it could not run (never a traceback)."""
    try:
        return run()
    except Exception as e:  # noqa: BLE001 - a broken home must give a line, not a traceback
        code = getattr(e, "code", None) if isinstance(getattr(e, "code", None), str) else type(e).__name__
        message = getattr(e, "message", None) or str(e) or type(e).__name__
        if isinstance(e, sqlite3.Error) or type(e).__module__.startswith("eventsourcing"):
            code, message = "journal_unavailable", f"a state database failed: {message}"  # as the CLI says it
        return Check(check_id, FAIL, f"could not be checked: [{code}] {message}", _CANNOT_RUN[area], area,
                     "journal_unavailable" if area == JOURNAL else HOME_CHECK_FAILED)


_CANNOT_RUN = {
    JOURNAL: "skills journal verify shows the full error; restore journal.db from a backup if it cannot be opened",
    FILES: "check the owner and permissions of the path named above (ls -la), then run skills doctor again",
}


def redacted_url(url: str) -> str:
    """A journal URL without its password (``postgresql://user:***@host/db``)."""
    from urllib.parse import urlsplit

    if not url.startswith(("postgresql://", "postgres://")):
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return url.replace(parts.netloc, f"{user}:***@{netloc[-1]}", 1)


# --- the home and its files -------------------------------------------------------------------


def _home_unusable(home: Path) -> bool:
    try:
        return not stat.S_ISDIR(os.stat(home).st_mode) or not os.access(home, os.R_OK | os.X_OK)
    except OSError:
        return True


def _home(raw: Path, home: Path) -> Check:
    create = f"mkdir -m 700 {q(raw)} (or let the first command that writes create it, e.g. skills install)"
    try:
        link = stat.S_ISLNK(os.lstat(raw).st_mode)
        st = os.stat(raw)
    except FileNotFoundError:
        return Check("home", FAIL, f"{raw} does not exist (nothing was installed with this home)", create)
    except NotADirectoryError:
        return Check("home", FAIL, f"{raw} lies below a file, not a directory",
                     "point --home (SKILLS_HOME) at a directory")
    except OSError as e:
        return Check("home", FAIL, f"{raw} cannot be examined: {e.strerror or e}",
                     f"give this user access to {q(raw)} and its parents")
    if not stat.S_ISDIR(st.st_mode):
        return Check("home", FAIL, f"{raw} is a file, not a directory",
                     f"move it away (mv {q(raw)} {q(str(raw) + '.bak')}) or point --home at a directory")
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != os.getuid():
        return Check("home", FAIL, f"{home} is owned by uid {st.st_uid}, not by this user (uid {os.getuid()})",
                     f"run as its owner, or chown -R \"$(id -u)\" {q(home)}")
    if not os.access(home, os.R_OK | os.X_OK):
        return Check("home", FAIL, f"{home} cannot be read by this user (mode {mode:04o})", f"chmod 700 {q(home)}")
    if mode & 0o077:
        return Check("home", FAIL, f"{home} may be entered by group or others (mode {mode:04o})",
                     f"chmod 700 {q(home)}")
    if link:
        return Check("home", WARN, f"{raw} is a symbolic link to {home}: whoever can change the link can swap the "
                     "home", f"use the real directory: --home {q(home)}")
    if mode & 0o700 != 0o700 or not os.access(home, os.W_OK):
        return Check("home", WARN, f"{home} is read-only (mode {mode:04o}): reads work, commands that write fail",
                     f"chmod 700 {q(home)} if this is not an evidence copy")
    return Check("home", OK, f"{home} (mode 0700, owned by this user)")


def _file_checks(home: Path) -> list[Check]:
    """One line per private file present; a database's line covers its -wal and -shm files."""
    out = []
    for name in (*STATE_FILES[:2], *SECRET_FILES, STATE_FILES[2]):
        names = [name, *(name + s for s in SQLITE_SIDE_FILES)] if name.endswith(".db") else [name]
        found = [each for each in names if os.path.lexists(home / each)]
        if not found:
            continue
        secret = name in SECRET_FILES
        results = [_guarded(f"file:{name}", FILES, lambda each=each: _file(home / each, secret)) for each in found]
        worst = max(results, key=lambda c: _SEVERITY[c.status])
        if worst.status != OK and len(found) > 1 and (worst.fix or "").startswith("chmod 600 "):
            worst = msgspec.structs.replace(worst, fix=f"chmod 600 {q(home / name)}*")  # the side files too
        out.append(msgspec.structs.replace(worst, id=f"file:{name}"))
    return out


_SEVERITY = {OK: 0, WARN: 1, FAIL: 2}


def _file(path: Path, secret: bool) -> Check:
    cid = f"file:{path.name}"
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return Check(cid, FAIL, f"{path} is a symbolic link (to {os.readlink(path)}); it must be a regular file",
                     f"cp --remove-destination \"$(readlink -f {q(path)})\" {q(path)} && chmod 600 {q(path)}")
    if not stat.S_ISREG(st.st_mode):
        from skill_ledger.adapters.storage.blobs import file_kind

        return Check(cid, FAIL, f"{path} is {file_kind(st.st_mode)}, not a regular file",
                     f"move it away (mv {q(path)} {q(str(path) + '.bak')}) and restore the file from a backup")
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != os.getuid():
        return Check(cid, FAIL, f"{path} is owned by uid {st.st_uid}, not by this user",
                     f"chown \"$(id -u)\" {q(path)}")
    if not os.access(path, os.R_OK):
        return Check(cid, FAIL, f"{path} cannot be read by this user (mode {mode:04o})", f"chmod 600 {q(path)}")
    if mode & (0o077 if secret else 0o022):
        what = "holds a secret and" if secret else "is"
        return Check(cid, FAIL, f"{path} {what} accessible to group or others (mode {mode:04o})",
                     f"chmod 600 {q(path)}")
    if mode & 0o077:
        return Check(cid, WARN, f"{path} is readable by group or others (mode {mode:04o}; the home is private)",
                     f"chmod 600 {q(path)}")
    return Check(cid, OK, f"{path.name} (mode {mode:04o}, owned by this user)")


# --- the journal ------------------------------------------------------------------------------


def _journal_reachable(settings: Settings, checks: list[Check]) -> bool:
    """Appends whether the journal can be opened and read; whether the journal checks can run."""
    if settings.journal_is_sqlite and not os.path.lexists(settings.journal_path):
        checks.append(Check("journal", OK, f"no journal yet at {settings.journal_path} (nothing recorded)", None,
                            JOURNAL))
        return False
    check = _guarded("journal", JOURNAL, lambda: _open_journal(settings))
    checks.append(check)
    return check.status == OK


def _open_journal(settings: Settings) -> Check:
    from skill_ledger.adapters.journal.sqlite import open_journal
    from skill_ledger.domain.errors import SkillLedgerError

    url, shown = settings.journal_url, redacted_url(settings.journal_url)
    postgres = not settings.journal_is_sqlite
    if postgres and "connect_timeout=" not in url:  # an unreachable host answers within 5 s
        url += ("&" if "?" in url else "?") + "connect_timeout=5"
    try:
        app = open_journal(url, create=False)
    except SkillLedgerError as e:
        if not postgres:
            raise
        return Check("journal", FAIL, f"{shown} is not reachable: {_scrub(e.message, settings.journal_url)}",
                     "check that the server runs and accepts this user (pg_isready -h HOST -p PORT), and the URL's "
                     "database, user and password (or PGPASSWORD / ~/.pgpass)", JOURNAL)
    try:
        head = app.recorder.max_notification_id() or 0
    finally:
        app.close()
    return Check("journal", OK, f"{shown} {'is reachable' if postgres else 'opens'}, head at position {head}",
                 None, JOURNAL)


def _scrub(text: str, url: str) -> str:
    from urllib.parse import unquote, urlsplit

    password = urlsplit(url).password
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(secret, "***")  # type: ignore[arg-type]
    return text


def verify_journal_for_doctor(settings: Settings, *, thorough: bool) -> tuple[Any, str]:
    """The one call of the journal verifier: (report, mode). A fast mode (only what follows the
    newest checkpoint) is used when the verifier offers it and ``thorough`` is not asked for."""
    from skill_ledger.adapters.journal import verify

    fn = verify.verify_settings_journal
    if not thorough and "since_checkpoint" in inspect.signature(fn).parameters:
        return fn(settings, since_checkpoint=True), "since the newest checkpoint"
    return fn(settings), "every event"


def _journal_verify(settings: Settings, thorough: bool) -> Check:
    report, mode = verify_journal_for_doctor(settings, thorough=thorough)
    if report.ok:
        return Check("journal.verify", OK, f"{report.events} events in {report.streams} streams verified ({mode}), "
                     f"{report.checkpoints} checkpoint(s), append-only guard present", None, JOURNAL)
    first = report.first_problem() or report.problems[0]
    more = len(report.problems) - 1
    return Check("journal.verify", FAIL,
                 f"journal damaged: first bad position {report.first_bad_position}: {first.code}: {first.message}"
                 + (f" (and {more} more problem(s))" if more else ""),
                 "skills journal verify (lists every problem); keep this journal for inspection and restore "
                 "journal.db from a backup taken before that position", JOURNAL)


def _views(ledger: Any, replay: bool) -> Check:
    """Positions against the head (what ``views_status`` reports, read here through the doctor's
    own ledger: the journal opened as it is, never re-creating tables or guards); with
    ``replay``, ``verify_views`` (which opens the journal as ``index verify`` does)."""
    from skill_ledger.adapters.readmodel.verify import ProjectionPosition, verify_views
    from skill_ledger.adapters.readmodel.views import open_store

    settings = ledger.settings
    path = settings.views_path
    if not os.path.lexists(path):
        return Check("views", WARN, f"{path.name} is missing; it is rebuilt from the journal on the next read",
                     "skills index rebuild", JOURNAL)
    notices: list[str] = []
    head = ledger.head()
    store = open_store(path, notify=notices.append)
    try:
        projections = [ProjectionPosition(n, p, head - p) for n, p in store.positions().items()]
    finally:
        store.close()
    ahead = [p for p in projections if p.behind < 0]
    if ahead:
        p = ahead[0]
        return Check("views", FAIL, f"{path.name} is ahead of the journal ({p.name} at position {p.position}, "
                     f"journal head {head}): events were cut off the journal's end, or the views belong to "
                     "another journal", f"skills journal verify; keep {q(path)} for inspection and restore journal.db "
                     "from a backup", JOURNAL)
    if notices:
        return Check("views", WARN, f"{path.name} was unusable and has been replaced by an empty one: {notices[0]}",
                     "skills index rebuild", JOURNAL)
    behind = max((p.behind for p in projections), default=0)
    lag = f"{behind} event(s) behind the journal head {head} (caught up on the next read)" if behind \
        else f"at the journal head {head}"
    if not replay:
        return Check("views", OK, f"{len(projections)} projections {lag}", None, JOURNAL)
    report = verify_views(settings, notify=notices.append)
    if report.ok:
        return Check("views", OK, f"{len(projections)} projections equal a fresh replay of the journal",
                     None, JOURNAL)
    d = report.differences[0]
    return Check("views", FAIL, f"the views differ from a replay of the journal ({len(report.differences)} "
                 f"difference(s); first in table {d.table} at {d.key})", "skills index rebuild", JOURNAL)


def _with_ledger(settings: Settings, run: Callable[[Any], list[Check]]) -> list[Check]:
    from skill_ledger.adapters.journal.sqlite import open_journal
    from skill_ledger.adapters.usecases.unit_of_work import Ledger

    try:
        ledger = Ledger(settings, app=open_journal(settings.journal_url, create=False))
    except Exception as e:  # noqa: BLE001
        failed = e
        return [_guarded("journal", JOURNAL, lambda: _raise(failed))]
    try:
        return run(ledger)
    finally:
        ledger.close()


def _raise(e: Exception) -> Check:
    raise e


# --- checkpoints ------------------------------------------------------------------------------


def _checkpoints(ledger: Any, now: dt.datetime, max_age_s: int) -> list[Check]:
    return [_guarded("checkpoint.age", JOURNAL, lambda: _checkpoint_age(ledger, now, max_age_s)),
            _guarded("checkpoint.anchor", JOURNAL, lambda: _checkpoint_anchor(ledger))]


def _newest_checkpoint(ledger: Any) -> tuple[int, Any]:
    """(number of checkpoint events, the newest one's stored row or None)."""
    from skill_ledger.adapters.journal.sqlite import iter_rows
    from skill_ledger.domain.events import topics_for_kinds

    count, newest = 0, None
    for row in iter_rows(ledger.app, topics=topics_for_kinds(["journal.checkpoint"])):
        count, newest = count + 1, row
    return count, newest


def _checkpoint_age(ledger: Any, now: dt.datetime, max_age_s: int) -> Check:
    from skill_ledger.domain.codec import recorded_at

    head = ledger.head()
    count, newest = _newest_checkpoint(ledger)
    record = "skills journal checkpoint (daily, e.g. from a systemd timer)"
    if newest is None:
        if head == 0:
            return Check("checkpoint.age", OK, "the journal is empty: nothing to checkpoint", None, JOURNAL)
        return Check("checkpoint.age", WARN, f"no checkpoint over the {head} events: events cut off the journal's end "
                     "would go unnoticed", record, JOURNAL)
    at = dt.datetime.fromisoformat(recorded_at(msgspec.json.decode(newest.state)["timestamp"]))
    age = (now - at).total_seconds()
    since = head - newest.position
    text = (f"newest of {count} checkpoint(s) at position {newest.position}, {_duration(age)} old, "
            f"{since} event(s) since")
    if age > max_age_s:
        return Check("checkpoint.age", WARN, f"{text}: older than {_duration(max_age_s)}", record, JOURNAL)
    return Check("checkpoint.age", OK, text, None, JOURNAL)


def _checkpoint_anchor(ledger: Any) -> Check:
    from skill_ledger.adapters.usecases.checkpoints import JOURNAL_ANCHOR_FILE, JOURNAL_KEY_FILE

    home = ledger.settings.home
    count, _newest = _newest_checkpoint(ledger)
    if not count:
        return Check("checkpoint.anchor", OK, "no checkpoints yet, so no anchor file is needed", None, JOURNAL)
    missing = [name for name in (JOURNAL_ANCHOR_FILE, JOURNAL_KEY_FILE) if not os.path.lexists(home / name)]
    if not missing:
        return Check("checkpoint.anchor", OK, f"{JOURNAL_ANCHOR_FILE} and {JOURNAL_KEY_FILE} are present",
                     None, JOURNAL)
    why = {JOURNAL_ANCHOR_FILE: "events cut off after the newest checkpoint cannot be detected",
           JOURNAL_KEY_FILE: "a checkpoint re-signed with another key cannot be told from this home's own"}
    return Check("checkpoint.anchor", FAIL,
                 f"the journal has {count} checkpoint(s) but {' and '.join(missing)} "
                 f"{'is' if len(missing) == 1 else 'are'} missing: " + "; ".join(why[m] for m in missing),
                 f"restore {' and '.join(q(home / m) for m in missing)} from a backup; only if the journal is known to "
                 "be intact, skills journal checkpoint starts a new anchor (and key)", JOURNAL)


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# --- versions ---------------------------------------------------------------------------------


def _versions(settings: Settings) -> Check:
    from skill_ledger.versions import distribution_version, version_info

    info = version_info()
    libraries = dict(info["libraries"])
    if not settings.journal_is_sqlite:
        libraries["psycopg"] = distribution_version("psycopg")
    parts = [f"skill-ledger {info['engine_version']}", f"Python {info['python']}",
             *(f"{name} {version or 'NOT INSTALLED'}" for name, version in libraries.items())]
    missing = [name for name, version in libraries.items() if version is None]
    if missing:
        return Check("versions", WARN, ", ".join(parts),
                     f"reinstall skill-ledger in this environment (pip install 'skill-ledger[postgres]' for "
                     f"a PostgreSQL journal); missing: {', '.join(missing)}")
    return Check("versions", OK, ", ".join(parts))
