"""Client tokens: the verifier (`tokens.py`) and the identity provider's keys (`jwks.py`).
`setup(app)` wires them; needs `telemetry.setup` first."""

from .setup import setup, tokens_of

__all__ = ["setup", "tokens_of"]
