"""Make personal data safe to store as evidence or to log."""

from __future__ import annotations

import ipaddress
import re

IPV4_PREFIX = 24
IPV6_PREFIX = 48


def truncate_ip(value: str) -> str:
    """203.0.113.77 -> 203.0.113.0/24; 2001:db8:1:2::5 -> 2001:db8:1::/48.

    Raises ValueError for something that is not an IP address.
    """
    address = ipaddress.ip_address(value.strip())
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_IPV4 = re.compile(r"\b(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}\b")


def scrub(text: str) -> str:
    """Mask email addresses and the host part of IPv4 addresses in free text (logs)."""
    text = _EMAIL.sub(r"\1***@\2", text)
    return _IPV4.sub(r"\1.x", text)
