"""``python -m bench``: run every benchmark section, print the table, write results, chart and docs.

Options scale the run; the defaults are what ``make bench`` measures (about 16 minutes on 2 cores).
``--quick`` is for checking the harness, not for quoting.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import codec, e2e, history, intake, machine, match_scaling, report, scale, slots
from bench.harness import Processes
from bench.payloads import FIXTURES
from hamster.broker import LocalBroker
from hamster.settings import load_settings

if TYPE_CHECKING:  # the contract tests' throwaway server, imported only where a section needs it
    from tests.postgres import LocalPostgres

log = logging.getLogger("bench")

SECTIONS = ("match", "intake", "e2e", "slots", "history", "scale")  # in the order they run
REPO_ROOT = Path(__file__).resolve().parents[1]


def _options(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="short trials, small counts: checks the harness")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    p.add_argument("--kafka-port", type=int, default=int(os.environ.get("BENCH_KAFKA_PORT", "29672")))
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    p.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "performance.md")
    p.add_argument("--partitions", type=int, default=4, help="HAMSTER_PARTITIONS for every namespace")
    p.add_argument("--workers", type=int, default=1, help="hamster worker processes in the e2e section")
    p.add_argument("--celery-concurrency", type=int, default=1, help="Celery worker processes (prefork)")
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the run's directory (logs, databases)")
    p.add_argument("--replay-events", type=int, help="webhooks in the history section (100,000)")
    p.add_argument("--scale-runs", help="runs of history in the scale section, SMALL,LARGE (1000,100000)")
    return p.parse_args(argv)


def _plan(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    return {
        "trials": 2 if quick else args.trials,
        "levels": [1, 8] if quick else [1, 8, 32],
        "duration": 1.5 if quick else 3.0,
        "sweep": [0.5] if quick else [0.25, 0.5, 0.75, 0.9],
        "low_rate": 5.0,
        "low_duration": 3.0 if quick else 8.0,
        "burst": 60 if quick else 100,
        "burst_concurrency": 16,
        "replay_events": args.replay_events or (5_000 if quick else 100_000),
        # Enough records for a steady rate: the command's start-up (about a second) is in the time.
        "projection_records": 8_000 if quick else 100_000,
        "scale_runs": (
            tuple(int(n) for n in args.scale_runs.split(","))
            if args.scale_runs
            else (200, 2_000)
            if quick
            else (1_000, 100_000)
        ),
        "match_budget_s": 0.3 if quick else 2.0,
        "partitions": args.partitions,
        "workers": args.workers,
        "celery_concurrency": args.celery_concurrency,
        "slots": slots.plan(quick),
        "quick": quick,
    }


def main(argv: list[str] | None = None) -> None:
    args = _options(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("kafka", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    wanted = {s.strip() for s in args.only.split(",") if s.strip()}
    sections = [s for s in SECTIONS if s in wanted]
    unknown = wanted - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown section(s): {', '.join(sorted(unknown))}")
    plan = _plan(args)
    started = time.monotonic()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(),
        "options": {**plan, "sections": sections},
        "notes": [],
    }
    seconds: dict[str, float] = {}  # wall clock per section (the Kafka start counts toward the first one)
    errors: dict[str, str] = {}
    results["section_seconds"], results["errors"] = seconds, errors
    home = Path(tempfile.mkdtemp(prefix="hamster-bench-"))
    procs = Processes(home)
    broker = None
    bootstrap = ""

    def match() -> None:
        sample = json.loads((FIXTURES / "opened.payload.json").read_text())
        results["match"] = match_scaling.run(sample, plan["match_budget_s"])
        results["codec"] = codec.run()
        log.info("match: %s", results["match"]["us_per_event"])

    def intake_section() -> None:
        results["intake"] = intake.run(
            procs, bootstrap, home, partitions=plan["partitions"], levels=plan["levels"],
            trials=plan["trials"], duration=plan["duration"], sweep=plan["sweep"],
        )  # fmt: skip

    def e2e_section() -> None:
        hamster = e2e.hamster_e2e(procs, bootstrap, home, plan)
        hamster_async = e2e.hamster_e2e(procs, bootstrap, home, plan, "bench.pipeline_async")
        celery = e2e.celery_e2e(procs, home, plan)
        results["e2e"] = {
            "p50_ms": hamster["low_load"]["p50_ms"],
            "p99_ms": hamster["low_load"]["p99_ms"],
            "runs_per_s": hamster["burst"]["runs_per_s"],
            "celery_p50_ms": celery["low_load"]["p50_ms"],
            "celery_p99_ms": celery["low_load"]["p99_ms"],
            "celery_runs_per_s": celery["burst"]["runs_per_s"],
            "async_p50_ms": hamster_async["low_load"]["p50_ms"],
            "async_p99_ms": hamster_async["low_load"]["p99_ms"],
            "async_runs_per_s": hamster_async["burst"]["runs_per_s"],
            "hamster": hamster,
            "hamster_async_tasks": hamster_async,
            "celery": celery,
        }
        results["hop"] = {**hamster["hop"], "async_p50_ms": hamster_async["hop"]["p50_ms"],
                          "async_p99_ms": hamster_async["hop"]["p99_ms"]}  # fmt: skip

    def slots_section() -> None:
        results["slots"] = slots.run(procs, bootstrap, home, plan["partitions"], plan["slots"])

    postgres: list[LocalPostgres] = []  # started by the first section that needs it

    def postgres_server() -> LocalPostgres:
        if not postgres:
            from tests.postgres import LocalPostgres  # the contract tests' throwaway server

            server = LocalPostgres()
            postgres.append(server)
            server.start()
        return postgres[0]

    def history_section() -> None:
        results.update(
            history.run(
                bootstrap, home, partitions=plan["partitions"], events=plan["replay_events"],
                records=plan["projection_records"], postgres=postgres_server(),
            )
        )  # fmt: skip

    def scale_section() -> None:
        small, large = plan["scale_runs"]
        results["scale"] = scale.run(
            procs, bootstrap, home, partitions=plan["partitions"], small=small, large=large,
            postgres=postgres_server(),
        )  # fmt: skip

    runners = {
        "match": match,
        "intake": intake_section,
        "e2e": e2e_section,
        "slots": slots_section,
        "history": history_section,
        "scale": scale_section,
    }
    try:
        for name in sections:
            t0 = time.monotonic()
            try:
                if name != "match" and broker is None:
                    kafka = load_settings(kafka_bootstrap=f"127.0.0.1:{args.kafka_port}", home=home / "kafka")
                    broker = LocalBroker(kafka)
                    bootstrap = broker.start(timeout_s=180.0).bootstrap
                    log.info("Kafka up at %s", bootstrap)
                runners[name]()
            except Exception as exc:
                # One section failing still leaves the others' figures; the run exits non-zero at the end.
                log.exception("section %s failed", name)
                errors[name] = f"{type(exc).__name__}: {exc}"
                procs.stop_all()
            seconds[name] = time.monotonic() - t0
    finally:
        procs.stop_all()
        for server in postgres:
            server.stop()
        if broker is not None:
            broker.stop()
        if args.keep:
            log.info("run directory kept: %s", home)
        else:
            shutil.rmtree(home, ignore_errors=True)
    results["duration_s"] = time.monotonic() - started
    results["load_average_at_end"] = list(os.getloadavg())
    results["targets"] = report.targets(results)
    results["tuning"] = report.tuning(results)
    results["notes"] = report.notes(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    report.chart(results, args.out / "latest.png")
    args.docs.parent.mkdir(parents=True, exist_ok=True)
    args.docs.write_text(report.markdown(results))
    report.print_summary(results)
    log.info("wrote %s, %s and %s in %.0f s", args.out / "latest.json", args.out / "latest.png", args.docs,
             results["duration_s"])  # fmt: skip
    if errors:
        raise SystemExit(f"sections failed: {', '.join(f'{k} ({v})' for k, v in errors.items())}")


if __name__ == "__main__":
    main()
