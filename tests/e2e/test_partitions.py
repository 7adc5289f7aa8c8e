"""Network partitions between real hosts (network namespaces): a replica loses PostgreSQL
while clients keep sending. It must answer 503 fast (never 500, never hang), report not ready,
leave the other replica untouched, recover by itself after the heal, and lose nothing that
it acknowledged."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from service.devtools.databases import migrated_database
from service.devtools.postgres import LocalPostgres
from service.devtools.service_env import service_environment
from service.sandbox import SandboxConfig

from ..helpers import JWT_SECRET, auth
from ..netns import Hosts, NetnsUnavailable

pytestmark = pytest.mark.e2e

PG, PUSHER, A, B = "msgtest-pg", "msgtest-pusher", "msgtest-a", "msgtest-b"
PG_IP, PUSHER_IP, A_IP, B_IP = "10.77.0.2", "10.77.0.3", "10.77.0.11", "10.77.0.12"
SERVICE_PORT, SANDBOX_PORT, PG_PORT = 8080, 6001, 5432

CONNECT_TIMEOUT, COMMAND_TIMEOUT = 1.0, 2.0
# The service's defaults, in case it does not read the DB_* variables: the wait bound below
# must hold for the timeouts actually in force.
EFFECTIVE_COMMAND_TIMEOUT, EFFECTIVE_CONNECT_TIMEOUT = 5.0, 2.0
WAIT_MARGIN = 3.0
LEASE = 3.0
#: how long the cut lasts once A reports not ready: past the lease, so B could take A's claims
CUT_HOLD = LEASE + 2

QUICK = {
    "DB_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT),
    "DB_COMMAND_TIMEOUT_SECONDS": str(COMMAND_TIMEOUT),
    "DELIVERY_LEASE_SECONDS": str(LEASE),
    "RELAY_POLL_SECONDS": "0.1",
    "DELIVERY_RETRY_BASE_SECONDS": "0.1",
    "DELIVERY_RETRY_CAP_SECONDS": "0.5",
    "CIRCUIT_COOLDOWN_SECONDS": "0.3",
    "LOG_LEVEL": "WARNING",
}


class NamespacedPostgres(LocalPostgres):
    """LocalPostgres run on the msgtest-pg host, listening on its address."""

    def start(self) -> None:
        hba = self.data_dir / "pg_hba.conf"
        if "10.77.0.0/24" not in hba.read_text():
            with hba.open("a") as lines:
                lines.write("host all all 10.77.0.0/24 trust\n")
        super().start()

    def _command(self, tool: str, *args: str) -> list[str]:
        return ["ip", "netns", "exec", PG, *super()._command(tool, *args)]


@dataclass
class Send:
    replica: str
    sender: int
    client_id: str
    started: float
    status: int | str = 0  # an HTTP status, or the client-side error's name
    waited: float = 0.0
    message_id: int | None = None


@dataclass
class Traffic:
    sends: list[Send] = field(default_factory=list)
    running: bool = True


@pytest.fixture
async def hosts() -> AsyncIterator[Hosts]:
    try:
        created = await Hosts.create()
    except NetnsUnavailable as error:
        pytest.skip(f"test hosts unavailable: {error}")
    async with created:
        yield created


async def _wait_http(session: aiohttp.ClientSession, url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not answer 200 within {timeout}s")


async def _status(session: aiohttp.ClientSession, url: str, timeout: float = 5.0) -> int | str:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            return response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        return type(error).__name__


async def _until(session: aiohttp.ClientSession, url: str, status: int, timeout: float) -> float:
    """Seconds until GET `url` answers `status`."""
    start = time.monotonic()
    seen: list[int | str] = []
    while (last := await _status(session, url)) != status:
        seen.append(last)
        assert time.monotonic() - start < timeout, f"{url} never answered {status}: {seen}"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def _send(session: aiohttp.ClientSession, replica: str, send: Send) -> None:
    body = {"recipientId": 1000 + send.sender, "content": send.client_id}
    body["clientMessageId"] = send.client_id
    try:
        async with session.post(
            f"http://{replica}:{SERVICE_PORT}/api/messages/send",
            json=body,
            headers=auth(send.sender),
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response:
            send.status = response.status
            if response.status == 200:
                send.message_id = int((await response.json())["message"]["id"])
            else:
                await response.read()
    except (aiohttp.ClientError, TimeoutError) as error:
        send.status = type(error).__name__
    send.waited = time.monotonic() - send.started


async def _sender(
    session: aiohttp.ClientSession, replica: str, lane: int, traffic: Traffic
) -> None:
    """Steady sends to `replica`: a new one every 20 ms, each awaited in its own task so a
    slow answer does not slow the stream."""
    pending: set[asyncio.Task[None]] = set()
    n = 0
    while traffic.running:
        sender = 1 + lane * 10 + n % 10
        send = Send(replica, sender, f"{replica}-{lane}-{n}", time.monotonic())
        traffic.sends.append(send)
        task = asyncio.create_task(_send(session, replica, send))
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
        await asyncio.sleep(0.02)
    if pending:
        await asyncio.gather(*pending)


async def _events(session: aiohttp.ClientSession) -> list[int]:
    async with session.get(f"http://{PUSHER_IP}:{SANDBOX_PORT}/_sandbox/events") as response:
        body: dict[str, Any] = await response.json()
    return [int(json.loads(event["data"])["id"]) for event in body["events"]]


@pytest.mark.xfail(
    strict=True,
    reason=(
        "known bug (issue 15): with replica A cut from PostgreSQL by a silent drop, sends to A "
        "wait until the path heals (12 s for a 10 s cut, growing with the cut) instead of "
        "answering 503 within the pool/statement timeouts: sends queued for group commit have "
        "no deadline of their own, and the statement on the dead connection does not give its "
        "connection back promptly; /readyz takes 6 s. Data is safe: 0 lost, 0 duplicates."
    ),
)
async def test_replica_postgres_partition_during_sends(hosts: Hosts, tmp_path: Path) -> None:
    started = time.monotonic()
    postgres = await asyncio.to_thread(_start_postgres, tmp_path)
    database_url = await migrated_database(postgres, "service_test")

    sandbox = await hosts.run(
        PUSHER,
        [sys.executable, "-m", "service.sandbox", "--host", "0.0.0.0", "--port", str(SANDBOX_PORT)],
        env=service_environment(
            database_url=database_url, sandbox=SandboxConfig(), sandbox_port=0, jwt_secret=""
        ),
    )
    env = service_environment(
        database_url=database_url,
        sandbox=SandboxConfig(),
        sandbox_port=SANDBOX_PORT,
        jwt_secret=JWT_SECRET,
        HOST="0.0.0.0",
        PORT=str(SERVICE_PORT),
        PUSHER_HOST=PUSHER_IP,
        **QUICK,
    )
    replicas = {
        A_IP: await hosts.run(A, [sys.executable, "-m", "service", "serve"], env),
        B_IP: await hosts.run(B, [sys.executable, "-m", "service", "serve"], env),
    }
    a_ready, b_ready = (f"http://{ip}:{SERVICE_PORT}/readyz" for ip in (A_IP, B_IP))
    traffic = Traffic()
    senders: list[asyncio.Task[None]] = []
    try:
        # no connection limit: sends hanging on A must not queue the requests meant for B
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await _wait_http(session, f"http://{PUSHER_IP}:{SANDBOX_PORT}/_sandbox/events")
            await _wait_http(session, a_ready)
            await _wait_http(session, b_ready)
            senders += [
                asyncio.create_task(_sender(session, replica, lane, traffic))
                for lane, replica in enumerate((A_IP, B_IP, A_IP, B_IP))
            ]
            await asyncio.sleep(2)

            # Pusher refuses for a moment: A holds claimed, undelivered work when it is cut off
            async with session.post(
                f"http://{PUSHER_IP}:{SANDBOX_PORT}/_sandbox/faults",
                json={"kind": "status", "status": 503},
            ):
                pass
            await asyncio.sleep(1)
            cut_at = time.monotonic()
            acked_by_a_before_cut = {
                s.message_id
                for s in traffic.sends
                if s.replica == A_IP and s.status == 200 and s.started + s.waited < cut_at
            }
            await hosts.cut(A, PG_IP)
            async with session.delete(f"http://{PUSHER_IP}:{SANDBOX_PORT}/_sandbox/faults"):
                pass

            readyz_waits: list[tuple[int | str, float]] = []
            while time.monotonic() - cut_at < 12:
                asked = time.monotonic()
                answer = await _status(session, a_ready, timeout=15)
                readyz_waits.append((answer, time.monotonic() - asked))
                if answer == 503:
                    break
            not_ready_after = time.monotonic() - cut_at
            print(f"\nA readyz after the cut (status, seconds): {readyz_waits}")
            assert readyz_waits[-1][0] == 503, f"A's readyz never answered 503: {readyz_waits}"
            assert await _status(session, b_ready) == 200
            await asyncio.sleep(CUT_HOLD)  # B takes over A's lapsed claims meanwhile
            assert await _status(session, a_ready) == 503
            delivered_during_cut = set(await _events(session))

            heal_at = time.monotonic()
            await hosts.heal(A, PG_IP)
            ready_after_heal = await _until(session, a_ready, 200, timeout=30)
            while True:  # a send to A answers 200 again
                probe = Send(A_IP, 99, f"probe-{time.monotonic()}", time.monotonic())
                await _send(session, A_IP, probe)
                if probe.status == 200:
                    traffic.sends.append(probe)
                    break
                assert time.monotonic() - heal_at < 30, "A never took sends again"
                await asyncio.sleep(0.1)
            recovered_after = time.monotonic() - heal_at
            await asyncio.sleep(1)
            traffic.running = False
            await asyncio.gather(*senders)

            acknowledged = {s.message_id for s in traffic.sends if s.message_id is not None}
            deadline = time.monotonic() + 30
            while not acknowledged <= set(events := await _events(session)):
                assert time.monotonic() < deadline, "acknowledged messages never delivered"
                await asyncio.sleep(0.2)
    finally:
        traffic.running = False
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        for process in [*replicas.values(), sandbox]:
            if process.returncode is None:
                process.kill()
                await process.wait()
        stored = await _stored(database_url, traffic)
        await asyncio.to_thread(postgres.stop)

    during_cut = [s for s in traffic.sends if cut_at <= s.started < heal_at]
    a_cut = [s for s in during_cut if s.replica == A_IP]
    b_cut = [s for s in during_cut if s.replica == B_IP]
    statuses = {s.status for s in a_cut}
    longest = max(s.waited for s in a_cut)
    bound = EFFECTIVE_COMMAND_TIMEOUT + EFFECTIVE_CONNECT_TIMEOUT + WAIT_MARGIN
    counts: dict[int, int] = {}
    for event in events:
        counts[event] = counts.get(event, 0) + 1
    duplicates = sum(1 for n in counts.values() if n > 1)
    lost = acknowledged - set(counts)
    print(
        f"\npartition A<->PG: sends acknowledged {len(acknowledged)}, delivered"
        f" {len(acknowledged & set(counts))}, lost {len(lost)}, duplicates {duplicates}"
        f" (ids with >1 event), longest send wait on A during the cut {longest:.2f}s,"
        f" A not ready {not_ready_after:.2f}s after the cut, readyz 200 {ready_after_heal:.2f}s"
        f" and sends 200 {recovered_after:.2f}s after the heal; A during the cut:"
        f" {sorted(map(str, statuses))} over {len(a_cut)} sends; A acked before the cut"
        f" {len(acked_by_a_before_cut)}, of which delivered during the cut"
        f" {len(acked_by_a_before_cut & delivered_during_cut)}; total {time.monotonic() - started:.1f}s"
    )
    slowest = sorted(a_cut, key=lambda s: -s.waited)[:8]
    print(
        "slowest sends to A during the cut (status, started after cut, waited):",
        [(s.status, round(s.started - cut_at, 2), round(s.waited, 2)) for s in slowest],
    )
    answered_in_cut = [s for s in a_cut if s.started + s.waited < heal_at]
    print(
        f"sends to A answered before the heal: {len(answered_in_cut)} of {len(a_cut)};"
        f" the cut lasted {heal_at - cut_at:.2f}s"
    )
    ok_in_cut = [s for s in a_cut if s.status == 200]
    print(
        "200s from A during the cut (started after cut, waited):",
        [(round(s.started - cut_at, 2), round(s.waited, 2)) for s in ok_in_cut][:10],
        len(ok_in_cut),
    )
    assert 503 in statuses, statuses
    assert statuses <= {200, 503}, statuses  # never 500, never a dropped connection
    assert longest <= bound, f"a send to A waited {longest:.2f}s (bound {bound}s)"
    assert b_cut and all(s.status == 200 for s in b_cut), {s.status for s in b_cut}
    assert acked_by_a_before_cut <= set(counts)
    assert not lost, sorted(lost)[:20]
    assert stored == {s.message_id: 1 for s in traffic.sends if s.status == 200}


def _start_postgres(tmp_path: Path) -> NamespacedPostgres:
    base = tmp_path / "pg"
    base.mkdir()
    base.chmod(0o755)  # the postgres system user must reach its data folder
    tmp_path.chmod(0o755)
    postgres = NamespacedPostgres(base / "data", PG_PORT, durable=False, listen_address=PG_IP)
    postgres.initialise()
    postgres.start()
    return postgres


async def _stored(database_url: str, traffic: Traffic) -> dict[int, int]:
    """Rows per acknowledged (sender, clientMessageId), keyed by the acknowledged id."""
    acknowledged = {(s.sender, s.client_id): s.message_id for s in traffic.sends if s.status == 200}
    connection = await asyncpg.connect(database_url, timeout=5)
    try:
        rows = await connection.fetch(
            "SELECT sender_id, client_message_id, count(*) AS n, min(id) AS id FROM messages"
            " GROUP BY sender_id, client_message_id"
        )
    finally:
        await connection.close()
    found: dict[int, int] = {}
    for row in rows:
        key = (int(row["sender_id"]), str(row["client_message_id"]))
        if key in acknowledged and acknowledged[key] == row["id"]:
            found[int(row["id"])] = int(row["n"])
    return found
