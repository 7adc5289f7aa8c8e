"""Logs, metrics, traces and error reporting."""
