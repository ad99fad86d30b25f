"""HTTP egress: the allowlist, address checks, redirects, headers, through the runner and alone."""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import runner_kit as kit  # noqa: E402

from skill_ledger.adapters.runner import egress  # noqa: E402

FETCH = """(local $r i64)
    (local.set $r (call $http_fetch (local.get $ptr) (local.get $len)))
    (if (result i64) (i64.lt_s (local.get $r) (i64.const 0))
      (then (call $emit_rc (i32.wrap_i64 (local.get $r)))) (else (local.get $r)))"""


@pytest.fixture(scope="module")
def servers():
    a, b = kit.LocalServer(), kit.LocalServer()
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def lab(tmp_path):
    lab = kit.Lab(tmp_path / "home")
    lab.sid = lab.install(kit.json_module(FETCH, imports=[kit.IMPORT_HTTP]), http=["127.0.0.1"])
    yield lab
    lab.close()


def test_an_allowlisted_literal_address_is_fetched(lab, servers):
    a, _ = servers
    result = lab.run(lab.sid, {"url": a.url("/ok?q=1"), "headers": {"X-Custom": "1"}})
    out = result.output
    assert out["status"] == 200 and json.loads(out["body"]) == {"hello": "world", "host": f"127.0.0.1:{a.port}"}
    assert out["headers"]["content-type"] == "application/json"
    assert result.log == []


def test_a_redirect_inside_the_allowlist_is_followed(lab, servers):
    a, _ = servers
    out = lab.run(lab.sid, {"url": a.url("/redirect-in")}).output
    assert out["status"] == 200 and json.loads(out["body"])["hello"] == "world"


def test_credentials_do_not_follow_a_redirect_to_another_origin(lab, servers):
    a, b = servers
    out = lab.run(lab.sid, {"url": a.url(f"/redirect-port/{b.port}"),
                            "headers": {"Authorization": "Bearer x", "X-Custom": "kept"}}).output
    assert json.loads(out["body"]) == {"authorization": None, "x-custom": "kept"}


def test_bad_requests_are_invalid(lab, servers):
    a, _ = servers
    for request in ({"url": "ftp://127.0.0.1/x"}, {"url": a.url("/ok"), "method": "BREW"},
                    {"url": a.url("/ok"), "headers": {"X": "a\r\nInjected: 1"}}, {"nourl": 1},
                    {"url": "http://user:pw@127.0.0.1/"}):
        assert lab.run(lab.sid, request).output["rc"] in (egress.INVALID, egress.DENIED), request


def test_a_refused_connection_is_a_network_error(lab):
    assert lab.run(lab.sid, {"url": "http://127.0.0.1:9/"}).output == {"rc": egress.NETWORK}


# --- alone -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host,allow,expected", [
    ("api.example.com", ["api.example.com"], True), ("api.example.com", ["API.Example.com."], True),
    ("a.example.com", ["*.example.com"], True), ("example.com", ["*.example.com"], False),
    ("evil-example.com", ["*.example.com"], False), ("x.y", ["*"], True), ("other.com", ["api.example.com"], False),
])
def test_host_allowlist(host, allow, expected):
    f = egress.Fetcher(allow, time.monotonic() + 5, max_response_bytes=10, max_redirects=0)
    assert egress.host_allowed(host, f.allowlist) is expected


@pytest.mark.parametrize("address,forbidden", [
    ("127.0.0.1", True), ("10.0.0.1", True), ("172.16.5.4", True), ("192.168.1.1", True), ("169.254.169.254", True),
    ("100.64.0.1", True), ("0.0.0.0", True), ("224.0.0.1", True), ("::1", True), ("fe80::1", True),
    ("fc00::1", True), ("::ffff:10.0.0.1", True), ("8.8.8.8", False), ("2606:4700:4700::1111", False),
])
def test_forbidden_address_ranges(address, forbidden):
    assert egress.forbidden_address(ipaddress.ip_address(address)) is forbidden


def check(allow, url, resolved=("93.184.216.34",)):
    f = egress.Fetcher(allow, time.monotonic() + 5, max_response_bytes=10, max_redirects=0,
                       resolver=lambda h, p, t: list(resolved))
    return f._check(url)


def test_check_rules():
    assert check(["10.0.0.7"], "http://10.0.0.7/")["address"] == "10.0.0.7"  # the literal is allowlisted
    for allow, url, resolved, rc in [
        (["*"], "http://10.0.0.7/", (), egress.DENIED),  # a wildcard never unlocks a private literal
        (["good.example"], "http://good.example/", ("93.184.216.34", "10.0.0.1"), egress.DENIED),  # any bad answer
        (["good.example"], "gopher://good.example/", (), egress.DENIED),
        (["good.example"], "http://[::1]/", (), egress.DENIED),
        (["good.example"], "http://good.example:99999/", (), egress.INVALID),
    ]:
        with pytest.raises(egress.EgressError) as info:
            check(allow, url, resolved)
        assert info.value.rc == rc, (allow, url)
    target = check(["good.example"], "https://good.example/a?b=c")
    assert (target["address"], target["port"], target["path"], target["where"]) == (
        "93.184.216.34", 443, "/a?b=c", "https://good.example:443")


def test_dns_resolution_is_bounded_by_the_deadline(monkeypatch):
    import socket

    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: time.sleep(2))
    t0 = time.monotonic()
    with pytest.raises(egress.Deadline):
        egress.system_resolver("slow.example", 80, 0.1)
    assert time.monotonic() - t0 < 0.5
