"""The client's address: the peer's, or, when the peer is one of our proxies, the one it saw.

X-Forwarded-For is whatever the client wrote plus what each proxy on the way appended, so only
the right-hand entries appended by proxies we trust mean anything. Walk it from the right past
trusted proxies to the first address that is not one; from any other peer ignore it whole.
Pure: no Django, so uvicorn's side and the throttles agree on one rule.
"""

import ipaddress
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDR networks as networks; ValueError names an entry that is neither."""
    networks = []
    for value in (v.strip() for v in values):
        if not value:
            continue
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP address or CIDR network.") from exc
    return tuple(networks)


def _address(value: str) -> Address | None:
    """An address from an X-Forwarded-For entry (`a.b.c.d`, `a.b.c.d:port`, `[v6]:port`)."""
    value = value.strip()
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(address: Address | None, trusted: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in trusted)


def client_address(peer: str, forwarded_for: str, trusted: tuple[Network, ...]) -> str:
    """The peer, or from a trusted peer the right-most X-Forwarded-For entry not trusted."""
    if not _trusted(_address(peer), trusted):
        return peer
    client = peer
    for entry in reversed(forwarded_for.split(",")):
        address = _address(entry)
        if address is None:
            # Not something a proxy of ours writes: the client's own text; keep the last hop.
            return client
        client = str(address)
        if not _trusted(address, trusted):
            return client
    return client
