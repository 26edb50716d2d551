"""Turning results into the table printed at the end, the chart, and docs/performance.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.stats import ratio


def _get(results: dict[str, Any], path: str) -> Any:
    value: Any = results
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets: (name, wanted, measured, met); ``met`` is None when not measured."""

    def g(path: str) -> Any:
        return _get(results, path)

    slots_total = g("slots.slots_total")
    lease_s = g("slots.lease_s") or 0
    rows: list[tuple[str, str, Any, Any]] = [
        ("intake rps / HTTP limit", "≥ 0.70",
         ratio(g("intake.rps") or 0, g("intake.http_limit_rps") or 0), lambda v: v >= 0.7),
        ("intake p99 at half max rate", "< 25 ms", g("intake.p99_ms"), lambda v: v < 25),
        ("e2e p50, low load", "< 50 ms", g("e2e.p50_ms"), lambda v: v < 50),
        ("e2e runs/s / Celery runs/s", "≥ 1.0",
         ratio(g("e2e.runs_per_s") or 0, g("e2e.celery_runs_per_s") or 0), lambda v: v >= 1.0),
        ("e2e p50 / Celery p50", "≤ 1.5", ratio(g("e2e.p50_ms") or 0, g("e2e.celery_p50_ms") or 0),
         lambda v: v <= 1.5),
        ("stage hop p50", "< 10 ms", g("hop.p50_ms"), lambda v: v < 10),
        ("replay events/s", "≥ 5,000", g("replay.events_per_s"), lambda v: v >= 5000),
        ("replay dry run events/s", "≥ 20,000", g("replay.dry_run_events_per_s"), lambda v: v >= 20000),
        ("projection rebuild records/s", "≥ 10,000", g("projection.records_per_s"), lambda v: v >= 10000),
        ("projection rebuild records/s, PostgreSQL", "≥ 10,000", g("projection.postgres_records_per_s"),
         lambda v: v >= 10000),
        ("scale: worker RSS, 100,000 / 1,000 runs", "≤ 1.2", g("scale.worker_rss_ratio"), lambda v: v <= 1.2),
        ("scale: worker start-up, 100,000 / 1,000 runs", "≤ 1.2", g("scale.worker_start_ratio"),
         lambda v: v <= 1.2),
        ("scale: /api/runs p95 at 100,000 runs (sqlite)", "< 200 ms", g("scale.api_runs_p95_ms_sqlite"),
         lambda v: v < 200),
        ("scale: /api/runs p95 at 100,000 runs (PostgreSQL)", "< 200 ms", g("scale.api_runs_p95_ms_postgres"),
         lambda v: v < 200),
        ("scale: runs page p95 at 100,000 runs (sqlite)", "< 200 ms", g("scale.runs_page_p95_ms_sqlite"),
         lambda v: v < 200),
        ("scale: runs page p95 at 100,000 runs (PostgreSQL)", "< 200 ms",
         g("scale.runs_page_p95_ms_postgres"), lambda v: v < 200),
        ("scale: `hamster runs list` at 100,000 runs (sqlite)", "< 1 s", g("scale.runs_list_s_sqlite"),
         lambda v: v < 1),
        ("scale: `hamster runs list` at 100,000 runs (PostgreSQL)", "< 1 s", g("scale.runs_list_s_postgres"),
         lambda v: v < 1),
        ("scale: audit verify records/s", "≥ 20,000", g("scale.audit_records_per_s"), lambda v: v >= 20000),
        ("match 1,000 subs / 10 subs", "≤ 2.0", g("match.ratio_1000_to_10"), lambda v: v <= 2.0),
        ("slots: long stages makespan / ideal", "≤ 1.25", g("slots.makespan_x_ideal"), lambda v: v <= 1.25),
        ("slots: peak stages at once", f"= slots available ({_fmt(slots_total)})", g("slots.peak"),
         lambda v: v == slots_total),
        ("slots: stages executed twice", "0", g("slots.twice"), lambda v: v == 0),
        ("slots: takeover after SIGKILL, s", f"≤ lease + 5 s ({_fmt(lease_s + 5)})", g("slots.takeover_s"),
         lambda v: v <= lease_s + 5),
    ]  # fmt: skip
    baselines = _baselines(results)
    return [
        {
            "name": name,
            "target": text,
            "measured": value,
            "met": None if value is None else bool(test(value)),
            "baseline": baselines.get(name),
        }
        for name, text, value, test in rows
    ]


def _baselines(results: dict[str, Any]) -> dict[str, str]:
    """What each target's figure is measured against in the same run: the original design (Celery over
    Redis) where it does the same work, else the physical limit or the small-history figure."""

    def f(path: str, unit: str = "") -> str:
        value = _get(results, path)
        return "" if value is None else f"{_fmt(value)}{unit}"

    celery = "Celery + Redis: "
    small = " at 1,000 runs"
    rows = {
        "intake rps / HTTP limit": f"HTTP limit {f('intake.http_limit_rps', '/s')}",
        "e2e p50, low load": celery + f("e2e.celery_p50_ms", " ms"),
        "e2e runs/s / Celery runs/s": celery + f("e2e.celery_runs_per_s", " runs/s")
        + "; Hamster " + f("e2e.runs_per_s", " runs/s"),
        "e2e p50 / Celery p50": celery + f("e2e.celery_p50_ms", " ms"),
        "replay events/s": "Kafka limit " + f("intake.kafka_limit_rps", " writes/s"),
        "replay dry run events/s": "replay " + f("replay.events_per_s", " events/s"),
        "scale: worker RSS, 100,000 / 1,000 runs": f("scale.worker_rss_mb_small", " MB") + small,
        "scale: worker start-up, 100,000 / 1,000 runs": f("scale.worker_start_s_small", " s") + small,
        "slots: long stages makespan / ideal": celery + f("slots.celery_makespan_x_ideal") + " (2 x 2, fair)",
        "slots: peak stages at once": celery + f("slots.celery_peak"),
    }  # fmt: skip
    return {name: text for name, text in rows.items() if text and not text.endswith(": ")}


FIGURES = [
    ("intake.rps", "intake requests/s (best closed-loop concurrency)"),
    ("intake.http_limit_rps", "HTTP limit requests/s (same concurrency)"),
    ("intake.kafka_limit_rps", "Kafka limit writes/s (same concurrency)"),
    ("intake.p50_ms", "intake p50 ms at half max rate (open loop)"),
    ("intake.p99_ms", "intake p99 ms at half max rate (open loop)"),
    ("e2e.p50_ms", "Hamster end-to-end p50 ms (low load)"),
    ("e2e.p99_ms", "Hamster end-to-end p99 ms (low load)"),
    ("e2e.async_p50_ms", "Hamster end-to-end p50 ms, async def stages (low load)"),
    ("e2e.async_p99_ms", "Hamster end-to-end p99 ms, async def stages (low load)"),
    ("e2e.celery_p50_ms", "Celery end-to-end p50 ms (low load)"),
    ("e2e.celery_p99_ms", "Celery end-to-end p99 ms (low load)"),
    ("e2e.runs_per_s", "Hamster runs/s (burst)"),
    ("e2e.async_runs_per_s", "Hamster runs/s, async def stages (burst)"),
    ("e2e.celery_runs_per_s", "Celery chains/s (burst)"),
    ("hop.p50_ms", "stage hop p50 ms"),
    ("hop.p99_ms", "stage hop p99 ms"),
    ("hop.async_p50_ms", "stage hop p50 ms, async def stages"),
    ("replay.events_per_s", "replay events/s (`hamster replay events`, 100,000 webhooks in a full run)"),
    ("replay.dry_run_events_per_s", "dry run events/s (`hamster replay events --dry-run`, same webhooks)"),
    ("projection.records_per_s", "projection rebuild records/s (sqlite)"),
    ("projection.postgres_records_per_s", "projection rebuild records/s (PostgreSQL)"),
    ("scale.worker_start_s_small", "worker start-up s, 1,000 runs of history"),
    ("scale.worker_start_s_large", "worker start-up s, 100,000 runs of history"),
    ("scale.worker_rss_mb_small", "worker RSS MB, 1,000 runs of history"),
    ("scale.worker_rss_mb_large", "worker RSS MB, 100,000 runs of history"),
    ("scale.api_runs_p95_ms_sqlite", "/api/runs p95 ms at 100,000 runs, sqlite"),
    ("scale.api_runs_p95_ms_postgres", "/api/runs p95 ms at 100,000 runs, PostgreSQL"),
    ("scale.api_runs_page_20_p95_ms_sqlite", "/api/runs 20 pages deep (cursor) p95 ms, sqlite"),
    ("scale.api_runs_page_20_p95_ms_postgres", "/api/runs 20 pages deep (cursor) p95 ms, PostgreSQL"),
    ("scale.runs_page_p95_ms_sqlite", "runs page p95 ms at 100,000 runs, sqlite"),
    ("scale.runs_page_p95_ms_postgres", "runs page p95 ms at 100,000 runs, PostgreSQL"),
    ("scale.runs_list_s_sqlite", "`hamster runs list` s at 100,000 runs, sqlite"),
    ("scale.runs_list_s_postgres", "`hamster runs list` s at 100,000 runs, PostgreSQL"),
    ("scale.audit_records_per_s", "`hamster audit verify` records/s (800,000 records)"),
    ("scale.rebuild_records_per_s_sqlite", "projection rebuild records/s at 800,000 records, sqlite"),
    ("scale.rebuild_records_per_s_postgres", "projection rebuild records/s at 800,000 records, PostgreSQL"),
    ("match.us_per_event.10", "match µs/event, 10 subscribers"),
    ("match.us_per_event.100", "match µs/event, 100 subscribers"),
    ("match.us_per_event.1000", "match µs/event, 1,000 subscribers"),
    ("slots.long_stages.makespan_s", "long stages: makespan s (8 blocking stages, 2 + 1 workers of 2 slots)"),
    ("slots.long_stages.ideal_s", "long stages: ideal s, ceil(8 / 4) * stage length"),
    ("slots.makespan_x_ideal", "long stages: makespan / ideal"),
    ("slots.peak", "long stages: peak stages running at once"),
    ("slots.slots_total", "long stages: slots available (workers ready before the last claim)"),
    ("slots.long_stages.third_worker_ready_s", "long stages: third worker's start → its slots take work, s"),
    ("slots.twice", "long stages: stages executed twice"),
    ("slots.celery.makespan_s", "Celery makespan s (2 workers of 2 processes, -O fair)"),
    ("slots.celery_makespan_x_ideal", "Celery makespan / ideal"),
    ("slots.celery_peak", "Celery peak tasks running at once"),
    ("slots.lease_s", "takeover: lease s (HAMSTER_STAGE_LEASE_S)"),
    ("slots.takeover_s", "takeover: SIGKILL → attempt 2 started, s"),
    ("slots.takeover.after_lease_s", "takeover: lease ran out → attempt 2 started, s"),
    ("slots.join_to_first_stage_s", "rebalance: third worker's start → its first stage, s"),
    ("slots.rebalance_s", "rebalance: third worker joining the group → partitions assigned, s"),
    (
        "slots.rebalance.incumbents_rebalance_s",
        "rebalance: running workers' partitions revoked → assigned, s",
    ),
]


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def figures_table(results: dict[str, Any]) -> str:
    lines = ["| figure | value |", "|---|---:|"]
    lines += [f"| {label} | {_fmt(_get(results, path))} |" for path, label in FIGURES]
    return "\n".join(lines)


def targets_table(results: dict[str, Any]) -> str:
    lines = ["| target | wanted | measured | met | baseline, same run |", "|---|---|---:|---|---|"]
    for row in targets(results):
        met = {True: "yes", False: "**no**", None: "not measured"}[row["met"]]
        baseline = row.get("baseline") or "—"
        lines.append(f"| {row['name']} | {row['target']} | {_fmt(row['measured'])} | {met} | {baseline} |")
    return "\n".join(lines)


def print_summary(results: dict[str, Any]) -> None:
    print()
    print(figures_table(results))
    print()
    print(targets_table(results))


def markdown(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    pk = m.get("packages", {})
    quick = (
        " (a `--quick` run: short trials, not the figures to quote)"
        if results["options"].get("quick")
        else ""
    )
    parts = [
        "# Performance",
        "",
        f"Generated by `make bench` from `bench/results/latest.json` ({results['started_at']}){quick}. "
        "Every figure is the median of repeated trials; each comparison was measured in the same run. "
        "The method is in `bench/README.md`.",
        "",
        "![latest benchmark](../bench/results/latest.png)",
        "",
        "## Targets and ratios",
        "",
        targets_table(results),
        "",
        "## Figures",
        "",
        figures_table(results),
        "",
        "## Machine",
        "",
        f"{m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, {m.get('os')}; Python "
        f"{m.get('python')}, Kafka {m.get('kafka')} (local, KRaft, one node), redis-server "
        f"{m.get('redis_server')}, aiokafka {pk.get('aiokafka')}, "
        f"faust-streaming {pk.get('faust-streaming')}, "
        f"Celery {pk.get('celery')}. Load average at start: "
        + ", ".join(f"{x:.2f}" for x in m.get("load_average_at_start", []))
        + f"; at the end: {', '.join(f'{x:.2f}' for x in results.get('load_average_at_end', []))}.",
        "",
    ]
    parts += ["## Tuning, before and after (same run)", "", tuning_table(results), ""]
    notes = results.get("notes", [])
    if notes:
        parts += ["## What limits the targets missed", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(parts)


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(17, 12))
    closed = _get(results, "intake.closed_loop") or {}
    ax = axes[0][0]
    for key, label in (
        ("intake", "Hamster intake"),
        ("http_limit", "HTTP limit"),
        ("kafka_limit", "Kafka limit"),
    ):
        series = closed.get(key, {})
        xs = sorted(series, key=int)
        ax.plot([int(x) for x in xs], [series[x]["rps"] for x in xs], marker="o", label=label)
    ax.set(title="Intake, closed loop", xlabel="concurrency", ylabel="requests/s", xscale="log")
    ax.legend()

    ax = axes[0][1]
    sweep = _get(results, "intake.open_loop") or []
    ax.plot([p["offered_rps"] for p in sweep], [p["p50_ms"] for p in sweep], marker="o", label="p50")
    ax.plot([p["offered_rps"] for p in sweep], [p["p99_ms"] for p in sweep], marker="o", label="p99")
    ax.set(title="Intake, open-loop rate sweep", xlabel="offered requests/s", ylabel="latency ms")
    ax.legend()

    ax = axes[1][0]
    names = ["p50", "p99"]
    positions = range(len(names))
    for offset, (label, prefix) in zip(
        (-0.27, 0.0, 0.27),
        (
            ("Hamster, def stages", "e2e."),
            ("Hamster, async def stages", "e2e.async_"),
            ("Celery + Redis", "e2e.celery_"),
        ),
        strict=True,
    ):
        values = [_get(results, f"{prefix}{n}_ms") or 0 for n in names]
        ax.bar([x + offset for x in positions], values, width=0.27, label=label)
    ax.set(
        title="End to end, low load (3 no-op stages)", ylabel="ms", xticks=list(positions), xticklabels=names
    )
    ax.legend()

    ax = axes[1][1]
    labels = ["Hamster, def", "Hamster, async def", "Celery + Redis"]
    values = [_get(results, f"e2e.{k}runs_per_s") or 0 for k in ("", "async_", "celery_")]
    ax.bar(labels, values, color=["C0", "C1", "C2"])
    ax.set(title="End to end, sustained (burst)", ylabel="runs per second")

    ax = axes[0][2]
    for key, label in (
        ("us_per_event", "index by event and repository"),
        ("us_per_event_by_event_name_only", "by event name only (before)"),
    ):
        series = _get(results, f"match.{key}") or {}
        xs = sorted(series, key=int)
        ax.plot([int(x) for x in xs], [series[x] for x in xs], marker="o", label=label)
    ax.set(title="Matching one event", xlabel="subscribers", ylabel="µs per event", xscale="log")
    ax.legend()

    ax = axes[1][2]
    labels = ["replay", "dry run", "rebuild\nsqlite", "rebuild\nPostgreSQL"]
    paths = (
        "replay.events_per_s",
        "replay.dry_run_events_per_s",
        "projection.records_per_s",
        "projection.postgres_records_per_s",
    )
    ax.bar(labels, [_get(results, p) or 0 for p in paths], color=["C0", "C1", "C2", "C3"])
    ax.plot([-0.4, 0.4], [5000, 5000], "k--", linewidth=1, label="replay target")
    ax.plot([0.6, 1.4], [20000, 20000], "k-.", linewidth=1, label="dry run target")
    ax.plot([1.6, 3.4], [10000, 10000], "k:", linewidth=1, label="rebuild target")
    ax.set(title="Replay and projection rebuild", ylabel="per second", yscale="log")
    ax.legend()
    _slots_charts(results, axes[2])
    fig.suptitle(f"Hamster benchmark {results['started_at']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _slots_charts(results: dict[str, Any], axes: Any) -> None:
    """The slots section's row: makespans against the ideal, stages at once, takeover and join times."""
    ax = axes[0]
    values = [_get(results, p) or 0 for p in ("slots.makespan_x_ideal", "slots.celery_makespan_x_ideal")]
    ax.bar(["Hamster", "Celery + Redis"], values, color=["C0", "C2"])
    ax.plot([-0.4, 1.4], [1.25, 1.25], "k--", linewidth=1, label="target")
    ax.set(title="Long stages: makespan / ideal (8 stages on 4 slots)", ylabel="makespan / ideal")
    ax.legend()

    ax = axes[1]
    paths = ("slots.peak", "slots.slots_total", "slots.celery_peak")
    labels = ["Hamster peak", "Hamster slots\navailable", "Celery peak"]
    ax.bar(labels, [_get(results, p) or 0 for p in paths], color=["C0", "C7", "C2"])
    ax.set(title="Long stages: running at once", ylabel="stages")

    ax = axes[2]
    times = ("slots.lease_s", "slots.takeover_s", "slots.join_to_first_stage_s", "slots.rebalance_s")
    labels = ["lease", "SIGKILL →\nattempt 2", "worker start →\nfirst stage", "group\nrebalance"]
    ax.bar(labels, [_get(results, p) or 0 for p in times], color=["C7", "C0", "C1", "C3"])
    ax.set(title="Takeover and a worker joining", ylabel="seconds")


def _num(results: dict[str, Any], path: str) -> float | None:
    value = _get(results, path)
    return float(value) if isinstance(value, int | float) else None


def tuning(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The knobs tried, each with its before and after as measured in this run."""

    def n(path: str) -> float | None:
        return _num(results, path)

    rows = [
        ("match: subscribers filed by repository as well as event name (hamster/subscribers/matching.py)",
         "match.us_per_event_by_event_name_only.1000", "match.us_per_event.1000", "µs/event, 1,000 subs",
         "kept"),
        ("match agent: index rebuilt only when the subscribers table changes (agents/match.py)",
         "match.us_per_event_with_index_build.1000", "match.us_per_event.1000", "µs/event, 1,000 subs",
         "kept"),
        ("producer linger 0 → 5 ms (the Kafka limit at the intake's best concurrency)",
         "intake.kafka_limit_rps", "intake.kafka_limit_linger5_rps", "writes/s", "measured only: the intake "
         "waits for each write before answering, so linger only adds latency at low load"),
        ("stage tasks as async def instead of def (def without a timeout runs in a thread)",
         "e2e.p50_ms", "e2e.async_p50_ms", "e2e p50 ms", "a choice for pipeline authors: def stages pay "
         "a thread hand-off (and, with a timeout, a fork per attempt)"),
        ("JSON codec: stdlib json.loads alone instead of parse_webhook's checks",
         "codec.parse_webhook_us", "codec.stdlib_json_loads_us", "µs per 28 KB webhook", "measured only: "
         "the nesting-depth pre-check is hamster/intake/envelope.py's, kept for safety"),
    ]  # fmt: skip
    return [
        {"knob": knob, "unit": unit, "before": n(before), "after": n(after), "outcome": outcome}
        for knob, before, after, unit, outcome in rows
    ]


def notes(results: dict[str, Any]) -> list[str]:
    """For each target missed, what limits it, with this run's figures."""

    def n(path: str) -> float | None:
        return _num(results, path)

    def f(path: str) -> str:
        return _fmt(_num(results, path))

    missed = {row["name"] for row in results.get("targets", []) if row["met"] is False}
    out = []
    cores = results.get("machine", {}).get("cores") or 1
    load = results.get("machine", {}).get("load_average_at_start") or [0.0]
    if load[0] > cores / 2:
        out.append(
            f"The machine was busy when this run started (load average {load[0]:.1f} on {cores} cores): "
            "other processes took CPU from every section, so read the ratios rather than the absolutes."
        )
    phases = _get(results, "e2e.hamster.phases_p50_ms") or {}
    why = {
        "intake rps / HTTP limit": (
            f"Intake: every webhook is stored with acks=all before the 202, and the intake, the load "
            f"generator and the broker share {cores} cores. Kafka limit at the same concurrency: "
            f"{f('intake.kafka_limit_rps')} writes/s; parse_webhook alone costs "
            f"{f('codec.parse_webhook_us')} µs per webhook, {f('codec.stdlib_json_loads_us')} of it "
            "JSON parsing."
        ),
        "intake p99 at half max rate": (
            f"Intake p99: at {f('intake.p_at_rps')} requests/s offered the CPU is shared with the broker and "
            "the load generator; the tail is queueing for it (p50 "
            f"{f('intake.p50_ms')} ms)."
        ),
        "e2e p50, low load": (
            f"End to end: each run is 8 acknowledged Kafka writes and three agent hand-offs on one worker; "
            f"with async def stages p50 is {f('e2e.async_p50_ms')} ms. Phases at p50 (def): "
            + ", ".join(f"{k} {v:.0f} ms" for k, v in phases.items())
            + f"; stage hop {f('hop.p50_ms')} ms."
        ),
        "e2e runs/s / Celery runs/s": (
            f"Runs/s: one worker with concurrency 1 per agent (faust-streaming #606), each stage costs two "
            f"acknowledged run-log writes and an acknowledged hand-off; async def stages reach "
            f"{f('e2e.async_runs_per_s')} runs/s. Celery's pre-forked child runs tasks back to back "
            "from Redis."
        ),
        "e2e p50 / Celery p50": (
            "Latency against Celery: Celery's chain is 3 Redis round trips with no durable log; Hamster's "
            f"is 8 acknowledged Kafka writes per run. Async def stages: {f('e2e.async_p50_ms')} ms against "
            f"Celery's {f('e2e.celery_p50_ms')} ms."
        ),
        "stage hop p50": (
            f"Hop: StageSucceeded (acked) → hand-off record (acked) → the next agent's fetch → StageStarted "
            f"(acked): three acknowledged writes and a fetch per hop. With async def stages the hop is "
            f"{f('hop.async_p50_ms')} ms."
        ),
        "replay events/s": (
            "Replay: streamed (aiokafka, one fetched batch held), each batch's writes acknowledged together; "
            "per webhook it decodes (orjson, the envelope's own fields validated), matches and re-encodes "
            f"({f('codec.decode_envelope_us')} + {f('codec.encode_envelope_us')} µs) in one process, "
            "beside the broker on the same cores."
        ),
        "replay dry run events/s": (
            "Dry run: every webhook of the bench is selected and matches, so each is read and decoded "
            f"(28 KB of JSON: {f('codec.decode_envelope_us')} µs) and matched; the header pre-check only "
            "saves records a filter (event, delivery, repository, time) rules out. Reading the topic with "
            "aiokafka is the other half."
        ),
        "projection rebuild records/s": (
            "Projection: batches folded per run in memory, each row written once with executemany; what "
            "is left per record is decoding it (pydantic) and the fold (evolve)."
        ),
        "projection rebuild records/s, PostgreSQL": (
            "Projection into PostgreSQL: the same batches; executemany of UPDATEs goes row by row through "
            "psycopg's pipeline."
        ),
        "scale: worker RSS, 100,000 / 1,000 runs": (
            f"Worker RSS: {f('scale.worker_rss_mb_large')} MB against {f('scale.worker_rss_mb_small')} MB."
        ),
        "scale: worker start-up, 100,000 / 1,000 runs": (
            f"Worker start-up: {f('scale.worker_start_s_large')} s against "
            f"{f('scale.worker_start_s_small')} s "
            "(Faust's start, the subscribers table, the run view folded from the run-marks)."
        ),
        "scale: audit verify records/s": (
            "Audit: a sha256 over each record's canonical JSON (the stdlib's json.dumps with sorted keys, "
            "kept so every hash stays what it was) plus reading and parsing the record."
        ),
        "match 1,000 subs / 10 subs": (
            f"Matching: {f('match.us_per_event.1000')} µs against {f('match.us_per_event.10')} µs."
        ),
        "slots: long stages makespan / ideal": (
            f"Long stages: {f('slots.long_stages.makespan_s')} s against {f('slots.long_stages.ideal_s')} s; "
            "on top of the stages come the webhook → first claim "
            f"({f('slots.long_stages.to_first_claim_s')} s: intake, match, stage request, the claim's "
            "acknowledged write), the hand-over between rounds "
            "(StageSucceeded and RunSucceeded written, the slot freed, the next claim written, after "
            "HAMSTER_CLAIM_DELAY_S on a worker that does not hold the run's partition) and the last stage's "
            f"end → RunSucceeded ({f('slots.long_stages.last_stage_to_run_end_s')} s). Celery, same tasks: "
            f"{f('slots.celery.makespan_s')} s."
        ),
        "slots: peak stages at once": (
            f"Peak: {f('slots.peak')} stages at once of {f('slots.slots_total')} slots available; the third "
            f"worker's slots took work {f('slots.long_stages.third_worker_ready_s')} s after it started."
        ),
        "slots: stages executed twice": (
            f"Stages executed twice: {f('slots.twice')} (claims the run log accepted for the same stage)."
        ),
        "slots: takeover after SIGKILL, s": (
            f"Takeover: the lease had {f('slots.takeover.lease_left_at_kill_s')} s left at the kill; "
            f"attempt 2 was claimed {f('slots.takeover.after_lease_s')} s after it ran out (a worker that "
            "does not hold the run's partition waits HAMSTER_CLAIM_DELAY_S first)."
        ),
    }
    out += [f"Section {name} failed: {error}" for name, error in (results.get("errors") or {}).items()]
    out += [text for name, text in why.items() if name in missed]
    return out


def tuning_table(results: dict[str, Any]) -> str:
    lines = ["| knob | before | after | unit | outcome |", "|---|---:|---:|---|---|"]
    for row in results.get("tuning", []):
        before, after = _fmt(row["before"]), _fmt(row["after"])
        lines.append(f"| {row['knob']} | {before} | {after} | {row['unit']} | {row['outcome']} |")
    return "\n".join(lines)
