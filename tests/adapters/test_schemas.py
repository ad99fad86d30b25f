"""Tool schemas evaluated on the host: no reference leaves the document, patterns run in linear time."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading

import pytest

from skill_ledger.adapters.schemas import SchemaInvalid, compile_schema
from skill_ledger.domain.schemas import non_local_refs


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        _Recorder.hits.append(self.path)
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def probe_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.hits = []
    yield f"http://127.0.0.1:{server.server_address[1]}/probe.json"
    server.shutdown()


def test_remote_ref_is_never_fetched(probe_server):
    with pytest.raises(SchemaInvalid) as e:
        compile_schema({"$ref": probe_server})
    assert "Retrieval is disabled" in e.value.problem
    assert _Recorder.hits == []


def test_file_ref_is_never_read(tmp_path):
    secret = tmp_path / "local.json"
    secret.write_text('{"type": "string", "description": "host file"}')
    with pytest.raises(SchemaInvalid):
        compile_schema({"$ref": secret.as_uri()})


def test_local_refs_resolve_inside_the_document():
    s = compile_schema({"$defs": {"n": {"type": "integer"}}, "type": "object",
                        "properties": {"n": {"$ref": "#/$defs/n"}}})
    assert s.problem({"n": 3}) is None
    assert "is not of type" in s.problem({"n": "x"}) and "(at /n)" in s.problem({"n": "x"})


def test_invalid_schema_is_one_readable_line():
    with pytest.raises(SchemaInvalid) as e:
        compile_schema({"type": "strin"})
    assert "\n" not in e.value.problem and e.value.problem


def test_backtracking_pattern_features_do_not_compile():
    for pattern in [r"(a)\1", r"(?=a)a", r"(?<!b)a"]:
        with pytest.raises(SchemaInvalid):
            compile_schema({"type": "string", "pattern": pattern})


def test_catastrophic_pattern_is_linear():
    """``^(a+)+$`` against "a"*N + "!" doubles per character on a backtracking engine (26 characters took
    9.9 s through the old validator); here 100,000 characters are answered at once. Run in a child
    process so a regression fails the test (timeout) instead of hanging the suite."""
    code = ("from skill_ledger.adapters.schemas import compile_schema\n"
            "s = compile_schema({'type': 'string', 'pattern': '^(a+)+$'})\n"
            "print(s.problem('a' * 100000 + '!') is not None, s.problem('a' * 100000) is None)\n"
            "s = compile_schema({'type': 'object', 'patternProperties': {'^(a|aa)+$': {'type': 'integer'}}})\n"
            "print(s.problem({'a' * 5000 + 'b': 'x'}) is None)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["True", "True", "True"]


@pytest.mark.parametrize("schema,expected", [
    ({"type": "object"}, []),
    ({"$ref": "#"}, []),
    ({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "http://x/a.json"}}}, ["http://x/a.json"]),
    ({"items": [{"$ref": "file:///etc/passwd"}, {"$dynamicRef": "other.json#x"}]},
     ["file:///etc/passwd", "other.json#x"]),
    ({"properties": {"$ref": {"type": "string"}}}, []),  # a property *named* $ref holds a schema, not a reference
    ({"$ref": 5}, ["5"]),
])
def test_non_local_refs(schema, expected):
    assert non_local_refs(schema) == expected
