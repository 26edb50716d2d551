"""Test reports: JUnit XML files a stage names (``shell(..., junit=[...])``), parsed with junitparser into
counts and failures, as JSON the stage output carries (the run page and the check run read it there).

Where a failure is: the ``file`` and ``line`` attributes of its ``testcase`` when the tool writes them
(pytest with ``junit_family=xunit1``, many JUnit tools), else the file named by its ``classname``
(``tests.test_api`` → ``tests/test_api.py``) and the last ``<that file>:<line>`` in its failure text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from junitparser import Attr, Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

MAX_FAILURES = 200  # kept in the stage output; the rest are counted
MAX_TEXT = 2000


class _LocatedCase(TestCase):
    file = Attr()
    line = Attr()


def _suites(xml: Any) -> list[Any]:
    return [xml] if isinstance(xml, TestSuite) else list(xml)


def _where(case: _LocatedCase, text: str) -> tuple[str | None, int | None]:
    path = case.file
    if not path and case.classname:
        path = case.classname.replace(".", "/") + ".py"
    line = int(case.line) if case.line and str(case.line).isdigit() else None
    if path and line is None:
        hits = re.findall(rf"^{re.escape(path)}:(\d+):", text, re.MULTILINE)
        line = int(hits[-1]) if hits else None
    return path, line


def parse_reports(files: list[Path]) -> dict[str, Any]:
    """Counts over every file (``tests``, ``failures``, ``errors``, ``skipped``, ``passed``) and the
    failed and errored cases (``name``, ``classname``, ``message``, ``text``, ``file``, ``line``)."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failed: list[dict[str, Any]] = []
    for path in files:
        for suite in _suites(JUnitXml.fromfile(str(path))):
            for case in suite.iterchildren(_LocatedCase):
                counts["tests"] += 1
                results = case.result
                bad = [r for r in results if isinstance(r, Failure | Error)]
                if any(isinstance(r, Skipped) for r in results) and not bad:
                    counts["skipped"] += 1
                    continue
                if not bad:
                    continue
                kind = "errors" if isinstance(bad[0], Error) else "failures"
                counts[kind] += 1
                text = (bad[0].text or "")[-MAX_TEXT:]
                file, line = _where(case, text)
                if len(failed) < MAX_FAILURES:
                    failed.append(
                        {
                            "name": case.name,
                            "classname": case.classname,
                            "kind": kind[:-1],
                            "message": (bad[0].message or "")[:MAX_TEXT],
                            "text": text,
                            "file": file,
                            "line": line,
                        }
                    )
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {**counts, "passed": passed, "files": [p.name for p in files], "failed": failed}


def summary_line(report: dict[str, Any]) -> str:
    return (
        f"{report['tests']} tests: {report['passed']} passed, {report['failures']} failed, "
        f"{report['errors']} errors, {report['skipped']} skipped"
    )


# Check runs (https://docs.github.com/en/rest/checks/runs#update-a-check-run): an annotation needs a path
# in the repository, start and end lines and a level; GitHub takes at most 50 per request and appends
# those of later requests to the earlier ones.
ANNOTATIONS_PER_REQUEST = 50
ANNOTATION_TITLE_MAX = 255
ANNOTATION_MESSAGE_MAX = 64 * 1024 - 1


def check_summary(reports: dict[str, dict[str, Any]]) -> str:
    """Markdown for the check run's summary: a line of counts per stage, and the failed tests."""
    lines = ["### Tests"]
    for stage, report in reports.items():
        lines.append(f"**{stage}**: {summary_line(report)}")
        lines += [
            f"- ❌ `{case['classname']}.{case['name']}`: {case['message']}" for case in report["failed"]
        ]
    return "\n".join(lines)


def check_annotations(reports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``failure`` annotation per failed test that says where it is (file and line)."""
    found = []
    for report in reports.values():
        for case in report["failed"]:
            if not case["file"]:
                continue  # GitHub refuses an annotation without a path
            line = case["line"] or 1
            found.append(
                {
                    "path": case["file"],
                    "start_line": line,
                    "end_line": line,
                    "annotation_level": "failure",
                    "title": f"{case['classname']}.{case['name']}"[:ANNOTATION_TITLE_MAX],
                    "message": (case["message"] or case["kind"])[:ANNOTATION_MESSAGE_MAX],
                    "raw_details": case["text"][:ANNOTATION_MESSAGE_MAX],
                }
            )
    return found


def in_batches(annotations: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    size = ANNOTATIONS_PER_REQUEST
    return [annotations[i : i + size] for i in range(0, len(annotations), size)]
