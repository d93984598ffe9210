"""Forwarded headers count only from the TLS proxy in front of us (FORWARDED_ALLOW_IPS).

gunicorn already applies that rule to X-Forwarded-Proto when it sets the request's scheme.
X-Forwarded-Host (honoured with USE_X_FORWARDED) reaches Django untouched from any peer, so
a client that got past the proxy could make the app build URLs, and check webhook
signatures, for a host of its choosing: it is dropped here unless the peer is trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

FORWARDED_HOST_HEADERS = ("HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT")


def is_trusted_proxy(remote_addr: str) -> bool:
    """Whether the peer may set forwarded headers: gunicorn's rule for forwarded_allow_ips
    (addresses or networks, "*" for any; a UNIX socket peer has no address and is trusted)."""
    return _is_trusted(remote_addr, tuple(settings.FORWARDED_ALLOW_IPS))


# Kept per peer: behind the proxy every request comes from the same address or two, and
# parsing it and testing it against each network cost several µs of every text.
@lru_cache(maxsize=256)
def _is_trusted(remote_addr: str, allowed: tuple[str, ...]) -> bool:
    if "*" in allowed or not remote_addr:
        return True
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(address in network for network in _trusted_networks(allowed))


@lru_cache(maxsize=8)
def _trusted_networks(allowed: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in allowed if entry.strip())


def untrusted_forwarded_host_middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    def middleware(request: HttpRequest) -> HttpResponse:
        if not is_trusted_proxy(request.META.get("REMOTE_ADDR", "")):
            for header in FORWARDED_HOST_HEADERS:
                request.META.pop(header, None)
        return get_response(request)

    return middleware
