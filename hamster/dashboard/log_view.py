"""Stage log chunks as the numbered HTML lines the run page shows (pure: no I/O).

Chunks cut lines anywhere; ``Lines`` joins them back per stage attempt and hands out complete lines,
numbered from 1 in each section (the anchor ``#L<stage>-<attempt>-<n>`` links to one), with ANSI colours
turned into HTML by ansi2html (which also escapes the text). A line still open when its attempt ends is
handed out then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ansi2html import Ansi2HTMLConverter

from hamster.execution.stage_logs import LogChunk

_CONVERTER = Ansi2HTMLConverter(inline=True, escaped=True)


def ansi_html(text: str) -> str:
    return str(_CONVERTER.convert(text, full=False))


@dataclass
class _Section:
    number: int = 0
    partial: str = ""
    stream: str = "stdout"


@dataclass
class Lines:
    """Complete lines out of chunks, per stage attempt."""

    sections: dict[tuple[str, int], _Section] = field(default_factory=dict)

    def add(self, chunk: LogChunk) -> dict[str, Any] | None:
        """The lines ``chunk`` completes, as one event for the page; None when it completes none."""
        section = self.sections.setdefault((chunk.stage, chunk.attempt), _Section())
        texts: list[tuple[str, str]] = []
        if section.partial and section.stream != chunk.stream:
            texts.append((section.stream, section.partial))  # another stream begins: close the open line
            section.partial = ""
        pieces = (section.partial + chunk.text).split("\n")
        section.partial, section.stream = pieces.pop(), chunk.stream
        texts += [(chunk.stream, piece) for piece in pieces]
        if chunk.end and section.partial:
            texts.append((section.stream, section.partial))
            section.partial = ""
        if not texts and not chunk.end:
            return None
        first = section.number + 1
        section.number += len(texts)
        return {
            "stage": chunk.stage,
            "attempt": chunk.attempt,
            "first": first,
            "end": chunk.end,
            "lines": [{"stream": stream, "html": ansi_html(text)} for stream, text in texts],
        }


def raw_text(chunks: list[LogChunk]) -> str:
    """The whole log as plain text, a header line before each stage attempt."""
    out: list[str] = []
    section: tuple[str, int] | None = None
    for chunk in chunks:
        if (chunk.stage, chunk.attempt) != section:
            section = (chunk.stage, chunk.attempt)
            if out and not out[-1].endswith("\n"):
                out.append("\n")
            out.append(f"== {chunk.stage} (attempt {chunk.attempt}) ==\n")
        out.append(chunk.text)
    return "".join(out)
