"""HTTP egress for ``http_fetch``: allowlisted hosts only, every hop checked, bounded.

For each hop (the request and every redirect):

1. the URL must be ``http``/``https`` without user info, and its host must be in the granted
   allowlist (exact, or a ``*.`` wildcard the manifest opted into);
2. the host is resolved (a literal address is taken as is) within the remaining run time, and
   every address must be public: private, loopback, link-local, shared, reserved and multicast
   ranges are refused unless that literal address itself is allowlisted (a name such as
   ``localhost`` never unlocks ``127.0.0.1``);
3. the connection goes to the checked address (no second resolution, so a rebinding DNS
   answer cannot redirect it), TLS still verifies the certificate against the name;
4. every socket operation gets the time left before the run's deadline, and the response body
   is read in chunks against a size cap.

Environment proxies are never used. Nothing here logs headers, bodies, or URL paths and
queries (they can carry credentials); reasons name the scheme, host and port only.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

from skill_ledger.domain.grammars import normalize_host

# Return codes seen by the guest.
DENIED = -1
INVALID = -2
NETWORK = -3
TOO_LARGE = -4
TOO_MANY_REDIRECTS = -5

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DROP_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding", "proxy-authorization",
                           "upgrade", "te", "keep-alive"})
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})

Resolver = Callable[[str, int, float], list[str]]


class EgressError(Exception):
    def __init__(self, rc: int, reason: str, where: str = "") -> None:
        super().__init__(reason)
        self.rc = rc
        self.reason = reason
        self.where = where


class Deadline(Exception):
    """The run's deadline passed during the fetch."""


def host_allowed(host: str, allowlist: Sequence[str]) -> bool:
    for entry in allowlist:
        e = entry.strip().lower().rstrip(".")
        if e == host:
            return True
        if e == "*":
            return True
        if e.startswith("*.") and host.endswith(e[1:]) and len(host) > len(e) - 1:
            return True
    return False


def forbidden_address(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return (not addr.is_global) or addr.is_multicast


def system_resolver(host: str, port: int, timeout: float) -> list[str]:
    """``getaddrinfo`` with a timeout (it has none of its own): run in a daemon thread."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["v"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            box["e"] = e
        finally:
            done.set()

    threading.Thread(target=work, name="skills-dns", daemon=True).start()
    if not done.wait(max(0.0, timeout)):
        raise Deadline()
    if "e" in box:
        raise EgressError(NETWORK, f"cannot resolve {host}")
    out: list[str] = []
    for family, _type, _proto, _name, sockaddr in box["v"]:
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr[0] not in out:
            out.append(str(sockaddr[0]).split("%", 1)[0])
    return out


class Fetcher:
    def __init__(self, allowlist: Sequence[str], deadline: float, *, max_response_bytes: int, max_redirects: int,
                 resolver: Resolver | None = None) -> None:
        self.allowlist = [a.strip().lower().rstrip(".") for a in allowlist]
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        self.max_redirects = max_redirects
        self.resolver = resolver or system_resolver

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Deadline()
        return left

    # --- one request, following redirects ---------------------------------------------

    def fetch(self, request: Any) -> dict[str, Any]:
        method, url, headers, body = _parse_request(request)
        for hop in range(self.max_redirects + 1):
            target = self._check(url)
            status, resp_headers, data = self._exchange(target, method, headers, body)
            location = resp_headers.get("location")
            if status in REDIRECTS and location is not None:
                if hop == self.max_redirects:
                    raise EgressError(TOO_MANY_REDIRECTS, f"more than {self.max_redirects} redirects",
                                      target["where"])
                new_url = urljoin(url, location)
                if status == 303 or (status in (301, 302) and method == "POST"):
                    method, body = ("GET" if method != "HEAD" else "HEAD"), None
                if _origin(new_url) != _origin(url):  # credentials never follow to another origin
                    headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
                url = new_url
                continue
            return _response(status, resp_headers, data)
        raise EgressError(TOO_MANY_REDIRECTS, "too many redirects")  # pragma: no cover - loop returns

    def _check(self, url: str) -> dict[str, Any]:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise EgressError(INVALID, "the URL is malformed") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise EgressError(DENIED if scheme else INVALID, f"scheme '{scheme}' is not allowed")
        if parts.username is not None or parts.password is not None:
            raise EgressError(INVALID, "URLs with user info are not allowed")
        raw_host = (parts.hostname or "").rstrip(".")
        port = port or (443 if scheme == "https" else 80)
        literal = _ip(raw_host)
        host = str(literal) if literal is not None else normalize_host(raw_host)
        if not host:
            raise EgressError(INVALID, "the URL has no valid host")
        where = f"{scheme}://{host}:{port}"
        if not host_allowed(host, self.allowlist):
            raise EgressError(DENIED, f"host {host} is not in the egress allowlist", where)
        addresses = [host] if literal is not None else self.resolver(host, port, self.remaining())
        if not addresses:
            raise EgressError(NETWORK, f"{host} has no address", where)
        for a in addresses:
            addr = _ip(a)
            if addr is None:
                raise EgressError(NETWORK, f"{host} resolved to a non-address", where)
            if forbidden_address(addr) and str(addr) not in self.allowlist:
                raise EgressError(DENIED, f"{host} resolves to {addr}, a private, loopback, link-local or "
                                          "reserved address that is not itself allowlisted", where)
        return {"scheme": scheme, "host": host, "port": port, "address": addresses[0], "where": where,
                "path": (parts.path or "/") + (f"?{parts.query}" if parts.query else "")}

    def _exchange(self, t: dict[str, Any], method: str, headers: dict[str, str],
                  body: bytes | None) -> tuple[int, dict[str, str], bytes]:
        try:
            sock = socket.create_connection((t["address"], t["port"]), timeout=self.remaining())
        except (TimeoutError, socket.timeout):
            self.remaining()
            raise EgressError(NETWORK, "connection timed out", t["where"]) from None
        except OSError:
            raise EgressError(NETWORK, "connection failed", t["where"]) from None
        conn: http.client.HTTPConnection | None = None
        try:
            if t["scheme"] == "https":
                try:
                    sock.settimeout(self.remaining())
                    sock = ssl.create_default_context().wrap_socket(sock, server_hostname=t["host"])
                except ssl.SSLError:
                    raise EgressError(NETWORK, "TLS handshake failed", t["where"]) from None
            conn = http.client.HTTPConnection(t["host"], t["port"], timeout=self.remaining())
            conn.sock = sock  # pinned to the checked address; http.client will not connect again
            conn.putrequest(method, t["path"], skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            sock.settimeout(self.remaining())
            resp = conn.getresponse()
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
            declared = resp_headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_response_bytes:
                raise EgressError(TOO_LARGE, f"response larger than {self.max_response_bytes} bytes", t["where"])
            chunks, total = [], 0
            while method != "HEAD":
                sock.settimeout(self.remaining())
                chunk = resp.read1(64 * 1024) if hasattr(resp, "read1") else resp.read(64 * 1024)
                if not chunk:
                    break
                total += len(chunk)
                if total > self.max_response_bytes:
                    raise EgressError(TOO_LARGE, f"response larger than {self.max_response_bytes} bytes",
                                      t["where"])
                chunks.append(chunk)
            return resp.status, resp_headers, b"".join(chunks)
        except (TimeoutError, socket.timeout):
            self.remaining()  # raises Deadline when that is why
            raise EgressError(NETWORK, "the server did not answer in time", t["where"]) from None
        except (http.client.HTTPException, OSError, ValueError):
            self.remaining()
            raise EgressError(NETWORK, "the HTTP exchange failed", t["where"]) from None
        finally:
            if conn is not None:
                conn.close()
            sock.close()


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _origin(url: str) -> tuple[str, str, int | None]:
    p = urlsplit(url)
    try:
        port = p.port
    except ValueError:
        port = None
    return (p.scheme.lower(), (p.hostname or "").lower(), port)


def _parse_request(request: Any) -> tuple[str, str, dict[str, str], bytes | None]:
    if not isinstance(request, dict):
        raise EgressError(INVALID, "the request must be a JSON object")
    method = request.get("method", "GET")
    url = request.get("url")
    headers = request.get("headers") or {}
    body = request.get("body")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise EgressError(INVALID, "unsupported method")
    if not isinstance(url, str) or not url:
        raise EgressError(INVALID, "the request has no url")
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in headers.items()):
        raise EgressError(INVALID, "headers must map strings to strings")
    for k, v in headers.items():
        if not k or any(c in k for c in "\r\n:\x00 ") or any(c in v for c in "\r\n\x00"):
            raise EgressError(INVALID, "a header name or value is malformed")
    if body is not None and not isinstance(body, str):
        raise EgressError(INVALID, "body must be a string")
    clean = {k: v for k, v in headers.items() if k.lower() not in _DROP_HEADERS}
    return method.upper(), url, clean, body.encode("utf-8") if body is not None else None


def _response(status: int, headers: dict[str, str], data: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {"status": status, "headers": headers}
    try:
        out["body"] = data.decode("utf-8")
    except UnicodeDecodeError:
        out["body_base64"] = base64.b64encode(data).decode("ascii")
    return out
