"""`hamster dev` (what `make dev` runs): broker, intake and worker come up, run a pipeline, and stop."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest

from tests.integration.system import HAMSTER, REPO_ROOT, free_port, wait_until
from tests.samples import WEBHOOKS

pytestmark = pytest.mark.integration


def test_dev_runs_the_example_pipeline_and_stops_cleanly(tmp_path):
    """The quickstart: dev prints a secret, a signed sample gets 202, its run succeeds, SIGTERM stops all."""
    kafka_port = int(os.environ.get("HAMSTER_TEST_DEV_KAFKA_PORT", "29992"))
    intake_port, web_port = free_port(), free_port()
    env = {
        **os.environ,
        "HAMSTER_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "HAMSTER_HOME": str(tmp_path),
        "HAMSTER_NAMESPACE": "devtest",
    }
    for key in ("HAMSTER_WEBHOOK_SECRET", "HAMSTER_SUBSCRIBERS"):
        env.pop(key, None)
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        dev = subprocess.Popen(
            [*HAMSTER, "dev", "--port", str(intake_port), "--web-port", str(web_port)],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        secret = wait_until(lambda: re.search(r"secret: (\w+)", log.read_text()), 180, 0.5, "dev to start")[1]

        def send():
            return subprocess.run(
                [
                    *HAMSTER,
                    "send",
                    str(WEBHOOKS / "pull_request" / "opened.payload.json"),
                    "--event",
                    "pull_request",
                    "--secret",
                    secret,
                    "--url",
                    f"http://127.0.0.1:{intake_port}/webhooks/github",
                ],
                env=env,
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        sent = wait_until(lambda: (r := send()).returncode == 0 and r, 90, 1.0, "the intake to accept")
        assert sent.stdout.startswith("202")
        delivery = json.loads(sent.stdout.splitlines()[1])["delivery_id"]

        def finished():
            listed = subprocess.run(
                [*HAMSTER, "runs", "list", "--json"],
                env=env,
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            runs = [r for r in json.loads(listed.stdout or "[]") if r["delivery_id"] == delivery]
            return runs if runs and runs[0]["status"] == "succeeded" else None

        [run] = wait_until(finished, 120, 1.0, "the example run to succeed")
        assert [s["name"] for s in run["stages"]] == ["describe", "lint_title", "summary"]
        assert run["subscriber"] == "pr-checks"
    finally:
        dev.send_signal(signal.SIGTERM)
        code = dev.wait(timeout=90)
    assert code == 0, log.read_text()[-3000:]
    status = subprocess.run(
        [*HAMSTER, "broker", "status"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 3, status.stdout
