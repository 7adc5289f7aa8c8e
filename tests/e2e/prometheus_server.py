"""Debian's Prometheus for a test: the project's rules, a 1 s scrape and evaluation interval,
the scrape jobs the test gives; stopped when the block ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml

from service.devtools.postgres import free_port

from ..helpers import required_tool

ROOT = Path(__file__).resolve().parents[2]


def prometheus_binary() -> str:
    return required_tool("prometheus", "prometheus")


@contextlib.asynccontextmanager
async def running_prometheus(
    folder: Path, scrape_configs: list[dict[str, Any]], *flags: str
) -> AsyncIterator[str]:
    """Its base URL while it runs (it may still be starting: queries wait for data anyway)."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in sorted((ROOT / "alerts").glob("*.rules.yml"))],
        "scrape_configs": scrape_configs,
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = await asyncio.create_subprocess_exec(
        prometheus_binary(),
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        *flags,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        await process.wait()
