"""The HTTP surface: routes, handlers, request parsing, auth and the error middleware."""
