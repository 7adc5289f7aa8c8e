"""Alert thresholds and SLO targets, drawn on the dashboards.

These must stay equal to the alert rules' thresholds: a line on a panel is only useful if
crossing it is what pages (or warns) someone.
"""

from __future__ import annotations

#: SLO: 99 % of sends answered within 300 ms
SEND_LATENCY_P99_SECONDS = 0.3
SEND_LATENCY_SLO_SHARE = 0.99
#: share of sends answered with a 5xx
SEND_5XX_RATIO = 0.05
#: SLO: 99.9 % of sends succeed (error budget 0.1 %)
SEND_AVAILABILITY_SLO = 0.999

#: design document: commit to Pusher's acceptance within 200 ms at p95
DELIVERY_PUSHER_ACK_P95_SECONDS = 0.2
#: SLO: 99 % of messages delivered within 1 s
DELIVERY_SLO_SECONDS = 1.0
DELIVERY_SLO_SHARE = 0.99

DB_INSERT_P99_SECONDS = 0.1

#: share of Pusher calls ending in error or timeout
PUSHER_ERROR_RATIO_WARNING = 0.05
PUSHER_ERROR_RATIO_CRITICAL = 0.2
#: SLO: 99.9 % of Pusher calls succeed
PUSHER_SUCCESS_SLO = 0.999

OLDEST_UNDELIVERED_WARNING_SECONDS = 60
OLDEST_UNDELIVERED_CRITICAL_SECONDS = 300
UNDELIVERED_BACKLOG = 100

#: per replica
BACKGROUND_JOBS_ACTIVE = 8
BACKGROUND_JOBS_PENDING = 1600

#: age of a replica's JWKS keys past which failing fetches warn (MessageAuthKeysStale)
JWKS_KEYS_AGE_WARNING_SECONDS = 1800
