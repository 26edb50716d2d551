"""Subscribers of the stage-log, artifact and test-report tests (tests/integration/test_stage_logs.py,
tests/browser/test_live_log.py)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hamster import Subscriber, task
from hamster.tasks import shell

GIVEN = "given-token-4f1c9a"  # a secret a task is given and asks to mask (ctx.mask)
WORKER_SECRET = "test-webhook-secret-7f3a9c2e"  # HAMSTER_WEBHOOK_SECRET of tests.integration.system.System

ticks = shell(
    "for i in 1 2 3 4 5 6 7 8; do "
    "printf '\\033[32mtick %s\\033[0m\\n' $i; echo \"tock $i\" >&2; sleep 1; done",
    name="ticks",
    timeout=120,
)


@task(timeout=60)
def leaky(ctx: Any) -> dict[str, Any]:
    ctx.mask(GIVEN)
    print("printed", WORKER_SECRET)
    sys.stdout.write("split " + WORKER_SECRET[:5])  # one secret over two writes
    sys.stdout.write(WORKER_SECRET[5:] + " across writes\n")
    logging.getLogger("pipeline").warning("logged %s and %s", WORKER_SECRET, GIVEN)
    ctx.log("ctx.log says", GIVEN)
    return {"ok": True}


@task
async def async_logs(ctx: Any) -> dict[str, Any]:
    ctx.log("async ctx.log line")
    logging.getLogger("pipeline").warning("async logging line with %s", WORKER_SECRET)
    return {"ok": True}


flood = shell('i=0; while [ $i -lt 3000 ]; do echo "line $i of a flood"; i=$((i+1)); done', name="flood")

build = shell(
    "mkdir -p dist notes && echo 'the wheel' > dist/pkg-1.0-py3-none-any.whl && echo note > notes/a.txt",
    name="build",
    artifacts=["dist/*.whl"],
)


@task(timeout=60)
def install(ctx: Any) -> dict[str, Any]:
    path = ctx.artifacts.get("pkg-1.0-py3-none-any.whl")
    ctx.artifacts.save(path, name="installed.txt")
    return {"content": path.read_text(), "available": ctx.artifacts.names()}


escape = shell("ln -s /etc leak", name="escape", artifacts=["leak/host*"])

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4" failures="2" errors="0" skipped="1">
<testcase classname="tests.test_api" name="test_ok" time="0.01"/>
<testcase classname="tests.test_api" name="test_skip" time="0.01"><skipped message="later"/></testcase>
<testcase classname="tests.test_api" name="test_total" file="tests/test_api.py" line="12" time="0.02">
<failure message="assert 3 == 4">tests/test_api.py:12: AssertionError</failure></testcase>
<testcase classname="tests.test_models" name="test_name" time="0.02">
<failure message="KeyError: name">def test_name():
&gt;   model["name"]
E   KeyError: name

tests/test_models.py:7: KeyError</failure></testcase>
</testsuite></testsuites>
"""

tests_stage = shell(
    f"mkdir -p reports && cat > reports/junit.xml <<'XML'\n{JUNIT}XML\necho '2 failed'; exit 1",
    name="tests",
    junit=["reports/*.xml"],
)

MANY = 60  # failures: more annotations than GitHub takes in one request
many_tests = shell(
    f"{sys.executable} {Path(__file__).with_name('junit_writer.py')} reports/many.xml {MANY}; exit 1",
    name="many_tests",
    junit=["reports/*.xml"],
)

SUBSCRIBERS = [
    Subscriber("ticks", events=["pull_request"], repos=["acme/ticks"], pipeline=[ticks]),
    Subscriber("leaky", events=["pull_request"], repos=["acme/leaky"], pipeline=[leaky, async_logs]),
    Subscriber("flood", events=["pull_request"], repos=["acme/flood"], pipeline=[flood]),
    Subscriber("artifacts", events=["pull_request"], repos=["acme/artifacts"], pipeline=[build, install]),
    Subscriber("escape", events=["pull_request"], repos=["acme/escape"], pipeline=[escape]),
    Subscriber("junit", events=["pull_request"], repos=["acme/junit"], pipeline=[tests_stage]),
    # Reporting to the fake GitHub as an app (tests/integration/test_test_reports.py).
    Subscriber(
        "junit-checks",
        events=["pull_request"],
        repos=["acme/app-junit"],
        pipeline=[tests_stage],
        report=True,
        checks=True,
    ),
    Subscriber(
        "junit-many", events=["pull_request"], repos=["acme/app-many"], pipeline=[many_tests], checks=True
    ),
]
