"""The benchmark's pure parts: percentiles, medians of trials, rates, ratios, and the targets they meet."""

from __future__ import annotations

import pytest

from bench.report import notes, targets
from bench.stats import latency_summary, median, median_of_trials, percentile, rate, ratio


def test_percentile_interpolates_between_ranks():
    """Percentiles interpolate linearly between neighbouring ranks, like NumPy's default."""
    samples = [10.0, 20.0, 30.0, 40.0]
    assert percentile(samples, 0) == 10.0
    assert percentile(samples, 100) == 40.0
    assert percentile(samples, 50) == 25.0
    assert percentile(samples, 99) == pytest.approx(39.7)


def test_percentile_ignores_input_order():
    """Samples need not be sorted."""
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0


def test_percentile_of_one_sample_is_that_sample():
    """A single sample is every percentile."""
    assert percentile([7.0], 1) == percentile([7.0], 99) == 7.0


def test_percentile_rejects_nothing_and_out_of_range():
    """No samples, or q outside 0..100, is an error rather than a made-up figure."""
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_median_of_even_count_is_the_midpoint():
    """The median of an even count is the mean of the middle two."""
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_latency_summary_is_in_milliseconds():
    """Latencies measured in seconds are summarised in milliseconds."""
    summary = latency_summary([0.001] * 99 + [0.101])
    assert summary["p50_ms"] == pytest.approx(1.0)
    assert summary["max_ms"] == pytest.approx(101.0)
    assert summary["n"] == 100
    assert 1.0 < summary["p99_ms"] < 101.0


def test_median_of_trials_takes_each_figure_separately():
    """Each figure's median is taken across trials on its own; a figure missing from a trial is skipped."""
    trials = [{"rps": 100.0, "p99_ms": 9.0}, {"rps": 300.0, "p99_ms": 1.0}, {"rps": 200.0}]
    assert median_of_trials(trials) == {"rps": 200.0, "p99_ms": 5.0}
    with pytest.raises(ValueError):
        median_of_trials([])


def test_rate_and_ratio_guard_against_zero():
    """A zero duration gives a zero rate, a zero baseline gives no ratio."""
    assert rate(50, 2.0) == 25.0
    assert rate(50, 0.0) == 0.0
    assert ratio(3.0, 4.0) == 0.75
    assert ratio(3.0, 0.0) is None


def test_targets_compare_each_figure_with_the_issue_target():
    """Targets are met, missed, or 'not measured' when a section did not run."""
    results = {
        "intake": {"rps": 800.0, "http_limit_rps": 1000.0, "p99_ms": 30.0},
        "match": {"ratio_1000_to_10": 1.5},
        "e2e": {"p50_ms": 40.0, "celery_p50_ms": 20.0, "runs_per_s": 50.0, "celery_runs_per_s": 40.0},
    }
    met = {row["name"]: row["met"] for row in targets(results)}
    assert met["intake rps / HTTP limit"] is True
    assert met["intake p99 at half max rate"] is False
    assert met["e2e p50 / Celery p50"] is False  # 2.0 times Celery's
    assert met["e2e runs/s / Celery runs/s"] is True
    assert met["match 1,000 subs / 10 subs"] is True
    assert met["replay events/s"] is None


def test_notes_explain_only_the_targets_missed():
    """A missed target gets a line saying what limits it; a met one gets none."""
    results = {"intake": {"rps": 800.0, "http_limit_rps": 1000.0, "p99_ms": 30.0}, "machine": {"cores": 2}}
    results["targets"] = targets(results)
    lines = notes(results)
    assert any(line.startswith("Intake p99") for line in lines)
    assert not any(line.startswith("Intake: ") for line in lines)


def test_slot_targets_compare_with_the_slots_available_and_the_lease():
    """The peak is held against the slots available in that run, the takeover against its lease + 5 s."""
    results = {
        "slots": {"makespan_x_ideal": 1.1, "peak": 4, "slots_total": 6, "twice": 0, "takeover_s": 14.0,
                  "lease_s": 10.0},
    }  # fmt: skip
    met = {row["name"]: row["met"] for row in targets(results)}
    assert met["slots: long stages makespan / ideal"] is True
    assert met["slots: peak stages at once"] is False
    assert met["slots: stages executed twice"] is True
    assert met["slots: takeover after SIGKILL, s"] is True
    results["slots"].update(takeover_s=15.5, slots_total=4)
    met = {row["name"]: row["met"] for row in targets(results)}
    assert met["slots: takeover after SIGKILL, s"] is False
    assert met["slots: peak stages at once"] is True
