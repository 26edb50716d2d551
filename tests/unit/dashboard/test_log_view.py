"""Log chunks into the run page's numbered HTML lines, and into raw text."""

from __future__ import annotations

from datetime import UTC, datetime

from hamster.dashboard.log_view import Lines, raw_text
from hamster.execution.stage_logs import LogChunk


def chunk(text: str, seq: int, stream: str = "stdout", end: bool = False, stage: str = "b") -> LogChunk:
    return LogChunk(
        run_id="r",
        stage=stage,
        index=0,
        attempt=1,
        stream=stream,
        seq=seq,
        time=datetime.now(UTC),
        text=text,
        end=end,
    )  # type: ignore[arg-type]


def test_lines_cut_across_chunks_are_joined_and_numbered():
    """A line is shown once complete; numbering goes on across chunks; the end shows an open line."""
    lines = Lines()
    assert lines.add(chunk("hel", 0)) is None
    first = lines.add(chunk("lo\nwor", 1))
    assert first is not None and first["first"] == 1 and [x["html"] for x in first["lines"]] == ["hello"]
    last = lines.add(chunk("ld", 2, end=True))
    assert last is not None and last["first"] == 2 and last["end"] and last["lines"][0]["html"] == "world"


def test_colours_become_html_and_markup_is_escaped():
    """ANSI colours turn into styled spans; text that looks like HTML stays text."""
    event = Lines().add(chunk("\x1b[31mred\x1b[0m <script>\n", 0))
    assert event is not None
    assert event["lines"][0]["html"] == '<span style="color: #aa0000">red</span> &lt;script&gt;'


def test_another_stream_closes_the_open_line():
    """stdout's unfinished line is shown as it is when stderr writes."""
    lines = Lines()
    lines.add(chunk("progress 50%", 0))
    event = lines.add(chunk("warning\n", 1, stream="stderr"))
    assert event is not None
    assert [(x["stream"], x["html"]) for x in event["lines"]] == [
        ("stdout", "progress 50%"),
        ("stderr", "warning"),
    ]


def test_raw_text_has_a_header_per_stage_attempt():
    assert (
        raw_text([chunk("a\n", 0), chunk("b", 0, stage="c")])
        == "== b (attempt 1) ==\na\n== c (attempt 1) ==\nb"
    )
