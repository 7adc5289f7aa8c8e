"""`python -m bench --quick` runs from a checkout: every scenario, real processes, wrk."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from ..helpers import required_tool

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
async def test_the_benchmark_command_runs_every_scenario() -> None:
    required_tool("wrk", "wrk")
    required_tool("chromium", "chromium")  # the receipt row: a real page posts them
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench",
        "--quick",
        "--no-write",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},  # wide enough for rich's tables
    )
    output, _ = await process.communicate()
    text = output.decode()
    assert process.returncode == 0, text[-3000:]
    for heading in (
        "The design document's table",
        "Send throughput against a healthy Pusher",
        "Where the machine's CPU goes",
        "Does a slow Pusher move the send latency?",
        "spans exported per request",
        "from commit to",
        "the recipient's receipt (Chromium)",
        "Burst of 1,000 sends",
        "drained in",
    ):
        assert heading in text, f"missing {heading!r}:\n{text[-3000:]}"
    assert "faster" in text and "Errors" in text
    # every message got its receipt, and the service's histogram counted each one
    receipts = re.search(r"([\d,]+)\s+of\s+([\d,]+)\s+messages\s+got\s+a\s+receipt", text)
    assert receipts, f"no receipt count:\n{text[-3000:]}"
    got, sent = (int(n.replace(",", "")) for n in receipts.groups())
    assert got == sent > 0, receipts.group(0)
    counted = re.search(r"client_receipt.{0,10}?\s+counted\s+([\d,]+)", text, re.DOTALL)
    assert counted and int(counted.group(1).replace(",", "")) == got, text[-3000:]
    assert re.search(r"ms\s+to\s+within\s+0\.\d{3}\s+ms", text), "the histogram's mean agrees"
