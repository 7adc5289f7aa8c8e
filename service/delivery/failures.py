"""How each kind of failed Pusher call is treated: the one table to change.

A row matches a failure by its class and, for an HTTP answer, its status; the first row that
matches decides. It gives the verdict for a call that carried one event and for a batch (a
permanent rejection of a batch does not say which event is bad), and the `outcome` label of
`messages_pusher_requests_total`. Adding a failure class is adding a row here.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from enum import Enum

from .pusher_client import PusherError, PusherRejected, PusherTimeout, PusherUnreachable


class Verdict(Enum):
    #: transient: back off (full jitter, through the database) and try again, counting an attempt
    RETRY = "retry"
    #: over quota: stop calling for a while (DeliverySettings.quota_pause_seconds), count nothing
    PAUSE = "pause"
    #: permanent: the same event fails the same way every time; give up, tell Sentry
    DEAD_LETTER = "dead_letter"
    #: permanent, but which event of the batch? send them one by one to find out
    SPLIT = "split"


@dataclass(frozen=True, slots=True)
class Rule:
    failure: type[PusherError]
    #: HTTP statuses this row covers (PusherRejected only); None: every failure of the class
    statuses: Container[int] | None
    alone: Verdict
    in_batch: Verdict
    outcome: str


_SERVER_ERRORS = range(500, 600)

RULES: tuple[Rule, ...] = (
    Rule(PusherTimeout, None, Verdict.RETRY, Verdict.RETRY, "timeout"),
    Rule(PusherUnreachable, None, Verdict.RETRY, Verdict.RETRY, "error"),
    Rule(PusherRejected, _SERVER_ERRORS, Verdict.RETRY, Verdict.RETRY, "error"),
    Rule(PusherRejected, {429}, Verdict.RETRY, Verdict.RETRY, "error"),
    Rule(PusherRejected, {403}, Verdict.PAUSE, Verdict.PAUSE, "error"),
    # 400, 401, 413 and any other answer: the request itself is wrong
    Rule(PusherRejected, None, Verdict.DEAD_LETTER, Verdict.SPLIT, "error"),
    # a failure class without a row of its own is treated as transient
    Rule(PusherError, None, Verdict.RETRY, Verdict.RETRY, "error"),
)

#: every value of messages_pusher_requests_total{outcome}
OUTCOMES: tuple[str, ...] = ("success", *dict.fromkeys(rule.outcome for rule in RULES))


@dataclass(frozen=True, slots=True)
class Treatment:
    verdict: Verdict
    outcome: str


def treatment_of(error: PusherError, *, events: int = 1) -> Treatment:
    """What to do after `error` ended a call that carried `events` events."""
    for rule in RULES:
        if isinstance(error, rule.failure) and _status_matches(error, rule.statuses):
            return Treatment(rule.alone if events == 1 else rule.in_batch, rule.outcome)
    raise AssertionError("the last rule matches every PusherError")


def _status_matches(error: PusherError, statuses: Container[int] | None) -> bool:
    if statuses is None:
        return True
    return isinstance(error, PusherRejected) and error.status in statuses
