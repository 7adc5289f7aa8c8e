"""Logs, metrics, traces and error reporting. `setup(app)` wires the app's own part."""

from .setup import delivery_tracer_of, metrics_of, setup, store_tracer_of

__all__ = ["delivery_tracer_of", "metrics_of", "setup", "store_tracer_of"]
