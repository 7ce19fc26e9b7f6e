"""Every metric the app exports, in one place (Prometheus text format at `/metrics`).

Labels are bounded by construction: verdicts, statuses, sources, outcomes, job names and endpoint paths,
never an order id, an email or anything else a request chooses. Docs: `docs/operations.md`.
"""

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

HTTP_LABELS = ("method", "path", "status_code", "app_name")
"""Per request (`request_metrics.py`): the route template, never the path with an id in it."""
HTTP_REQUESTS = Counter("cashout_http_requests_total", "Total requests", HTTP_LABELS)
HTTP_REQUEST_SECONDS = Histogram("cashout_http_request_duration_seconds", "Request duration, in seconds", HTTP_LABELS)
HTTP_IN_PROGRESS = Gauge(
    "cashout_http_requests_in_progress",
    "Total requests currently in progress",
    HTTP_LABELS,
    multiprocess_mode="livesum",
)
HTTP_ERRORS = Counter("cashout_http_requests_error_total", "Total errors in requests", HTTP_LABELS)

IPN_RECEIPTS = Counter("cashout_ipn_receipts_total", "IPN receipts by the verdict they got.", ["verdict"])
IPN_ACK_SECONDS = Histogram(
    "cashout_ipn_ack_seconds",
    "Time from an IPN arriving to our answer.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
TRANSITIONS = Counter(
    "cashout_order_transitions_total", "Order status changes by new status and source.", ["status", "source"]
)
CREATIONS = Counter(
    "cashout_order_creations_total", "Cash-out creations at Alix Pay by outcome.", ["outcome"]
)  # created | rejected | unknown
POLLS = Counter(
    "cashout_reconciliation_polls_total", "Details calls made to reconcile orders, by outcome.", ["outcome"]
)
FLAGS = Counter("cashout_order_flags_total", "Disagreements flagged on orders, by kind and source.", ["kind", "source"])
JOB_ROUNDS = Counter("cashout_job_rounds_total", "Background job rounds.", ["job"])
JOB_LEASE_HELD = Gauge(
    "cashout_job_lease_held",
    "1 while this instance holds a job's round (claimed once per cluster on PostgreSQL), else 0.",
    ["job"],
    multiprocess_mode="livesum",
)
JOB_FAILURES = Counter("cashout_job_failures_total", "Background job rounds that raised.", ["job"])
JOB_ITEM_FAILURES = Counter(
    "cashout_job_item_failures_total", "Items of a background job's round that raised (the round went on).", ["job"]
)
MAIL_FAILURES = Counter(
    "cashout_mail_failures_total",
    "Emails that could not be built or sent, by kind and stage (build | send).",
    ["kind", "stage"],
)
JOB_SECONDS = Histogram(
    "cashout_job_round_seconds", "Duration of background job rounds.", ["job"], buckets=(0.01, 0.1, 0.5, 1, 5, 30, 120)
)
SSE_STREAMS = Gauge("cashout_sse_streams_open", "Live update streams open now.", multiprocess_mode="livesum")
LIVE_DRAWINGS = Counter(
    "cashout_live_drawings_total",
    "Fragments drawn for live streams, by where their data came from (notification: the status card a live update"
    " carried; database: read, at a stream's start, for support's timeline, or when an update carried no card).",
    ["source"],
)
ALIXPAY_SECONDS = Histogram(
    "cashout_alixpay_call_seconds",
    "Alix Pay API call latency by endpoint and outcome (ok, rejected, not_found, unknown, bad_signature).",
    ["endpoint", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
ALARMS_OPEN = Gauge(
    "cashout_alarm_open", "1 while an alarm's incident is open.", ["alarm"], multiprocess_mode="livemax"
)
READY = Gauge(
    "cashout_ready",
    "1 when the readiness check passes at the scrape (database, schema, keys), else 0.",
    ["check"],
    multiprocess_mode="livemin",
)
OUTBOX_PENDING = Gauge(
    "cashout_outbox_pending",
    "Rows waiting to be sent, by outbox (emails, partner_webhooks): the database's.",
    ["outbox"],
    multiprocess_mode="livemax",
)
OUTBOX_OLDEST_SECONDS = Gauge(
    "cashout_outbox_oldest_seconds",
    "Age of the oldest row waiting to be sent, by outbox (0 when none).",
    ["outbox"],
    multiprocess_mode="livemax",
)


def exported() -> bytes:
    """The text format of every metric: this process's, or with `serve --workers N` every worker's, summed.

    `serve` gives its workers a shared `PROMETHEUS_MULTIPROC_DIR` (emptied at start); whichever worker answers
    `/metrics` then reads them all. A gauge says how its workers' values combine (`multiprocess_mode`).
    """
    if not os.environ.get(MULTIPROC_DIR):
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def worker_stopped() -> None:
    """A worker's live gauges leave the sum when it stops (`serve --workers N`)."""
    if os.environ.get(MULTIPROC_DIR):
        multiprocess.mark_process_dead(os.getpid())


def observe_alixpay_call(path: str, outcome: str, seconds: float) -> None:
    """The Alix Pay client's `on_call` hook."""
    ALIXPAY_SECONDS.labels(path, outcome).observe(seconds)
