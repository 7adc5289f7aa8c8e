"""The fault tests' cluster: test hosts built for the test and removed after it, even when it
fails; a skip with the reason where namespaces cannot be made (not root)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from ..netns import Hosts, NetnsUnavailable
from .cluster import Cluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    try:
        hosts = await Hosts.create()
    except NetnsUnavailable as error:
        if os.environ.get("REQUIRE_TEST_HOSTS"):  # .ci/run sets it: CI runs as root
            pytest.fail(f"test hosts unavailable, and REQUIRE_TEST_HOSTS is set: {error}")
        pytest.skip(f"test hosts unavailable: {error}")
    await asyncio.to_thread(tmp_path.chmod, 0o755)  # the postgres user must reach it
    async with hosts:
        # no connection limit: sends hanging on one replica must not queue the others'
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            running = Cluster(hosts, tmp_path, session)
            try:
                yield running
            finally:
                await running.stop()
