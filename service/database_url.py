"""What a DATABASE_URL names: its hosts, and whether a multi-host one is safe to write to.
(Parsing only; `service.store.hosts` connects.)"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

#: what a multi-host URL must ask for: a session that can write (see `check_cluster_url`)
WRITABLE_SESSION_ATTRS = ("read-write", "primary")


def hosts_of(url: str) -> list[tuple[str, int | None]]:
    """The (host, port) pairs a postgresql:// URL names, in order; [] for none (a socket)."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    hosts: list[tuple[str, int | None]] = []
    for spec in filter(None, netloc.split(",")):
        if spec.startswith("["):  # [IPv6]:port
            address, _, rest = spec[1:].partition("]")
            port = rest.removeprefix(":")
        else:
            address, _, port = spec.partition(":")
        if port and not (port.isdigit() and 0 < int(port) <= 65535):
            raise ValueError(f"invalid port {port!r}")
        hosts.append((unquote(address), int(port) if port else None))
    return hosts


def check_cluster_url(url: str) -> None:
    """ValueError when `url` names several hosts but does not ask for a writable session:
    the service would then write to whichever answered first, standby or not."""
    if len(hosts_of(url)) <= 1:
        return
    asked = parse_qs(urlsplit(url).query).get("target_session_attrs", [""])[-1]
    if asked not in WRITABLE_SESSION_ATTRS:
        raise ValueError(
            "a DATABASE_URL with several hosts needs target_session_attrs=read-write"
            " (or primary), or the service may write to a standby"
        )
