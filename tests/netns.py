"""Test hosts: network namespaces on one private /24, joined by a bridge in a "switch"
namespace. The test itself talks from the root namespace (10.77.0.1) through a veth into the
bridge. `cut` / `heal` make a silent partition: packets are dropped, nothing is refused, so
connections time out as they do when a network path dies.

Needs root (CAP_NET_ADMIN); `Hosts.create()` raises `NetnsUnavailable` otherwise, which the
tests turn into a skip with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

PREFIX = "msgtest-"
SWITCH = f"{PREFIX}switch"
ROOT_VETH = "msgtest-root"  # the root namespace's end, 10.77.0.1
ROOT_IP = "10.77.0.1"
SUBNET = 24

#: host name -> address
HOSTS: dict[str, str] = {
    f"{PREFIX}pg": "10.77.0.2",
    f"{PREFIX}pusher": "10.77.0.3",
    f"{PREFIX}pg2": "10.77.0.4",  # a PostgreSQL standby
    f"{PREFIX}a": "10.77.0.11",
    f"{PREFIX}b": "10.77.0.12",
}

#: the MAC a cut host is told its peer has: no port owns it, so the bridge floods the frames
#: and no namespace takes them: a silent drop that needs no packet filter
_NOWHERE_MAC = "02:00:00:00:77:77"


class NetnsUnavailable(RuntimeError):
    """Namespaces cannot be created here (not root, no CAP_NET_ADMIN, no iproute2)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def _in(namespace: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _ip("netns", "exec", namespace, *argv, check=check)


def _namespaces() -> list[str]:
    listed = _ip("netns", "list", check=False).stdout.splitlines()
    return [line.split()[0] for line in listed if line.strip()]


def _kill_and_delete(namespace: str) -> None:
    """SIGKILL what still runs in `namespace` (only what these tests started there), then
    delete it."""
    pids = _ip("netns", "pids", namespace, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _ip("netns", "delete", namespace, check=False)


def _remove_stale() -> None:
    for namespace in _namespaces():
        if namespace.startswith(PREFIX):
            _kill_and_delete(namespace)
    _ip("link", "delete", ROOT_VETH, check=False)


class Hosts:
    """The test hosts; `async with await Hosts.create() as hosts:` removes them at the end."""

    def __init__(self) -> None:
        self.addresses = dict(HOSTS)
        self.use_nft = shutil.which("nft") is not None
        self._cuts: set[tuple[str, str]] = set()

    @classmethod
    async def create(cls) -> Hosts:
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root (CAP_NET_ADMIN)")
        if shutil.which("ip") is None:
            raise NetnsUnavailable("iproute2 (`ip`) is not installed")
        hosts = cls()
        try:
            await asyncio.to_thread(hosts._build)
        except BaseException:
            await asyncio.to_thread(hosts._remove)
            raise
        return hosts

    def _build(self) -> None:
        _remove_stale()
        _ip("netns", "add", SWITCH)
        _in(SWITCH, "ip", "link", "set", "lo", "up")
        _in(SWITCH, "ip", "link", "add", "br0", "type", "bridge")
        _in(SWITCH, "ip", "link", "set", "br0", "up")
        for index, (host, address) in enumerate(self.addresses.items()):
            _ip("netns", "add", host)
            _in(host, "ip", "link", "set", "lo", "up")
            here, there = f"mt{index}h", f"mt{index}s"
            _ip("link", "add", here, "type", "veth", "peer", "name", there)
            _ip("link", "set", here, "netns", host)
            _ip("link", "set", there, "netns", SWITCH)
            _in(host, "ip", "link", "set", here, "name", "eth0")
            _in(host, "ip", "addr", "add", f"{address}/{SUBNET}", "dev", "eth0")
            _in(host, "ip", "link", "set", "eth0", "up")
            self._plug(there)
        _ip("link", "add", ROOT_VETH, "type", "veth", "peer", "name", "mtroot")
        _ip("link", "set", "mtroot", "netns", SWITCH)
        _ip("addr", "add", f"{ROOT_IP}/{SUBNET}", "dev", ROOT_VETH)
        _ip("link", "set", ROOT_VETH, "up")
        self._plug("mtroot")

    @staticmethod
    def _plug(switch_end: str) -> None:
        _in(SWITCH, "ip", "link", "set", switch_end, "master", "br0")
        _in(SWITCH, "ip", "link", "set", switch_end, "up")

    async def run(
        self, host: str, argv: Sequence[str], env: Mapping[str, str], *, log: Path
    ) -> asyncio.subprocess.Process:
        """`argv` on `host` (ip netns exec replaces itself with it: the pid is the program's),
        its output appended to `log` (a file, not a pipe nobody reads: a full pipe would stall
        the program at its next log line)."""
        with log.open("ab") as output:
            return await asyncio.create_subprocess_exec(
                "ip",
                "netns",
                "exec",
                host,
                *argv,
                env=dict(env),
                stdout=output,
                stderr=output,
            )

    async def cut(self, src_host: str, dst_ip: str) -> None:
        """Silently drop traffic between `src_host` and `dst_ip`, both ways."""
        await asyncio.to_thread(self._set_cut, src_host, dst_ip, True)

    async def heal(self, src_host: str, dst_ip: str) -> None:
        await asyncio.to_thread(self._set_cut, src_host, dst_ip, False)

    async def isolate(self, host: str) -> None:
        """Cut `host` off from every other host (and from the test): a machine that vanished."""
        for other in [ROOT_IP, *self.addresses.values()]:
            if other != self.addresses[host]:
                await self.cut(host, other)

    async def rejoin(self, host: str) -> None:
        for other in [ROOT_IP, *self.addresses.values()]:
            if other != self.addresses[host]:
                await self.heal(host, other)

    def _set_cut(self, src_host: str, dst_ip: str, cut: bool) -> None:
        dst_host = self._host_of(dst_ip)
        src_ip = self.addresses[src_host]
        sides = [(src_host, dst_ip)] + ([(dst_host, src_ip)] if dst_host else [])
        for namespace, peer in sides:
            (self._cuts.add if cut else self._cuts.discard)((namespace, peer))
            if self.use_nft:
                self._nft(namespace, sorted(p for n, p in self._cuts if n == namespace))
            else:
                self._neighbour(namespace, peer, cut)

    def _host_of(self, address: str) -> str | None:
        return next((h for h, a in self.addresses.items() if a == address), None)

    @staticmethod
    def _nft(namespace: str, peers: list[str]) -> None:
        """The namespace's `cut` table rebuilt to drop what goes to or comes from `peers`:
        one atomic `nft -f` transaction, so a heal of one path never opens another."""
        script = ["table inet cut", "delete table inet cut"]
        if peers:
            addresses = ", ".join(peers)
            script += [
                "table inet cut {",
                "  chain out { type filter hook output priority 0; policy accept;",
                f"    ip daddr {{ {addresses} }} drop",
                "  }",
                "  chain in { type filter hook input priority 0; policy accept;",
                f"    ip saddr {{ {addresses} }} drop",
                "  }",
                "}",
            ]
        result = subprocess.run(
            ["ip", "netns", "exec", namespace, "nft", "-f", "-"],
            input="\n".join(script) + "\n",
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"nft in {namespace} failed: {result.stderr.strip()}")

    @staticmethod
    def _neighbour(namespace: str, peer: str, cut: bool) -> None:
        if cut:  # frames for `peer` go to a MAC nobody has: dropped, nothing answers
            neighbour = ("lladdr", _NOWHERE_MAC, "nud", "permanent", "dev", "eth0")
            _in(namespace, "ip", "neigh", "replace", peer, *neighbour)
        else:
            _in(namespace, "ip", "neigh", "del", peer, "dev", "eth0", check=False)

    def _remove(self) -> None:
        for namespace in [*self.addresses, SWITCH]:
            if namespace in _namespaces():
                _kill_and_delete(namespace)
        _ip("link", "delete", ROOT_VETH, check=False)

    async def remove(self) -> None:
        await asyncio.to_thread(self._remove)

    async def __aenter__(self) -> Hosts:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.remove()
