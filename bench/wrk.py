"""Load from wrk (Debian's package), scripted in Lua: sends spread over many users' tokens.

A Python load generator saturates near the service's own speed on this 2-core machine, so the
throughput runs use wrk, whose C event loop costs far less per request."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .load import bearer

_SCRIPT = """
local tokens = {%(tokens)s}
local n = 0
request = function()
  n = n + 1
  local user = n %% #tokens + 1
  local recipient = user %% #tokens + 1
  local body = '{"recipientId":' .. recipient .. ',"senderId":' .. user ..
               ',"content":"bench message ' .. n .. '"}'
  return wrk.format("POST", "/api/messages/send",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[user]}, body)
end
done = function(summary, latency, requests)
  local codes = summary.errors.status
  io.write(string.format(
    'WRK_JSON {"requests":%%d,"seconds":%%f,"non2xx":%%d,"socket_errors":%%d,' ..
    '"p50_ms":%%f,"p90_ms":%%f,"p99_ms":%%f,"max_ms":%%f,"mean_ms":%%f}\\n',
    summary.requests, summary.duration / 1e6, codes,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def write_script(path: Path, users: int = 200) -> Path:
    tokens = ",".join(f'"{bearer(u).removeprefix("Bearer ")}"' for u in range(1, users + 1))
    path.write_text(_SCRIPT % {"tokens": tokens})
    return path


async def run_wrk(base_url: str, script: Path, *, connections: int, seconds: float) -> WrkResult:
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    threads, duration = min(2, connections), max(1, round(seconds))  # wrk takes whole seconds
    process = await asyncio.create_subprocess_exec(
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    for line in output.decode().splitlines():
        if line.startswith("WRK_JSON "):
            return WrkResult(**json.loads(line.removeprefix("WRK_JSON ")))
    raise RuntimeError(f"wrk gave no summary:\n{output.decode()[-2000:]}")
