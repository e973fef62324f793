"""Fetching a web page safely: http(s) only, a size limit while streaming, redirects checked hop by hop,
and (unless allowed) no private, loopback or link-local hosts, so a pasted URL can't reach the local network.

Known limit: the host is resolved for the check and again by httpx when connecting; a DNS server that answers
differently the second time (DNS rebinding) could slip through. Proxies from the environment are ignored
(`trust_env=False`) so the address check applies to the host that is actually contacted.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from ..errors import SourceError

MAX_REDIRECTS = 5
USER_AGENT = "article-rag/0.1 (document reader)"


@dataclass(frozen=True)
class Fetched:
    """The body of the final response and what it claims to be."""

    url: str
    content_type: str
    body: bytes


def _blocked_address(host: str) -> str | None:
    """The first address of `host` that is not a public internet address, or None when all are public."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return None  # unresolvable: httpx will fail to connect and we report it as unreachable
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
        # is_global is False for loopback, private, link-local, shared (CGNAT), reserved and unspecified ranges.
        if not ip.is_global or ip.is_multicast:
            return str(ip)
    return None


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse what should never be fetched: other schemes, no host, and private addresses unless allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SourceError(f"{url}: only http and https addresses can be read.")
    if not parts.hostname:
        raise SourceError(f"{url}: the address has no host name.")
    if allow_private:
        return
    blocked = _blocked_address(parts.hostname)
    if blocked:
        raise SourceError(f"{url}: points to a private or local network address ({blocked}), which is not fetched.")


def _read_limited(resp: httpx.Response, url: str, max_bytes: int, deadline: float) -> bytes:
    """The body, stopping as soon as it passes `max_bytes` or the overall deadline (a slow drip is a timeout)."""
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise SourceError(f"{url}: the page is {int(declared):,} bytes, over the size limit of {max_bytes:,}.")
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise SourceError(f"{url}: the page is over the size limit of {max_bytes:,} bytes.")
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("overall deadline passed")
        chunks.append(chunk)
    return b"".join(chunks)


def _status_error(url: str, status: int) -> SourceError:
    if status == 404:
        return SourceError(f"{url}: the page was not found (HTTP 404).")
    if status in (401, 403):
        return SourceError(f"{url}: the site refused access (HTTP {status}).")
    if status >= 500:
        return SourceError(f"{url}: the site had an error (HTTP {status}); try again later.")
    return SourceError(f"{url}: the site answered HTTP {status} instead of the page.")


def _follow(client: httpx.Client, url: str, max_bytes: int, allow_private: bool, deadline: float) -> Fetched:
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        check_url(current, allow_private=allow_private)  # every hop: a public page may redirect inward
        with client.stream("GET", current) as resp:
            if resp.is_redirect and "location" in resp.headers:
                current = urljoin(current, resp.headers["location"])
                continue
            if resp.status_code >= 400:
                raise _status_error(url, resp.status_code)
            body = _read_limited(resp, url, max_bytes, deadline)
            content_type = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            return Fetched(url=str(resp.url), content_type=content_type, body=body)
    raise SourceError(f"{url}: too many redirects (more than {MAX_REDIRECTS}).")


def fetch_url(url: str, *, max_bytes: int, timeout: float, allow_private: bool) -> Fetched:
    """GET `url` within `timeout` seconds overall; every failure is a SourceError naming the URL."""
    deadline = time.monotonic() + timeout
    headers = {"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml,application/pdf;q=0.9"}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, headers=headers) as client:
            return _follow(client, url, max_bytes, allow_private, deadline)
    except httpx.TimeoutException:
        raise SourceError(f"{url}: the site did not answer within {timeout:g} seconds.") from None
    except httpx.InvalidURL:
        raise SourceError(f"{url}: is not a valid web address.") from None
    except httpx.HTTPError:
        raise SourceError(f"{url}: the site can't be reached (no connection, or the host name is unknown).") from None
