"""Metrics, traces, logs and receipts, observed through the real exporters and endpoints."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias

import asyncpg
import pytest
from aiohttp import ClientResponse
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes
from pytest_aiohttp import AiohttpClient

from service.app import create_app
from service.sandbox import Fault
from service.settings import DeliverySettings, Settings
from service.telemetry.logging import JsonFormatter
from service.telemetry.tracing import instrument, uninstrument

from ..conftest import Sandbox
from ..helpers import AppClient, MakeClient, assert_error, auth, eventually, sample, scrape

QUICK = DeliverySettings(
    relay_poll_seconds=0.05,
    retry_base_seconds=0.05,
    retry_cap_seconds=0.1,
    circuit_failure_threshold=1000,
    backlog_refresh_seconds=0.1,
    pusher_probe_seconds=0.1,
)
#: a client of an app traced into an in-memory exporter, and that exporter
Traced: TypeAlias = tuple[AppClient, InMemorySpanExporter]


class MakeTraced(Protocol):
    def __call__(self, sampler: Sampler | None = None) -> Awaitable[Traced]: ...


def span_attributes(span: ReadableSpan) -> Mapping[str, Any]:
    """The span's attributes: the SDK always gives a mapping, though typed as optional."""
    return span.attributes or {}


CONTRACT_SERIES = [
    ("messages_saved_total", {}),
    ("messages_db_insert_duration_seconds_count", {}),
    ("messages_pusher_requests_total", {"outcome": "success"}),
    ("messages_pusher_requests_total", {"outcome": "error"}),
    ("messages_pusher_requests_total", {"outcome": "timeout"}),
    ("messages_pusher_request_duration_seconds_count", {}),
    ("messages_pusher_retries_total", {}),
    ("messages_delivery_latency_seconds_count", {"stage": "pusher_ack"}),
    ("messages_delivery_latency_seconds_count", {"stage": "client_receipt"}),
    ("messages_background_jobs", {"state": "active"}),
    ("messages_background_jobs", {"state": "pending"}),
    ("messages_undelivered", {}),
    ("messages_oldest_undelivered_age_seconds", {}),
    ("messages_dead_lettered_total", {}),
    ("messages_delivery_claims_lapsed_total", {}),
    ("messages_pusher_circuit_open", {}),
    ("messages_pusher_up", {}),
    ("messages_delivery_mode", {"mode": "async"}),
    ("messages_delivery_mode", {"mode": "sync"}),
]


async def send(
    client: AppClient, sender: int = 1, recipient: int = 2, content: str = "hi", **extra: object
) -> ClientResponse:
    return await client.post(
        "/api/messages/send",
        json={"recipientId": recipient, "content": content, **extra},
        headers=auth(sender),
    )


async def test_every_contract_metric_exists_from_start_up(client: AppClient) -> None:
    metrics = await scrape(client)
    for name, labels in CONTRACT_SERIES:
        assert sample(metrics, name, **labels) is not None, name
    assert sample(metrics, "messages_delivery_mode", mode="async") == 1
    assert sample(metrics, "messages_delivery_mode", mode="sync") == 0
    assert any(name == "messages_build_info" and value == 1 for (name, _), value in metrics.items())
    for bucket in ("0.05", "0.1", "0.2", "0.3"):  # the alert thresholds
        assert sample(metrics, "messages_db_insert_duration_seconds_bucket", le=bucket) == 0
        assert (
            sample(
                metrics, "messages_delivery_latency_seconds_bucket", stage="pusher_ack", le=bucket
            )
            == 0
        )


async def test_exact_counts_after_a_known_sequence_with_pusher_failing(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    client = await make_client(delivery=QUICK)
    sandbox.state.faults.set(Fault("status", status=500, calls=2))
    for n in range(3):  # one at a time: each is delivered before the next is sent
        assert (await send(client, content=f"m{n}")).status == 200

        def delivered(n: int = n) -> bool:
            return len(sandbox.state.events) == n + 1

        await eventually(delivered)
    assert (await send(client, content="")).status == 422
    assert (await client.get("/nowhere")).status == 404
    await client.get("/api/conversations/1/messages", headers=auth(1))
    for _ in range(50):  # the last delivery's bookkeeping may trail its event by a moment
        metrics = await scrape(client)
        if sample(metrics, "messages_delivery_latency_seconds_count", stage="pusher_ack") == 3:
            break
        await asyncio.sleep(0.02)
    assert sample(metrics, "messages_saved_total") == 3
    assert sample(metrics, "messages_db_insert_duration_seconds_count") == 3
    assert sample(metrics, "messages_pusher_requests_total", outcome="success") == 3
    assert sample(metrics, "messages_pusher_requests_total", outcome="error") == 2
    assert sample(metrics, "messages_pusher_requests_total", outcome="timeout") == 0
    assert sample(metrics, "messages_pusher_retries_total") == 2
    assert sample(metrics, "messages_pusher_request_duration_seconds_count") == 5
    assert sample(metrics, "messages_delivery_latency_seconds_count", stage="pusher_ack") == 3
    assert sample(metrics, "messages_dead_lettered_total") == 0
    http = "http_server_request_duration_seconds_count"
    assert sample(metrics, http, method="POST", route="/api/messages/send", status="200") == 3
    assert sample(metrics, http, method="POST", route="/api/messages/send", status="422") == 1
    assert sample(metrics, http, method="GET", route="unmatched", status="404") == 1
    history = "/api/conversations/{conversationId}/messages"
    assert sample(metrics, http, method="GET", route=history, status="200") == 1
    assert not any(
        "/api/conversations/1/" in str(labels) for (_, labels) in metrics
    )  # no raw paths


async def test_invented_methods_share_one_label_value(client: AppClient) -> None:
    # the parser knows ~30 methods (WebDAV, RTSP…): they must not each become a series
    for method in ("PROPFIND", "MKCOL", "LOCK"):
        response = await client.request(method, "/api/messages/send")
        assert response.status == 405
    metrics = await scrape(client)
    http = "http_server_request_duration_seconds_count"
    assert sample(metrics, http, method="_OTHER", route="unmatched", status="405") == 3
    assert not any(("method", "PROPFIND") in labels for (_, labels) in metrics)


async def test_pusher_probe_feeds_pusher_up(make_client: MakeClient, sandbox: Sandbox) -> None:
    client = await make_client(delivery=QUICK)
    await eventually_async(client, "messages_pusher_up", 1)
    sandbox.state.faults.set(Fault("status", status=503))
    await eventually_async(client, "messages_pusher_up", 0)
    sandbox.state.faults.clear()
    await eventually_async(client, "messages_pusher_up", 1)


async def eventually_async(
    client: AppClient, name: str, expected: float, timeout: float = 10.0
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while sample(await scrape(client), name) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"{name} never became {expected}"
        await asyncio.sleep(0.05)


async def test_receipts_are_for_the_recipient_and_count_once(
    client: AppClient, db: asyncpg.Connection
) -> None:
    message = (await (await send(client)).json())["message"]
    url = f"/api/messages/{message['id']}/receipt"
    for outsider in (1, 3):  # the sender and a stranger: as if it did not exist
        response = await client.post(url, headers=auth(outsider))
        assert response.status == 404
        assert_error(await response.json(), "not_found")
    assert (await client.post("/api/messages/999999/receipt", headers=auth(2))).status == 404
    assert (await client.post(url)).status == 401
    for _ in range(2):
        response = await client.post(url, headers=auth(2))
        assert response.status == 200 and await response.json() == {"success": True}
    metrics = await scrape(client)
    assert sample(metrics, "messages_delivery_latency_seconds_count", stage="client_receipt") == 1
    assert await db.fetchval(
        "SELECT received_at IS NOT NULL FROM messages WHERE id = $1", message["id"]
    )


async def test_a_first_receipt_tells_the_senders_clients_once_and_best_effort(
    client: AppClient, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """`message-received` on the conversation's channel after the first receipt only; with
    Pusher failing, the receipt is still recorded and answered, the notice logged as lost."""
    message = (await (await send(client)).json())["message"]
    url = f"/api/messages/{message['id']}/receipt"
    for _ in range(2):
        assert (await client.post(url, headers=auth(2))).status == 200

    def notices() -> list[dict[str, Any]]:
        return [json.loads(e.data) for e in sandbox.state.events if e.name == "message-received"]

    await eventually(lambda: len(notices()) == 1)
    (notice,) = notices()
    assert notice == {
        "id": message["id"],
        "conversationId": message["conversationId"],
        "seq": message["seq"],
        "receivedAt": notice["receivedAt"],
    }
    assert notice["receivedAt"] >= message["createdAt"]
    event = next(e for e in sandbox.state.events if e.name == "message-received")
    assert event.channel == f"private-conversation-{message['conversationId']}"

    sandbox.state.faults.set(Fault("status", status=500))
    other = (await (await send(client)).json())["message"]
    response = await client.post(f"/api/messages/{other['id']}/receipt", headers=auth(2))
    assert response.status == 200
    await eventually(
        lambda: any(r.getMessage().startswith("receipt notice failed") for r in caplog.records)
    )
    assert len(notices()) == 1


class DropServerSpans(Sampler):
    """Samples every span but the requests' own: shows which child spans are still made."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind is trace.SpanKind.SERVER:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "DropServerSpans"


@pytest.fixture
async def make_traced(
    aiohttp_client: AiohttpClient, make_settings: Callable[..., Settings], db: asyncpg.Connection
) -> AsyncIterator[MakeTraced]:
    instrumented: list[TracerProvider] = []

    async def make(sampler: Sampler | None = None) -> Traced:
        exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrument(provider)
        instrumented.append(provider)
        client = await aiohttp_client(
            create_app(make_settings(delivery=QUICK), tracer_provider=provider)
        )
        return client, exporter

    yield make
    if instrumented:
        uninstrument()


@pytest.fixture
async def traced(make_traced: MakeTraced) -> Traced:
    return await make_traced()


async def test_spans_request_parents_database_and_delivery_links_to_request(
    traced: Traced, sandbox: Sandbox
) -> None:
    client, exporter = traced
    response = await send(client)
    message_id = (await response.json())["message"]["id"]
    await eventually(lambda: any(s.name == "pusher send" for s in exporter.get_finished_spans()))
    spans = exporter.get_finished_spans()
    server = next(
        s
        for s in spans
        if s.kind is trace.SpanKind.SERVER
        and span_attributes(s).get("http.route", s.name).endswith("/api/messages/send")
    )
    database = [
        s for s in spans if s.context.trace_id == server.context.trace_id and s is not server
    ]
    assert database, "no database spans in the request's trace"
    assert all(
        s.parent is not None and s.parent.span_id == server.context.span_id for s in database
    )
    assert any(
        "INSERT INTO messages"
        in str(span_attributes(s).get("db.statement", span_attributes(s).get("db.query.text", "")))
        for s in database
    )
    assert server.name == "POST /api/messages/send"
    assert span_attributes(server)["http.request.method"] == "POST"
    assert span_attributes(server)["http.route"] == "/api/messages/send"
    assert span_attributes(server)["url.path"] == "/api/messages/send"
    assert span_attributes(server)["http.response.status_code"] == 200
    delivery = next(s for s in spans if s.name == "pusher send")
    assert delivery.parent is None  # its own trace: it outlives the request
    assert [link.context.span_id for link in delivery.links] == [server.context.span_id]
    assert span_attributes(delivery)["messaging.message.id"] == str(message_id)
    assert span_attributes(delivery)["delivery.outcome"] == "success"


async def test_a_callers_traceparent_is_continued_and_errors_mark_the_span(
    traced: Traced, sandbox: Sandbox
) -> None:
    client, exporter = traced
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    response = await client.post(
        "/api/messages/send",
        json={"recipientId": 2, "content": ""},
        headers={**auth(1), "traceparent": f"00-{caller_trace}-{caller_span}-01"},
    )
    assert response.status == 422
    assert (await client.get("/nowhere")).status == 404
    spans = exporter.get_finished_spans()
    send_span = next(s for s in spans if s.name == "POST /api/messages/send")
    assert format(send_span.context.trace_id, "032x") == caller_trace
    assert send_span.parent is not None
    assert format(send_span.parent.span_id, "016x") == caller_span
    assert span_attributes(send_span)["http.response.status_code"] == 422
    assert send_span.status.status_code is trace.StatusCode.UNSET  # a client error, not ours
    unmatched = next(s for s in spans if s.name == "GET unmatched")
    assert span_attributes(unmatched)["http.response.status_code"] == 404


async def test_an_unsampled_request_makes_no_database_spans_but_its_delivery_does(
    make_traced: MakeTraced, sandbox: Sandbox
) -> None:
    client, exporter = await make_traced(DropServerSpans())
    sandbox.state.faults.set(Fault("status", status=503, calls=1))  # the retry writes to the db
    assert (await send(client)).status == 200
    await eventually(lambda: len(sandbox.state.events) == 1)
    await eventually(
        lambda: any(
            s.name == "pusher send" and span_attributes(s)["delivery.outcome"] == "success"
            for s in exporter.get_finished_spans()
        )
    )
    spans = exporter.get_finished_spans()
    assert not [s for s in spans if s.kind is trace.SpanKind.SERVER]
    statements = [
        str(span_attributes(s).get("db.statement", span_attributes(s).get("db.query.text", "")))
        for s in spans
    ]
    # the request's insert ran with instrumentation suppressed: no span was even made
    assert not any("INSERT INTO messages" in text for text in statements)
    failed = next(s for s in spans if span_attributes(s).get("delivery.outcome") == "error")
    release = [
        s
        for s in spans
        if s.parent is not None
        and s.parent.span_id == failed.context.span_id
        and "UPDATE messages" in str(span_attributes(s).get("db.statement", ""))
    ]
    assert release, "the delivery job inherited the request's suppression"


async def test_openmetrics_carries_trace_id_exemplars(traced: Traced, sandbox: Sandbox) -> None:
    client, exporter = traced
    assert (await send(client)).status == 200
    await eventually(lambda: any(s.name == "pusher send" for s in exporter.get_finished_spans()))
    response = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.content_type == "application/openmetrics-text"
    text = await response.text()
    trace_ids = {format(s.context.trace_id, "032x") for s in exporter.get_finished_spans()}
    insert_lines = [
        line
        for line in text.splitlines()
        if line.startswith("messages_db_insert_duration_seconds_bucket") and "#" in line
    ]
    assert insert_lines, "no exemplar on the insert histogram"
    exemplar_ids = {
        line.split('trace_id="')[1].split('"')[0]
        for line in text.splitlines()
        if 'trace_id="' in line
    }
    assert exemplar_ids and exemplar_ids <= trace_ids


async def test_log_lines_carry_the_trace_id(traced: Traced, sandbox: Sandbox) -> None:
    client, exporter = traced
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())  # formats at emit time, inside the delivery span
    logger = logging.getLogger("service.delivery")
    logger.addHandler(handler)
    try:
        sandbox.state.faults.set(Fault("status", status=500, calls=1))
        message_id = (await (await send(client)).json())["message"]["id"]
        await eventually(lambda: "Pusher trigger failed" in stream.getvalue())
    finally:
        logger.removeHandler(handler)
    line = next(
        json.loads(x) for x in stream.getvalue().splitlines() if "Pusher trigger failed" in x
    )
    assert line["level"] == "warning" and line["message_id"] == message_id

    def failed_spans() -> list[ReadableSpan]:
        return [
            s
            for s in exporter.get_finished_spans()
            if s.name == "pusher send" and span_attributes(s)["delivery.outcome"] == "error"
        ]

    # the line is written inside the span, which ends a moment later (after the retry is recorded)
    await eventually(lambda: bool(failed_spans()))
    assert line["trace_id"] == format(failed_spans()[0].context.trace_id, "032x")


async def test_a_retry_through_the_relay_still_links_to_the_request(
    traced: Traced, sandbox: Sandbox
) -> None:
    client, exporter = traced
    sandbox.state.faults.set(Fault("status", status=503, calls=1))
    assert (await send(client)).status == 200

    def calls() -> list[str]:
        return [
            str(span_attributes(s)["delivery.outcome"])
            for s in exporter.get_finished_spans()
            if s.name == "pusher send"
        ]

    await eventually(lambda: "success" in calls())
    assert calls() == ["error", "success"]  # the fast path failed, the relay delivered
    spans = exporter.get_finished_spans()
    server = next(s for s in spans if s.name == "POST /api/messages/send")
    for delivery in (s for s in spans if s.name == "pusher send"):
        assert [link.context.span_id for link in delivery.links] == [server.context.span_id]
