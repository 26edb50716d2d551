"""JUnit XML into counts, failures and check-run annotations."""

from __future__ import annotations

from pathlib import Path

from hamster.execution.test_reports import check_annotations, check_summary, in_batches, parse_reports
from tests.pipelines.logs_catalog import JUNIT


def test_a_report_is_counted_and_its_failures_located(tmp_path: Path):
    """file/line attributes when present, else the classname's file and the line its traceback names."""
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    report = parse_reports([path])
    assert {k: report[k] for k in ("tests", "passed", "failures", "errors", "skipped")} == {
        "tests": 4,
        "passed": 1,
        "failures": 2,
        "errors": 0,
        "skipped": 1,
    }
    assert [(f["name"], f["file"], f["line"]) for f in report["failed"]] == [
        ("test_total", "tests/test_api.py", 12),
        ("test_name", "tests/test_models.py", 7),
    ]


def test_each_located_failure_becomes_an_annotation_in_batches_of_fifty():
    """GitHub's rules: path, lines, a level; a failure without a file has none; 50 per request."""
    failed = [
        {
            "name": f"t{i}",
            "classname": "c",
            "kind": "failure",
            "message": "m",
            "text": "",
            "file": "a.py",
            "line": i,
        }
        for i in range(1, 121)
    ]
    failed.append({**failed[0], "file": None})
    reports = {
        "tests": {"tests": 121, "passed": 0, "failures": 121, "errors": 0, "skipped": 0, "failed": failed}
    }
    notes = check_annotations(reports)
    assert len(notes) == 120
    assert notes[0] == {
        "path": "a.py",
        "start_line": 1,
        "end_line": 1,
        "annotation_level": "failure",
        "title": "c.t1",
        "message": "m",
        "raw_details": "",
    }
    assert [len(batch) for batch in in_batches(notes)] == [50, 50, 20]
    assert "**tests**: 121 tests: 0 passed, 121 failed" in check_summary(reports)
