"""The HTTP surface: routes, handlers, request parsing, auth and the error middleware.
`setup(app)` wires it."""

from .setup import setup

__all__ = ["setup"]
