"""check_utf8_text measures lines in C (a window per line limit, counts per block) and
walks them one by one only in a block that may hold a too-long line: its verdicts and
messages are the line-by-line walk's, wherever the read blocks split the file."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from training_pipeline.ingestion import text_checks
from training_pipeline.ingestion.errors import FileRejected
from training_pipeline.ingestion.text_checks import check_utf8_text

PROPERTY = settings(
    max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
LIMIT = 8
BREAKS = [b"\n", b"\r", b"\r\n"]
# Lines around the limit, short ones, multi-byte characters split by small blocks, and
# now and then a byte that is not UTF-8 text (the walk and the count share those checks).
PIECES = st.one_of(
    st.sampled_from([b"x" * (LIMIT - 1), b"x" * LIMIT, b"x" * (LIMIT + 1), b"\xc3\xa9"]),
    st.binary(max_size=3).map(lambda b: b.replace(b"\x00", b"y").replace(b"\xff", b"z")),
    st.sampled_from(BREAKS),
    st.just(b"\x00") | st.just(b"\xff"),
)
BODY = st.lists(st.one_of(st.sampled_from(BREAKS), PIECES), max_size=24).map(b"".join)


def _verdict(body: bytes, cr_breaks_lines: bool, block_bytes: int, limit: int) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "orders.csv"
        path.write_bytes(body)
        try:
            check_utf8_text(path, limit, cr_breaks_lines=cr_breaks_lines, block_bytes=block_bytes)
        except FileRejected as refused:
            return str(refused)
    return "accepted"


@PROPERTY
@given(
    body=BODY,
    cr_breaks_lines=st.booleans(),
    block_bytes=st.integers(1, 2 * LIMIT + 3),
    limit=st.integers(LIMIT - 1, LIMIT + 1),
)
# A CRLF split by the blocks, the next block holding the rest of its LF and a line of
# exactly the limit: the skipped LF must not count towards that line.
@example(body=b"x" * 8 + b"\r\n" + b"y" * 8 + b"\n", cr_breaks_lines=True, block_bytes=9, limit=8)
def test_the_counted_check_gives_the_walks_verdict_and_message(
    body: bytes, cr_breaks_lines: bool, block_bytes: int, limit: int
) -> None:
    counted = _verdict(body, cr_breaks_lines, block_bytes, limit)
    with mock.patch.object(text_checks, "_lines_fit", lambda *_: False):  # walk every block
        walked = _verdict(body, cr_breaks_lines, block_bytes, limit)
    assert counted == walked


def _longest_line(block: bytes, start: int, current: int, cr_breaks_lines: bool) -> int:
    lines = re.split(rb"\r\n|\r|\n" if cr_breaks_lines else rb"\n", block[start:])
    return max([current + len(lines[0]), *map(len, lines)])


@PROPERTY
@given(
    block=BODY.map(lambda b: b.replace(b"\x00", b"").replace(b"\xff", b"")),
    data=st.data(),
    cr_breaks_lines=st.booleans(),
)
def test_lines_fit_exactly_when_no_line_is_longer_than_the_limit(
    block: bytes, data: st.DataObject, cr_breaks_lines: bool
) -> None:
    start = data.draw(st.integers(0, len(block)))
    current = data.draw(st.integers(0, LIMIT))
    limit = text_checks._Limit(LIMIT, "a test", cr_breaks_lines)
    fits = text_checks._lines_fit(block, start, current, limit)
    assert fits == (_longest_line(block, start, current, cr_breaks_lines) <= LIMIT)


@pytest.mark.parametrize(("cr_breaks_lines", "line"), [(True, 3), (False, 1)])
def test_a_line_one_byte_over_the_limit_is_refused_at_its_line(
    tmp_path: Path, cr_breaks_lines: bool, line: int
) -> None:
    path = tmp_path / "orders.csv"
    # Without CR as a break (JSON Lines), the first line's CR is its 101st byte.
    path.write_bytes(b"x" * 100 + b"\r\n" + b"y" * 100 + b"\n" + b"z" * 101 + b"\n")
    check_utf8_text(path, 101, cr_breaks_lines=cr_breaks_lines)
    with pytest.raises(FileRejected, match=f"^line {line} is longer than 100 bytes"):
        check_utf8_text(path, 100, cr_breaks_lines=cr_breaks_lines)
