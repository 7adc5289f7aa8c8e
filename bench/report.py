"""Benchmark results as Markdown (BENCHMARKS.md's results section) and a PNG plot."""

from __future__ import annotations

from pathlib import Path

from .results import (
    PERCENTILES,
    Burst,
    DeliveryLatency,
    DocumentTable,
    Drain,
    HeadOfLine,
    OutageLoss,
    ReceiptLatency,
    Results,
    Rss,
    SlowPusherRow,
    Spread,
    SystemThroughput,
    ThroughputRow,
)
from .results import percentile as percentile  # where bench.receipts and others look for it
from .results import spread as spread

RESULTS_BEGIN = "<!-- results:begin (written by python -m bench) -->"
RESULTS_END = "<!-- results:end -->"


def fmt(stat: Spread, unit: str = "", digits: int = 1) -> str:
    median = f"{stat['median']:,.{digits}f}{unit}"
    if stat["min"] == stat["max"]:
        return median
    return f"{median} ({stat['min']:,.{digits}f} to {stat['max']:,.{digits}f})"


def markdown(results: Results) -> str:
    lines = [
        f"Run {results['when']} on {results['machine']} — {results['runs']} runs per figure; "
        "medians, with the range over runs in brackets.",
        "",
    ]
    lines += _document_table(results["document_table"])
    lines += _throughput(results["throughput"])
    lines += _slow_pusher(results["slow_pusher"])
    lines += _delivery(results["delivery_latency"], results["receipt_latency"])
    lines += _delivery_figures(
        results["burst"], results["drain"], results["rss"], results["head_of_line"]
    )
    lines += _outage(results["outage"])
    return "\n".join(lines) + "\n"


def _document_table(table: DocumentTable) -> list[str]:
    sync, fast = table["sync"], table["async"]
    rows = [
        f"### The design document's table (Pusher takes {table['delay']:.0f} s per call; "
        f"{table['requests']} sends at concurrency {table['concurrency']} per run)",
        "",
        "| Metric | Before (sync) | After (async) | Improvement |",
        "|--------|---------------|---------------|-------------|",
    ]
    for p in PERCENTILES:
        gain = 100 * (1 - fast[p]["median"] / sync[p]["median"])
        rows.append(
            f"| Response time {p} | {fmt(sync[p], ' ms', 0)} | {fmt(fast[p], ' ms')} | "
            f"**{gain:.1f}% faster** |"
        )
    rows.append(
        f"| Pusher trigger | ~{table['delay'] * 1000:.0f} ms (blocking) | "
        f"~{table['delay'] * 1000:.0f} ms (background) | non-blocking |"
    )
    rows.append(f"| Errors | {table['sync_errors']} | {table['async_errors']} | |")
    return [*rows, ""]


def _systems(row: ThroughputRow) -> list[tuple[str, SystemThroughput]]:
    """The three systems of a throughput row, as the tables name them."""
    return [("service", row["service"]), ("bare", row["bare"]), ("document's", row["document"])]


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _throughput(rows: list[ThroughputRow]) -> list[str]:
    names = [name for name, _ in _systems(rows[0])]
    out = [
        "### Send throughput against a healthy Pusher: the service, the bare handler and the "
        "design document's system as written (wrk)",
        "",
        _row("connections", *(f"{n} req/s" for n in names), *(f"{n} p50 / p99" for n in names)),
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        systems = [system for _, system in _systems(row)]
        rps = [fmt(system["rps"], "", 0) for system in systems]
        latency = [f"{s['p50']['median']:.2f} / {s['p99']['median']:.2f} ms" for s in systems]
        out.append(_row(row["connections"], *rps, *latency))
    out += [
        "",
        "The service's figures divided by the others', run by run (medians):",
        "",
        _row(
            "connections",
            *(f"{f} ÷ {n}" for n in names[1:] for f in ("req/s", "PostgreSQL CPU per send", "p99")),
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratios = [row["service_vs_bare"], row["service_vs_document"]]
        cells = [f"{r[f]['median']:.0%}" for r in ratios for f in ("rps", "postgres_ms", "p99")]
        out.append(_row(row["connections"], *cells))
    out += [
        "",
        "Where the machine's CPU goes, per request (medians; the rest of the two cores is wrk and "
        "the kernel's network stack; counted until the server and the sandbox are idle after "
        "the run, Pusher calls still in flight included):",
        "",
        "| connections | system | server process | its PostgreSQL | sandbox Pusher | "
        "Pusher calls per send | events accepted per send | **total** |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for name, system in _systems(row):
            cpu = [system[f]["median"] for f in ("cpu_ms", "postgres_ms", "sandbox_ms")]
            per_send = [system[f]["median"] for f in ("calls_per_request", "events_per_request")]
            cells = [f"{ms:.3f} ms" for ms in cpu] + [f"{n:.3f}" for n in per_send]
            out.append(_row(row["connections"], name, *cells, f"**{sum(cpu):.3f} ms**"))
    errors = [
        f"{n} {sum(s['errors'] for r in rows for m, s in _systems(r) if m == n)}" for n in names
    ]
    failures = sum(row["document"]["trigger_failures"] for row in rows)
    tail = max(row["document"]["tail_s"]["max"] for row in rows)
    out += [
        "",
        f"Errors (non-2xx and socket errors, all runs): {', '.join(errors)}. The document's "
        f"system logged {failures} failed Pusher triggers and was idle again at most "
        f"{tail:.1f} s after wrk stopped.",
    ]
    return [*out, ""]


def _slow_pusher(rows: list[SlowPusherRow]) -> list[str]:
    out = [
        "### Does a slow Pusher move the send latency? And what do the event loop and tracing "
        "cost? (async mode, wrk)",
        "",
        "| Pusher delay | event loop | tracing (OTLP/HTTP, sampled) | connections | req/s | p50 | "
        "p99 | service CPU per request |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        tracing = "off"
        if row["tracing"] is not None:
            spans = row["spans_per_request"]
            assert spans is not None  # counted on every traced run
            tracing = f"{row['tracing']:.0%} ({spans['median']:.2f} spans exported per request)"
        out.append(
            f"| {row['delay']:.0f} s | {row['loop']} | {tracing} | {row['connections']} | "
            f"{fmt(row['rps'], '', 0)} | {fmt(row['p50'], ' ms', 2)} | "
            f"{fmt(row['p99'], ' ms', 2)} | {row['cpu_ms']['median']:.3f} ms |"
        )
    return [*out, ""]


#: the design document's target for commit → receipt, and ours on this machine
RECEIPT_TARGET_MS, RECEIPT_AIM_P99_MS = 200, 50


def _delivery(latency: DeliveryLatency, receipts: ReceiptLatency) -> list[str]:
    return [
        f"### Delivery ({latency['rate']:.0f} messages/s for {latency['seconds']:.0f} s, "
        f"{latency['received']} of {latency['messages']} received by a subscribed client; "
        f"the receipt row: {receipts['rate']:.0f} messages/s for {receipts['seconds']:.0f} s)",
        "",
        "| from commit to | p50 | p99 |",
        "|---|---|---|",
        f"| Pusher's acceptance | {fmt(latency['ack_p50'], ' ms', 2)} | "
        f"{fmt(latency['ack_p99'], ' ms', 2)} |",
        f"| the client's WebSocket | {fmt(latency['client_p50'], ' ms', 2)} | "
        f"{fmt(latency['client_p99'], ' ms', 2)} |",
        f"| the recipient's receipt (Chromium) | {fmt(receipts['p50'], ' ms')} | "
        f"{fmt(receipts['p99'], ' ms')} |",
        "",
        *_receipts(receipts),
    ]


def _receipts(receipts: ReceiptLatency) -> list[str]:
    p99 = receipts["p99"]["median"]
    aim = "met" if p99 <= RECEIPT_AIM_P99_MS else "**not met**"
    stats = receipts["client"]
    return [
        f"- Receipts: a headless Chromium on the dev chat page (`/chat/?user=2`, its own "
        f"receipts) while user 1 sent; {receipts['receipts']:,} of {receipts['messages']:,} "
        "messages got a receipt, and the service's "
        '`messages_delivery_latency_seconds{stage="client_receipt"}` counted '
        f"{receipts['histogram_count']:,}. Its buckets give p50 ≈ "
        f"{fmt(receipts['histogram_p50'], ' ms')} and p99 ≈ "
        f"{fmt(receipts['histogram_p99'], ' ms')} (interpolated, as `histogram_quantile` "
        f"does); its mean, {receipts['histogram_mean_ms']['median']:.2f} ms, is the "
        f"database's {receipts['mean_ms']['median']:.2f} ms to within "
        f"{receipts['mean_gap_ms']:.3f} ms.",
        f"- Target: the design document's < {RECEIPT_TARGET_MS} ms; our aim, p99 ≤ "
        f"{RECEIPT_AIM_P99_MS} ms on this machine: {aim} (p99 {p99:.1f} ms).",
        f"- The page's counters, all runs: {stats['events']:,} events, "
        f"{stats['duplicates']} duplicates, {stats['gaps']} gaps, {stats['catchUps']} catch-ups, "
        f"{stats['polls']} polls, {stats['retries']} retries, {stats['receipts']:,} receipts.",
        "",
    ]


def _delivery_figures(burst: Burst, drain: Drain, rss: Rss, hol: HeadOfLine) -> list[str]:
    return [
        f"- Burst of {burst['messages']:,} sends: **{burst['calls']} Pusher calls** "
        f"({burst['calls'] / burst['messages']:.3f} per message) over **{burst['connections']} "
        f"connections**, all delivered {burst['seconds']:.2f} s after the burst began.",
        f"- Backlog of {drain['backlog']:,} messages built during a Pusher outage: drained in "
        f"**{drain['seconds']:.1f} s** ({drain['rate']:,.0f} messages/s) once Pusher came back.",
        f"- {rss['seconds']:.0f} s of sends at full speed (wrk-free asyncio client, 50 in flight) "
        f"against a Pusher taking 3 s per call: {rss['sends']:,} sends, p99 "
        f"{rss['send_p99_ms']:.1f} ms, {rss['errors']} errors; service RSS "
        f"{rss['rss_before_mib']:.0f} MiB before, **{rss['rss_after_mib']:.0f} MiB after** "
        "(bounded: the backlog waits in PostgreSQL, not in memory).",
        f"- {hol['messages']} sends in one conversation, Pusher {hol['delay']:.0f} s per call: "
        f"last event accepted **{hol['last_accepted_s']:.1f} s** after its send "
        f"({hol['calls']} Pusher calls).",
        "",
    ]


def _outage(outage: OutageLoss) -> list[str]:
    out = [
        f"### A Pusher outage: every call answered 503 for {outage['outage_for']:.0f} s, in "
        f"the middle of {outage['seconds']:.0f} s of sends at {outage['rate']:.0f} messages/s",
        "",
        "| system | sends answered 200 | messages stored | stored and accepted by Pusher | "
        "**stored, never delivered** | after Pusher came back |",
        "|---|---|---|---|---|---|",
    ]
    systems = (("the service", outage["service"]), ("the document's system", outage["document"]))
    for name, run in systems:
        if run["seconds_after_heal"] is not None:
            after = f"all delivered {run['seconds_after_heal']:.1f} s after"
        else:
            after = f"never delivered (waited {run['waited']:.0f} s after the last send)"
        if run["trigger_failures"] is not None:
            after += f"; it logged {run['trigger_failures']:,} `Pusher trigger failed` lines"
        out.append(
            f"| {name} | {run['sent']:,} ({run['errors']} errors) | {run['stored']:,} | "
            f"{run['delivered']:,} | **{run['lost']:,}** | {after} |"
        )
    return [*out, ""]


def update_benchmarks_md(section: str, path: Path) -> None:
    """Replace the results section of BENCHMARKS.md, keeping the prose around it."""
    text = path.read_text()
    start, end = text.index(RESULTS_BEGIN), text.index(RESULTS_END)
    path.write_text(text[: start + len(RESULTS_BEGIN)] + "\n\n" + section + "\n" + text[end:])


def plot(table: DocumentTable, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(PERCENTILES)
    sync = [table["sync"][p]["median"] for p in labels]
    fast = [table["async"][p]["median"] for p in labels]
    figure, axis = plt.subplots(figsize=(7, 4))
    positions = range(len(labels))
    axis.bar([x - 0.2 for x in positions], sync, width=0.4, label="sync (awaits Pusher)")
    axis.bar([x + 0.2 for x in positions], fast, width=0.4, label="async (background job)")
    axis.set_yscale("log")
    axis.set_xticks(list(positions), labels)
    axis.set_ylabel("send response time (ms, log scale)")
    axis.set_title(f"Send latency with Pusher taking {table['delay']:.0f} s per call")
    for x, value in zip(positions, sync, strict=True):
        axis.annotate(f"{value:,.0f} ms", (x - 0.2, value), ha="center", va="bottom", fontsize=8)
    for x, value in zip(positions, fast, strict=True):
        axis.annotate(f"{value:.1f} ms", (x + 0.2, value), ha="center", va="bottom", fontsize=8)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
