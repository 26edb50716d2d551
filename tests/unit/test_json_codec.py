"""hamster.json_codec reads exactly what the standard library reads, faster where it can."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hamster.json_codec import dumps, loads

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_any_json_reads_as_the_stdlib_reads_it(value):
    """Integers of any size, floats, unicode, nesting: the same value, of the same types."""
    raw = json.dumps(value, ensure_ascii=False).encode()
    assert loads(raw) == json.loads(raw)
    assert repr(loads(raw)) == repr(json.loads(raw))


def test_what_only_the_stdlib_accepts_is_read_as_it_reads_it():
    """NaN, a float beyond a double and a lone surrogate: orjson refuses them, the stdlib reads them."""
    import math

    assert math.isnan(loads(b'{"a": NaN}')["a"]) and loads(b"[1e400]") == [math.inf]
    assert loads(b'"\\ud800"') == json.loads(b'"\\ud800"')


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,]", b"{'a': 1}", b"\xff"])
def test_what_is_not_json_is_a_value_error(raw):
    """Anything the standard library refuses is refused (a ValueError), never half read."""
    with pytest.raises(ValueError):
        loads(raw)


@given(JSON)
def test_what_dumps_writes_reads_back_the_same(value):
    """dumps (the projection's JSON columns) writes any JSON value, huge integers included."""
    assert json.loads(dumps(value)) == value
