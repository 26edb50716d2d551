"""`python junit_writer.py FILE N`: a JUnit XML file with N failed tests, each at its own line."""

from __future__ import annotations

import sys
from pathlib import Path

path, count = Path(sys.argv[1]), int(sys.argv[2])
cases = "".join(
    f'<testcase classname="t.test_many" name="test_{i}" file="t/test_many.py" line="{i + 1}">'
    f'<failure message="no {i}">t/test_many.py:{i + 1}: AssertionError</failure></testcase>'
    for i in range(count)
)
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(f'<?xml version="1.0"?><testsuite name="many" tests="{count}">{cases}</testsuite>')
