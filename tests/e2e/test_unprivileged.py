"""`python -m service serve` the way the Kubernetes manifest runs the image: as a user that
owns nothing, in a working directory and HOME it cannot write, with no bytecode cache.

As root (CI), the process runs as `nobody` with no capabilities and no_new_privs (setpriv),
the manifest's runAsNonRoot / drop ALL / allowPrivilegeEscalation: false. When the suite
itself runs as another user it cannot switch: the process then runs as that user, which is
already unprivileged; the directory is still one it cannot write (0555, and a non-root owner
gets no override).

If `nobody` cannot reach the interpreter, the virtualenv or the repository (a Python under
/root, which is 0700, as pyenv puts it), no file's permissions are changed: the process gets
a private mount namespace in which the blocking directory is an empty tmpfs holding only
those trees, bind-mounted at their own paths. The same interpreter and venv run as before;
the service process itself still has no capability.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shlex
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest

import service
from service.sandbox import Fault

from ..conftest import Sandbox
from ..helpers import eventually
from .processes import ServiceProcess

pytestmark = pytest.mark.e2e

REPOSITORY = Path(service.__file__).resolve().parent.parent
#: where a process that ignores TMPDIR (tempfile falls back to them) would write
TEMPORARY_DIRECTORIES = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))
#: inherited variables that would make Python or prometheus_client write files
WRITING_VARIABLES = ("PYTHONPYCACHEPREFIX", "PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    name: str

    @property
    def switched(self) -> bool:
        """Whether the service runs as another user than the suite (only root can switch)."""
        return self.uid != os.geteuid()


def unprivileged_identity() -> Identity:
    if os.geteuid() != 0:
        return Identity(os.geteuid(), os.getegid(), pwd.getpwuid(os.geteuid()).pw_name)
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:  # a minimal image without the entry: the uid alone is enough
        return Identity(65534, 65534, "nobody")
    return Identity(nobody.pw_uid, nobody.pw_gid, "nobody")


def searchable(directory: Path, who: Identity) -> bool:
    """Whether `who` (no supplementary groups: setpriv clears them) may enter `directory`."""
    status = directory.stat()
    if status.st_uid == who.uid:
        bit = stat.S_IXUSR
    elif status.st_gid == who.gid:
        bit = stat.S_IXGRP
    else:
        bit = stat.S_IXOTH
    return bool(status.st_mode & bit)


def first_blocked(path: Path, who: Identity) -> Path | None:
    """The outermost directory on the way to `path` (itself included) `who` cannot enter."""
    for directory in [*reversed(path.parents), path]:
        if not searchable(directory, who):
            return directory
    return None


def trees_the_process_reads() -> list[Path]:
    """The interpreter's installation, the venv and the repository; none inside another."""
    trees = {
        Path(sys.base_prefix).resolve(),
        Path(sys.executable).resolve().parent,
        Path(sys.prefix).resolve(),
        REPOSITORY,
    }
    return sorted(t for t in trees if not any(o != t and o in t.parents for o in trees))


def mount_namespace_script(who: Identity, staging: Path) -> str | None:
    """Shell commands, run as root in a private mount namespace, that make every tree the
    process reads reachable for `who`; None when they already are."""
    grafts: dict[Path, Path] = {}  # tree -> the blocked directory above it
    for tree in trees_the_process_reads():
        blocked = first_blocked(tree, who)
        if blocked is None:
            continue
        if blocked == tree:
            pytest.fail(f"{tree} itself is closed to {who.name}: nothing to graft it into")
        grafts[tree] = blocked
    if not grafts:
        return None
    covers = {b for b in grafts.values() if not any(o in b.parents for o in grafts.values())}
    q = shlex.quote
    commands = ["set -e"]
    stages = {tree: staging / f"tree{n}" for n, tree in enumerate(grafts)}
    for tree, stage in stages.items():
        stage.mkdir()
        commands.append(f"mount --rbind {q(str(tree))} {q(str(stage))}")
    commands += [f"mount -t tmpfs -o mode=0755,size=1m tmpfs {q(str(d))}" for d in sorted(covers)]
    for tree, stage in stages.items():
        commands += [f"mkdir -p {q(str(tree))}", f"mount --move {q(str(stage))} {q(str(tree))}"]
    return "; ".join(commands)


def command_prefix(who: Identity, staging: Path) -> list[str]:
    """What runs before `python -m service serve`; the last exec leaves the service's PID the
    one the test signals."""
    if not who.switched:
        return []
    drop = [
        shutil.which("setpriv") or pytest.fail("setpriv (util-linux) is needed to drop root"),
        f"--reuid={who.uid}",
        f"--regid={who.gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]
    script = mount_namespace_script(who, staging)
    if script is None:
        return drop
    unshare = shutil.which("unshare") or pytest.fail("unshare (util-linux) is needed")
    return [
        unshare,
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        f'{script}; exec "$@"',
        "unprivileged-service",
        *drop,
    ]


class UnprivilegedService(ServiceProcess):
    """`ServiceProcess`, started through `command_prefix` in `directory`."""

    def __init__(
        self,
        database_url: str,
        sandbox: Sandbox,
        *,
        who: Identity,
        directory: Path,
        staging: Path,
        **env: str,
    ) -> None:
        unwritable = str(directory)
        super().__init__(
            database_url,
            sandbox,
            HOME=unwritable,
            TMPDIR=unwritable,
            PWD=unwritable,
            USER=who.name,
            LOGNAME=who.name,
            PYTHONDONTWRITEBYTECODE="1",
            **env,
        )
        for name in WRITING_VARIABLES:
            self._env.pop(name, None)
        self.directory = directory
        self.prefix = command_prefix(who, staging)

    async def start(self) -> UnprivilegedService:
        self.process = await asyncio.create_subprocess_exec(
            *self.prefix,
            sys.executable,
            "-m",
            "service",
            "serve",
            cwd=self.directory,
            env=self._env,
            stderr=asyncio.subprocess.PIPE,
        )
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"{self.base}/healthz") as response:
                        if response.status == 200:
                            return self
                except aiohttp.ClientConnectionError:
                    pass
                if self.process.returncode is not None:
                    pytest.fail(f"service exited during start-up:\n{await self.stderr()}")
                await asyncio.sleep(0.05)
        raise AssertionError("service did not start")


@pytest.fixture
def unwritable_directory() -> Iterator[Path]:
    """An empty directory in /tmp (which every user can enter: pytest's own tmp_path is 0700
    under root), owned by the suite's user, mode 0555."""
    directory = Path(tempfile.mkdtemp(prefix="msgsvc-unwritable-"))
    directory.chmod(0o555)
    yield directory
    directory.chmod(0o755)
    shutil.rmtree(directory)


def owned_files(uid: int) -> set[Path]:
    found: set[Path] = set()
    for top in TEMPORARY_DIRECTORIES:
        for root, directories, files in os.walk(top, onerror=lambda _: None):
            for name in directories + files:
                path = Path(root, name)
                try:
                    if path.lstat().st_uid == uid:
                        found.add(path)
                except OSError:  # gone meanwhile: another test's file
                    pass
    return found


def directory_state(directory: Path) -> tuple[int, int, list[Path]]:
    """Its mode, its mtime (any entry created and removed again changes it) and its entries."""
    status = directory.stat()
    return stat.S_IMODE(status.st_mode), status.st_mtime_ns, sorted(directory.iterdir())


def process_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


async def test_serves_sends_and_drains_as_an_unprivileged_user_in_an_unwritable_directory(
    database_url: str,
    sandbox: Sandbox,
    db: asyncpg.Connection,
    unwritable_directory: Path,
    tmp_path: Path,
) -> None:
    who = unprivileged_identity()
    assert who.uid != 0, "the service must not run as root"
    untouched = directory_state(unwritable_directory)
    assert untouched[0] == 0o555 and untouched[2] == []
    before = owned_files(who.uid) if who.switched else set()
    service_process = UnprivilegedService(
        database_url,
        sandbox,
        who=who,
        directory=unwritable_directory,
        staging=tmp_path,
        LOG_LEVEL="INFO",
    )
    await service_process.start()
    try:
        assert service_process.process is not None
        status = process_status(service_process.process.pid)
        assert status["Uid"].split() == [str(who.uid)] * 4
        assert status["Gid"].split() == [str(who.gid)] * 4
        if who.switched:
            assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0
            assert status["NoNewPrivs"] == "1"
        cwd = Path(os.readlink(f"/proc/{service_process.process.pid}/cwd"))
        assert cwd == unwritable_directory

        async with aiohttp.ClientSession() as session:
            async with session.get(f"{service_process.base}/readyz") as response:
                assert response.status == 200
            first = await service_process.send(session, 1, 2, "from nobody")
            (event,) = await sandbox.state.wait_for_events(1)
            assert json.loads(event.data)["id"] == first["id"]

            sandbox.state.faults.set(Fault("hold"))
            second = await service_process.send(session, 1, 2, "drained on SIGTERM")
        await eventually(lambda: sandbox.state.faults.held == 1)
        service_process.signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        assert service_process.process.returncode is None  # draining, not gone
        sandbox.state.faults.release()
        assert await service_process.wait(timeout=15) == 0
        assert [json.loads(e.data)["id"] for e in sandbox.state.events] == [
            first["id"],
            second["id"],
        ]
    finally:
        await service_process.stop()
    stderr = await service_process.stderr()

    assert directory_state(unwritable_directory) == untouched
    for refusal in ("Permission denied", "Read-only file system", "PermissionError"):
        assert refusal not in stderr  # no write that failed and was logged and survived
    if who.switched:  # nor did it write where tempfile falls back to when TMPDIR is closed
        assert owned_files(who.uid) - before == set()
