"""OpenTelemetry: on when an OTLP endpoint is configured through the standard OTEL_* variables.

Off, requests carry no span at all and deliveries use OpenTelemetry's no-op tracer.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .. import __version__

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_requested(env: Mapping[str, str]) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return any(env.get(name) for name in _ENDPOINT_VARIABLES)


def configure_tracing(env: Mapping[str, str]) -> TracerProvider | None:
    """A provider exporting over OTLP/HTTP (the exporter reads the OTEL_* variables itself),
    with asyncpg instrumented; None when tracing is off."""
    if not tracing_requested(env):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    name = env.get("OTEL_SERVICE_NAME", "message-send-service")
    resource = Resource.create({"service.name": name, "service.version": __version__})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    instrument(provider)
    return provider


def instrument(provider: trace.TracerProvider) -> None:
    """Database spans (contrib asyncpg instrumentation, process-wide) as children of the
    request's server span, which the app's own middleware makes (`telemetry/http.py` says why
    not the contrib aiohttp-server instrumentation)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]


def uninstrument() -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]


def current_trace_id() -> str | None:
    """The hex trace id of the sampled span in context, for log lines and exemplars."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return format(context.trace_id, "032x")


def exemplar() -> dict[str, str] | None:
    """An OpenMetrics exemplar linking an observation to its trace (None without tracing)."""
    trace_id = current_trace_id()
    return {"trace_id": trace_id} if trace_id else None


def current_traceparent() -> str | None:
    """The W3C traceparent of the span in context, to store with a message."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def span_context_of(traceparent: str | None) -> trace.SpanContext | None:
    """Parse a stored traceparent back into a span context to link to."""
    if not traceparent:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    extracted = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    context = trace.get_current_span(extracted).get_span_context()
    return context if context.is_valid else None
