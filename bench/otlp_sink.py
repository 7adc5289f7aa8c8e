"""A local OTLP/HTTP trace collector: accepts what the service exports and counts the spans.

The benchmark needs only to receive and count, so it is these few lines rather than an
OpenTelemetry Collector binary (which Debian does not package)."""

from __future__ import annotations

import gzip
from types import TracebackType

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from service.devtools.postgres import free_port


class OtlpSink:
    def __init__(self) -> None:
        self._bodies: list[bytes] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self._bodies.append(body)  # parsed later: not on the machine's time during a run
        return web.Response(body=b"", content_type="application/x-protobuf")

    def spans(self) -> int:
        total = 0
        for body in self._bodies:
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                total += sum(len(scope.spans) for scope in resource.scope_spans)
        return total

    async def __aenter__(self) -> OtlpSink:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
