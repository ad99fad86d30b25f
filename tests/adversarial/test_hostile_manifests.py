"""Hostile manifests: untrusted bytes cost little before anything is trusted.

A publisher controls ``skill.toml`` completely, and it is parsed before any signature or
trust decision. The attacks of issue 10 (16,000 dotted key parts in a 1.4 KB artifact,
16k keys in a tool table, a 1.5M-element array, 60k tools, a 5 MB skill id) and a
generated corpus are each signed into a real artifact and inspected in a child process
that imports only what ``inspect_artifact`` needs; the child's own CPU time and peak RSS,
read with ``os.wait4``, must stay under ``CPU_BUDGET_S`` and ``RSS_BUDGET_MB``, startup
included. CPU time (not wall time) does not grow on a loaded machine: this is a security
bound, not a benchmark. Then every manifest limit is tried at its cap and just over it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skill_ledger.domain.artifact import build_artifact, inspect_artifact, sha256_hex
from skill_ledger.domain.constants import (
    MANIFEST_ENTRY,
    MAX_EVENT_TEXT_BYTES,
    MAX_MANIFEST_ARRAY_ITEMS,
    MAX_MANIFEST_BYTES,
    MAX_MANIFEST_ID_CHARS,
    MAX_MANIFEST_KEY_PARTS,
    MAX_MANIFEST_KEYS,
    MAX_MANIFEST_NESTING,
    MAX_MANIFEST_STRING_CHARS,
    MAX_MANIFEST_TOOLS,
    PROVENANCE_ENTRY,
    SBOM_ENTRY,
    SIGNATURE_ENTRY,
)
from skill_ledger.domain.errors import ArtifactEntryTooLarge, ManifestLimitExceeded, SkillLedgerError
from skill_ledger.domain.manifest import parse_manifest
from skill_ledger.domain.signing import payload_sha256, sign_payload
from skill_ledger.domain.ziparchive import encode_archive

CPU_BUDGET_S = 1.0
RSS_BUDGET_MB = 200
SEED = bytes([5]) * 32
SBOM = b'{"bomFormat":"CycloneDX","specVersion":"1.6"}'
PROVENANCE = b'{"builder":{"id":"tests"},"subject":[{"name":"m"}]}'
MODULE = b"\x00asm\x01\x00\x00\x00"
ROOT = Path(__file__).resolve().parents[2]

HEAD = """manifest_version = 2
skill_id = "{skill_id}"
name = "Hostile"
version = "1.0.0"
publisher = "acme"

[compat]
required_protocol_major = 1
min_palyra_version = "0.1.0"
"""
TOOL = """
[[entrypoints.tools]]
id = "{tool_id}"
name = "t"
description = "{description}"
input_schema = {{ type = "object" }}
output_schema = {{ type = "object" }}
"""


def manifest(*, skill_id: str = "acme.hostile", tools: int = 1, tool_id: str = "acme.t{i}",
             description: str = "d", body: str = "") -> str:
    """A valid manifest (before its integrity list) with ``body`` appended after the tools."""
    text = HEAD.format(skill_id=skill_id)
    for i in range(tools):
        text += TOOL.format(tool_id=tool_id.format(i=i), description=description)
    return text + body


def integrity_section() -> str:
    files = {SBOM_ENTRY: SBOM, PROVENANCE_ENTRY: PROVENANCE, "modules/m.wasm": MODULE}
    return "".join(f'\n[[integrity.files]]\npath = "{p}"\nsha256 = "{sha256_hex(d)}"\n' for p, d in sorted(files.items()))


def forge(text: str, *, integrity: bool = True, pad_to: int | None = None) -> bytes:
    """A signed artifact whose ``skill.toml`` is exactly ``text`` (plus its integrity list, and a
    comment padding it to ``pad_to`` bytes): nothing here parses or validates the manifest."""
    if integrity:
        text += integrity_section()
    if pad_to is not None:
        missing = pad_to - len(text.encode()) - 2
        assert missing >= 0, missing
        text += "#" + "p" * missing + "\n"
    entries = {MANIFEST_ENTRY: text.encode(), SBOM_ENTRY: SBOM, PROVENANCE_ENTRY: PROVENANCE,
               "modules/m.wasm": MODULE}
    envelope = sign_payload(SEED, payload_sha256(entries), "acme", 0)
    entries[SIGNATURE_ENTRY] = envelope.to_json_bytes()
    return encode_archive(entries)


# --- the child: inspect one artifact, measured from outside ---------------------------------

CHILD = """
import sys
from skill_ledger.domain.artifact import inspect_artifact
from skill_ledger.domain.errors import SkillLedgerError
data = open(sys.argv[1], "rb").read()
try:
    inspect_artifact(data)
    outcome = "accepted"
except SkillLedgerError as e:
    outcome = f"{e.code} {e.details.get('limit', '')}".strip()
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(peak_kib, outcome)
"""


class Measured:
    def __init__(self, outcome: str, cpu_s: float, rss_mb: float) -> None:
        self.outcome, self.cpu_s, self.rss_mb = outcome, cpu_s, rss_mb

    def __repr__(self) -> str:
        return f"<{self.outcome!r}: {self.cpu_s:.2f} s CPU, {self.rss_mb:.0f} MB>"

    @property
    def code(self) -> str:
        return self.outcome.split(" ")[0]

    def within_budget(self) -> bool:
        return self.cpu_s < CPU_BUDGET_S and self.rss_mb < RSS_BUDGET_MB


def inspect_in_child(data: bytes, tmp_path: Path) -> Measured:
    """Inspect ``data`` in a fresh interpreter; its CPU time (``wait4``: this child only, not the other
    children of the test run) and its peak RSS, startup included.

    The peak is the child's own ``VmHWM``: ``ru_maxrss`` of a child also counts the memory of the
    parent it was forked from (Linux keeps the high-water mark across ``exec``), which in a test run
    is the whole pytest process."""
    path = tmp_path / f"a-{sha256_hex(data)[:16]}.palyra-skill"
    path.write_bytes(data)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    peak_kib, outcome = out.decode().strip().split(" ", 1)
    return Measured(outcome, usage.ru_utime + usage.ru_stime, int(peak_kib) / 1024)


def limit_of(error: BaseException) -> str | None:
    return getattr(error, "details", {}).get("limit")


def tool_table_keys(n: int) -> str:
    """A manifest whose one tool's input schema is a table of ``n`` keys."""
    base = manifest(tools=1).replace('input_schema = { type = "object" }\n', "")
    return base + "[entrypoints.tools.input_schema]\n" + "".join(f"k{i} = {i}\n" for i in range(n))


# --- the attacks of the issue -----------------------------------------------------------------

ATTACKS: dict[str, tuple[Callable[[], bytes], str]] = {
    # name: (artifact, the code that refuses it and, for manifest_limits, which limit)
    "16000_dotted_key_parts": (lambda: forge(manifest(body="a" + ".a" * 15_999 + " = 1\n")), "manifest_limits key_parts"),
    "16k_keys_in_a_tool_table": (lambda: forge(tool_table_keys(16_000)), "accepted"),
    "1_5M_element_array": (lambda: forge(manifest(body="[operator]\ntags = [" + "0," * 1_500_000 + "]\n")),
                           "artifact_entry_too_large"),
    "60k_tools": (lambda: forge(manifest(tools=0, body='[[entrypoints.tools]]\n' * 60_000)), "artifact_entry_too_large"),
    "5MB_skill_id": (lambda: forge(manifest(skill_id="a" * 5_000_000)), "artifact_entry_too_large"),
    "12MB_secret_scope": (lambda: forge(manifest(body='[[capabilities.secrets]]\nscope = "' + "x" * 12_000_000
                                                 + '"\nkey_names = ["k"]\n')), "artifact_entry_too_large"),
    # the same shapes inside the size cap
    "dotted_parts_inside_the_size_cap": (lambda: forge(manifest(body="a" + ".a" * 100_000 + " = 1\n")),
                                         "manifest_limits key_parts"),
    "array_inside_the_size_cap": (lambda: forge(manifest(body="[operator]\ntags = [" + "0," * 120_000 + "]\n")),
                                  "manifest_limits array_items"),
    "tools_inside_the_size_cap": (lambda: forge(manifest(tools=0, body='[[entrypoints.tools]]\n' * 11_000)),
                                  "manifest_limits array_items"),
    "skill_id_inside_the_size_cap": (lambda: forge(manifest(skill_id="a" * 200_000)), "manifest_limits string_chars"),
    "tool_tables_inside_the_size_cap": (lambda: forge(manifest(tools=0, body='[[entrypoints.tools]]\nid = "x"\n' * 4_000)),
                                        "manifest_limits tools"),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_hostile_manifest_attack_costs_little(name: str, tmp_path: Path) -> None:
    build, expected = ATTACKS[name]
    data = build()
    measured = inspect_in_child(data, tmp_path)
    assert measured.outcome == expected or measured.code == expected, measured
    assert measured.within_budget(), measured


def test_the_16000_dotted_parts_attack_is_small() -> None:
    """The issue's artifact: 1,430 bytes that used to cost 7.6 s and 1.5 GB."""
    assert len(ATTACKS["16000_dotted_key_parts"][0]()) < 2_000


# --- every limit at its cap and just over it ----------------------------------------------------


def key_parts_of(text: str) -> int:
    """The key parts of a manifest written by this module (one key or header per line, no inline
    tables, no dots or '=' in quoted keys), counted independently of the scanner."""
    parts = 0
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            parts += len(line.strip("[]").split("."))
        else:
            key = line.split("=", 1)[0]
            parts += len(key.split("."))
            parts += line.split("=", 1)[1].count("=")  # keys inside an inline table value
    return parts


def keys_manifest(total: int) -> str:
    """A valid manifest of exactly ``total`` key parts (its integrity list included)."""
    fixed = key_parts_of(tool_table_keys(0) + integrity_section())
    return tool_table_keys(total - fixed)


def nested(depth: int) -> str:
    return manifest(body="[operator]\ncategories = " + "[" * depth + "]" * depth + "\n")


LIMITS: dict[str, tuple[Callable[[int], bytes], int]] = {
    # limit: (artifact with the limited quantity = n, the cap)
    "bytes": (lambda n: forge(manifest(), pad_to=n), MAX_MANIFEST_BYTES),
    "keys": (lambda n: forge(keys_manifest(n)), MAX_MANIFEST_KEYS),
    "key_parts": (lambda n: forge(manifest(body="[operator]\n" + ".".join(["x"] * n) + " = 1\n")), MAX_MANIFEST_KEY_PARTS),
    "nesting": (lambda n: forge(nested(n)), MAX_MANIFEST_NESTING),
    "array_items": (lambda n: forge(manifest(body="[operator]\ntags = [" + ", ".join(f'"t{i}"' for i in range(n)) + "]\n")),
                    MAX_MANIFEST_ARRAY_ITEMS),
    "array_tables": (lambda n: forge(manifest(body="[[x]]\n" * n)), MAX_MANIFEST_ARRAY_ITEMS - 4),  # + 1 tool, 3 files
    "string_chars": (lambda n: forge(manifest(description="d" * n)), MAX_MANIFEST_STRING_CHARS),
    "literal_string_chars": (lambda n: forge(manifest(body="[operator]\nsummary = '''" + "s" * n + "'''\n")),
                             MAX_MANIFEST_STRING_CHARS),
    "bare_key_chars": (lambda n: forge(manifest(body="[operator.config.properties]\n" + "k" * n + ' = { type = "string" }\n')),
                       MAX_MANIFEST_STRING_CHARS),
    "tools": (lambda n: forge(manifest(tools=n)), MAX_MANIFEST_TOOLS),
    "skill_id_chars": (lambda n: forge(manifest(skill_id="s" * n)), MAX_MANIFEST_ID_CHARS),
    "tool_id_chars": (lambda n: forge(manifest(tool_id="acme." + "t" * (n - 5))), MAX_MANIFEST_ID_CHARS),
}
# What each over-the-cap case is refused with: (code, limit).
OVER = {"bytes": ("artifact_entry_too_large", MAX_MANIFEST_BYTES), "array_tables": ("manifest_limits", "array_items"),
        "literal_string_chars": ("manifest_limits", "string_chars"), "bare_key_chars": ("manifest_limits", "string_chars"),
        "skill_id_chars": ("manifest_limits", "id_chars"), "tool_id_chars": ("manifest_limits", "id_chars")}
# At the cap these are valid manifests and pass inspect; the others are refused by a later rule, never the limit.
ACCEPTED_AT_CAP = {"bytes", "keys", "array_items", "string_chars", "literal_string_chars",
                   "bare_key_chars", "tools", "skill_id_chars", "tool_id_chars"}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_manifest_limit_at_the_cap_and_just_over(name: str, tmp_path: Path) -> None:
    build, cap = LIMITS[name]
    at_cap = build(cap)
    if name in ACCEPTED_AT_CAP:
        inspect_artifact(at_cap)
    else:
        with pytest.raises(SkillLedgerError) as refused:
            inspect_artifact(at_cap)
        assert refused.value.code == "manifest_parse", refused.value  # nesting after parsing, unknown keys
    over = build(cap + 1)
    with pytest.raises(SkillLedgerError) as refused:
        inspect_artifact(over)
    code, limit = OVER.get(name, ("manifest_limits", name))
    assert (refused.value.code, limit_of(refused.value)) == (code, limit), refused.value.message
    named = MAX_MANIFEST_ARRAY_ITEMS if name == "array_tables" else cap
    assert str(named) in refused.value.message  # the message names the cap
    for data in (at_cap, over):
        measured = inspect_in_child(data, tmp_path)
        assert measured.within_budget(), (name, measured)


def test_manifest_text_over_the_size_cap_is_refused_wherever_it_is_parsed() -> None:
    """package build and the other callers hand text to parse_manifest, not an archive entry."""
    text = manifest() + "#" + "x" * MAX_MANIFEST_BYTES + "\n"
    with pytest.raises(ManifestLimitExceeded) as refused:
        parse_manifest(text)
    assert refused.value.code == "manifest_limits" and limit_of(refused.value) == "bytes"
    with pytest.raises(ManifestLimitExceeded):
        parse_manifest(manifest() + "#" + "é" * (MAX_MANIFEST_BYTES // 2) + "\n")  # bytes, not characters


def test_manifest_entry_is_capped_while_streaming() -> None:
    """A deflate bomb named skill.toml is stopped after MAX_MANIFEST_BYTES + 1 bytes of output,
    whatever size it declares: the declared size is checked first, then the read is capped."""
    bomb = forge(manifest() + "#" + "x" * (4 * MAX_MANIFEST_BYTES) + "\n")
    with pytest.raises(ArtifactEntryTooLarge) as refused:
        inspect_artifact(bomb)
    assert refused.value.details == {"path": "skill.toml", "actual": len(manifest() + integrity_section()) + 4 * MAX_MANIFEST_BYTES + 2,
                                     "limit": MAX_MANIFEST_BYTES}
    assert len(bomb) < MAX_MANIFEST_BYTES // 16  # it compresses well: only the cap stops it


# --- a generated corpus ---------------------------------------------------------------------------

# Each block is one shape, sized by the draw; the corpus mixes them up to the size cap.
BLOCKS: dict[str, Callable[[int, int], str]] = {
    "dotted_keys": lambda n, w: "".join(f"p{i}" + ".q" * (w % 80) + f" = {i}\n" for i in range(n)),
    "flat_keys": lambda n, w: "".join(f"f{i}_{'k' * (w % 40)} = {i}\n" for i in range(n)),
    "inline_table": lambda n, w: "it = {" + ", ".join(f"k{i} = [{i}, {{ x = {i} }}]" for i in range(n)) + "}\n",
    "array": lambda n, w: "arr = [" + ", ".join(str(i) for i in range(n * (1 + w % 40))) + "]\n",
    "nested": lambda n, w: "nest = " + "[" * (w % 90) + "1" + "]" * (w % 90) + "\n",
    "nested_tables": lambda n, w: "nt = " + "{ a = " * (w % 90) + "1" + " }" * (w % 90) + "\n",
    "long_string": lambda n, w: 'ls = "' + "s" * (n * (1 + w)) + '"\n',
    "escapes": lambda n, w: 'es = "' + "\\u00e9\\n\\\"" * (n * (1 + w % 50)) + '"\n',
    "multiline": lambda n, w: 'ml = """\n' + ('line "quoted" \\\n  ' * n) + '"""\n',
    "literal": lambda n, w: "lt = '''" + "it's " * (n * (1 + w % 10)) + "'''\n",
    "tables": lambda n, w: "".join(f"[t{i}" + ".u" * (w % 70) + "]\nv = 1\n" for i in range(n)),
    "array_tables": lambda n, w: f"[[at{w % 3}]]\nv = 1\n" * n,
    "comments": lambda n, w: ('# "unclosed [ { = . \'\n' * n),
    "quoted_keys": lambda n, w: "".join(f'"q.{i}"."{"k" * (w % 30)}" = {i}\n' for i in range(n)),
    "floats_dates": lambda n, w: "".join(f"d{i} = 1979-05-27T07:32:00.{i}Z\nf{i} = {i}.5e-3\n" for i in range(n)),
}


@st.composite
def hostile_text(draw: st.DrawFn) -> str:
    """Up to four blocks, each shrunk until the whole still fits the size cap (less room for the
    manifest around it), so the corpus sits at the caps rather than far beyond them."""
    blocks = draw(st.lists(st.tuples(st.sampled_from(sorted(BLOCKS)), st.integers(1, 20_000), st.integers(0, 5_000)),
                           min_size=1, max_size=4))
    room = MAX_MANIFEST_BYTES - 4_096
    text = ""
    for i, (kind, n, w) in enumerate(blocks):
        block = f"[b{i}]\n" + BLOCKS[kind](n, w)
        while len(text) + len(block.encode()) > room and n > 1:
            n //= 2
            block = f"[b{i}]\n" + BLOCKS[kind](n, w)
        if len(text) + len(block.encode()) <= room:
            text += block
    return text


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(body=hostile_text(), where=st.sampled_from(["root", "tool", "operator"]))
def test_generated_hostile_manifests_are_decided_within_budget(body: str, where: str, tmp_path_factory) -> None:
    """Every artifact up to the size caps is accepted or refused with a SkillLedgerError, within
    CPU_BUDGET_S and RSS_BUDGET_MB, startup of the child included."""
    if where == "tool":
        body = body.replace("[b0]\n", "[entrypoints.tools.input_schema.b0]\n", 1)
        text = manifest().replace('input_schema = { type = "object" }\n', "") + body
    elif where == "operator":
        text = manifest() + "[operator.config.properties.x]\ntype = \"string\"\n" + body
    else:
        text = body + "\n" + manifest()
    data = forge(text)
    measured = inspect_in_child(data, tmp_path_factory.mktemp("corpus"))
    assert measured.code != "", measured
    assert measured.within_budget(), (measured, len(text))


# --- what reaches the journal, the terminal and the read commands ---------------------------------


@pytest.fixture
def cli_home(tmp_path: Path):
    from click.testing import CliRunner

    from skill_ledger.cli.main import cli

    home = tmp_path / "home"
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["--home", str(home), "--actor", "user:hostile-test", *args])

    invoke.home = home  # type: ignore[attr-defined]
    invoke.tmp = tmp_path  # type: ignore[attr-defined]
    return invoke


def journal_text(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.glob("journal.db*")))


@pytest.mark.parametrize("scope_chars", [12_000_000, 60_000], ids=["12MB", "60KB"])
def test_huge_secret_scope_is_neither_stored_nor_printed_in_full(cli_home, scope_chars: int) -> None:
    """The attack: a 13 KB unsigned artifact whose 12 MB secret scope went twice into every
    artifact.rejected and onto stderr. Over the manifest cap it is refused at the ZIP layer; a 60 KB
    one (inside the caps, an invalid scope) is quoted in the error only up to the message bound."""
    scope = "x" * scope_chars
    data = forge(manifest(body=f'[[capabilities.secrets]]\nscope = "{scope}"\nkey_names = ["k"]\n'))
    path = cli_home.tmp / "scope.palyra-skill"
    path.write_bytes(data)
    first = cli_home("install", "--artifact", str(path), "--json")
    assert first.exit_code == 3, first.stderr
    assert len(first.stderr.encode()) < 5_000 and len(first.stdout.encode()) < 8_000
    expected = {12_000_000: "artifact_entry_too_large", 60_000: "manifest_validation"}[scope_chars]
    assert first.stderr.startswith(f"error[{expected}]: ")
    if expected == "manifest_validation":  # the scope is quoted, up to the bound
        assert "…[truncated " in first.stderr
    stored = journal_text(cli_home.home)
    assert b"x" * 4_096 not in stored
    for _ in range(3):  # the same artifact again: refused the same way, nothing more recorded
        again = cli_home("install", "--artifact", str(path), "--json")
        assert again.exit_code == 3 and again.stderr == first.stderr
    assert len(journal_text(cli_home.home)) == len(stored)
    rejected = [json.loads(line) for line in cli_home("journal", "--json").stdout.splitlines()]
    assert [e["kind"] for e in rejected] == ["artifact.rejected"]
    assert len(rejected[0]["data"]["message"].encode()) <= MAX_EVENT_TEXT_BYTES


def test_info_and_list_of_a_skill_at_the_manifest_caps(cli_home) -> None:
    """The longest names the limits let through (128-character ids, 256 tools, long texts with
    control characters) reach the journal once and every read command answers."""
    escapes = "\\u001b[2J" * 10  # TOML escapes of ESC: a clear-screen sequence in the description
    tools = "".join(f'''
[[entrypoints.tools]]
id = "acme.{'t' * 118}{i:05d}"
name = "{'n' * 100}"
description = "{escapes}{'d' * 250}"
input_schema = {{ type = "object", description = "{'x' * 50}" }}
output_schema = {{ type = "object" }}
''' for i in range(MAX_MANIFEST_TOOLS))
    skill_id = "acme." + "s" * (MAX_MANIFEST_ID_CHARS - 5)
    text = HEAD.format(skill_id=skill_id).replace('name = "Hostile"', f'name = "{"N" * 10_000}"') + tools
    text += f'\n[operator]\ndisplay_name = "{"D" * 10_000}"\n'
    data = build_artifact(text, [("m.wasm", MODULE)], [], SBOM, PROVENANCE, SEED, 0).artifact
    path = cli_home.tmp / "big.palyra-skill"
    path.write_bytes(data)
    installed = cli_home("install", "--artifact", str(path), "--allow-tofu", "--json")
    assert installed.exit_code in (0, 5), installed.stderr  # the audit may quarantine it; it is installed
    for args in (("list",), ("list", "--json"), ("info", skill_id), ("info", skill_id, "--json"),
                 ("history", skill_id), ("journal", "--json")):
        r = cli_home(*args)
        assert r.exit_code == 0, (args, r.stderr)
        assert len(r.stdout.encode()) < 4 * MAX_MANIFEST_BYTES, args
    assert skill_id in cli_home("list", "--json").stdout
