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
    required_tool("node", "nodejs")  # the design document's system, bench/document/
    required_tool("npm", "npm")  # which bench installs from its lock file when it must
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
        "Send throughput against a healthy Pusher: the service, the bare handler and the "
        "design document's system",
        "req/s ÷ document's",
        "Where the machine's CPU goes",
        "Does a slow Pusher move the send latency?",
        "spans exported per request",
        "from commit to",
        "the recipient's receipt (Chromium)",
        "Burst of 1,000 sends",
        "drained in",
        "A Pusher outage: every call answered 503",
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
    _check_three_systems(text)
    _check_outage(text)
    hol = re.search(r"sends\s+in\s+one\s+conversation.{0,60}?accepted\s+([\d.]+)\s+s", text, re.S)
    assert hol and float(hol.group(1)) > 0, f"no head-of-line row:\n{text[-3000:]}"


def _number(cell: str) -> float:
    return float(cell.replace(",", ""))


def _check_three_systems(text: str) -> None:
    """Each system served at 50 connections; the document's system made one Pusher call per
    send, all accepted (a healthy Pusher); the bare handler none."""
    rps = re.search(r"^\s*50\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+[\d.]+ / [\d.]+ ms", text, re.M)
    assert rps, f"no throughput row at 50 connections:\n{text[-3000:]}"
    assert all(_number(n) > 50 for n in rps.groups()), rps.group(0)
    cpu = {}
    for system in ("service", "bare", "document's"):
        row = re.search(
            rf"^\s*50\s+{system}\s+([\d.]+) ms\s+([\d.]+) ms\s+([\d.]+) ms\s+([\d.]+)\s+([\d.]+)",
            text,
            re.M,
        )
        assert row, f"no CPU row for {system}:\n{text[-3000:]}"
        cpu[system] = [float(n) for n in row.groups()]
    server, postgres, _, calls, events = cpu["document's"]
    assert server > 0 and postgres > 0, cpu
    assert 0.9 <= calls <= 1.3 and 0.9 <= events <= 1.3, cpu  # one trigger per send
    assert cpu["bare"][3] == 0, cpu  # the bare handler calls no Pusher
    assert 0 < cpu["service"][3] < 1 and 0.9 <= cpu["service"][4] <= 1.3, cpu  # batched


def _check_outage(text: str) -> None:
    """The service lost nothing to the outage; the document's system lost the events of
    every send made while Pusher failed (quick plan: 50 messages/s, 2 s)."""
    rows = {}
    for system in ("the service", "the document's system"):
        row = re.search(
            rf"{system}\s+([\d,]+) \((\d+) errors\)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)", text
        )
        assert row, f"no outage row for {system}:\n{text[-3000:]}"
        rows[system] = [int(_number(n)) for n in row.groups()]
    sent, errors, stored, delivered, lost = rows["the service"]
    assert errors == 0 and sent == stored == delivered > 0 and lost == 0, rows
    sent, errors, stored, delivered, lost = rows["the document's system"]
    assert errors == 0 and sent == stored > 0 and lost == stored - delivered, rows
    assert 50 <= lost <= 150, rows  # about 100: every send during the 2 s outage
