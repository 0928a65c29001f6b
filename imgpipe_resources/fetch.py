"""Fetching source photos from URLs someone else chose, without being used against us.

Each hop of a download (at most ``max_redirects`` redirects) is checked before connecting:
only http(s); the host is resolved and every address must be public, unless the host is on
the allow-list; cloud metadata addresses are refused always. The connection then goes to the
address that was checked (no second lookup an attacker could answer differently). The body
streams under a byte cap and a timeout.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urljoin, urlsplit

import certifi
import dagster as dg
import urllib3
from pydantic import Field

from imgpipe_assets.errors import (
    FetchFailed,
    FetchTimeout,
    SourceTooLarge,
    UrlRefused,
)

METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, ...
    ipaddress.ip_address("169.254.170.2"),  # ECS task metadata
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba
}


def host_allowed(host: str, allowed: tuple[str, ...] | list[str]) -> bool:
    """Exact names, or '.example.com' for a domain and its subdomains."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if host == entry or (entry.startswith(".") and (host.endswith(entry) or host == entry[1:])):
            return True
    return False


def checked_address(host: str, port: int, allowed: bool) -> str:
    """Resolve ``host`` and return an address safe to connect to, or raise UrlRefused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchFailed(f"cannot resolve {host}: {exc.strerror}") from None
    addresses = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if ip in METADATA_ADDRESSES:
            raise UrlRefused(f"{host} resolves to {ip}, a cloud metadata address")
        if not allowed and not ip.is_global:
            raise UrlRefused(
                f"{host} resolves to {ip}, which is not a public address "
                "(add the host to JMS_ALLOWED_IMAGE_HOSTS to permit it)"
            )
        addresses.append(ip)
    if not addresses:
        raise FetchFailed(f"{host} has no address")
    return str(addresses[0])


def _limit_wait(response: urllib3.BaseHTTPResponse, seconds: float) -> None:
    """Let the response's next socket read wait at most ``seconds``."""
    connection = getattr(response, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


class ImageFetcher(dg.ConfigurableResource):
    """Downloads source photos safely: checked addresses, bounded redirects, size and time."""

    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts allowed to resolve to private addresses (JMS_ALLOWED_IMAGE_HOSTS)",
    )
    max_bytes: int = Field(default=50 * 1024 * 1024, description="Largest photo accepted")
    timeout_s: float = Field(
        default=30.0,
        description="The whole download's deadline, redirects included (FETCH_TIMEOUT after)",
    )
    max_redirects: int = 3

    def fetch(self, url: str) -> bytes:
        """The photo's bytes, within ``timeout_s`` in all: a server that drips its answer
        is cut off at the deadline (``FETCH_TIMEOUT``), so no photo waits behind it."""
        deadline = time.monotonic() + self.timeout_s

        def left() -> float:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchTimeout(f"the download took more than {self.timeout_s} s")
            return remaining

        for _hop in range(self.max_redirects + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UrlRefused(f"only http(s) URLs are fetched, not {url[:100]!r}")
            host = parts.hostname
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = checked_address(host, port, host_allowed(host, self.allowed_hosts))
            timeout = urllib3.Timeout(connect=left(), read=left())
            pool: urllib3.HTTPConnectionPool
            if parts.scheme == "https":
                pool = urllib3.HTTPSConnectionPool(
                    address,
                    port,
                    timeout=timeout,
                    retries=False,
                    server_hostname=host,
                    assert_hostname=host,
                    cert_reqs="CERT_REQUIRED",
                    ca_certs=certifi.where(),
                )
            else:
                pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            host_header = host if parts.port is None else f"{host}:{parts.port}"
            try:
                response = pool.urlopen(
                    "GET",
                    target,
                    headers={"Host": host_header, "Accept": "image/*", "User-Agent": "imgpipe/0.1"},
                    redirect=False,
                    preload_content=False,
                    retries=False,
                )
                if response.status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    response.release_conn()
                    if not location:
                        raise FetchFailed(f"redirect from {host} without a Location")
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    raise FetchFailed(f"{host} answered HTTP {response.status}")
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise SourceTooLarge(f"{declared} bytes declared; the cap is {self.max_bytes}")
                body = bytearray()
                while True:
                    _limit_wait(response, left())  # each read waits only for what is left
                    chunk = response.read1(64 * 1024)
                    if not chunk:
                        break
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise SourceTooLarge(f"more than {self.max_bytes} bytes")
                left()
                return bytes(body)
            except (TimeoutError, urllib3.exceptions.TimeoutError):
                raise FetchTimeout(f"the download took more than {self.timeout_s} s") from None
            except urllib3.exceptions.HTTPError as exc:
                raise FetchFailed(f"download from {host} failed: {type(exc).__name__}") from None
            finally:
                pool.close()
        raise FetchFailed(f"more than {self.max_redirects} redirects")
