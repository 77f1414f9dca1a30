"""Is a delivered text file UTF-8 text with lines of a sane length?  Checked in one pass.

The file is read in blocks, never whole, so a huge single line or a binary blob with a
text name costs one block of memory.  Only after this pass do line-oriented readers
(Python's csv and json, DuckDB) see the file, so none of them can be made to hold an
unbounded line.  A UTF-8 byte-order mark is legitimate UTF-8 and passes; UTF-16 and
UTF-32 (with or without a mark) and Latin-1 are refused with the encoding named.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

from training_pipeline.environment import MAX_LINE_BYTES_ENV
from training_pipeline.ingestion.errors import FileRejected

BLOCK_BYTES = 1 << 20
NL, CR = b"\n", b"\r"

_OTHER_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _encoding_hint(byte: int) -> str:
    if 0x80 <= byte <= 0xFF:
        return " (Latin-1 or Windows-1252 text? only UTF-8 is accepted)"
    return ""


def check_utf8_text(
    path: Path,
    max_line_bytes: int,
    *,
    cr_breaks_lines: bool,
    limit_from: str = MAX_LINE_BYTES_ENV,
    block_bytes: int | None = None,
) -> None:
    """Raise FileRejected naming the line and byte offset of the first problem.

    ``cr_breaks_lines``: CSV readers also end a line at a lone carriage return, so the
    length limit must too; JSON text never holds a raw one inside a record.
    ``limit_from``: where the line limit was set (a variable or a declaration's field).
    ``block_bytes``: how much is read at a time, BLOCK_BYTES unless given (small in
    tests, to put breaks and characters across block boundaries).
    """
    limit = _Limit(max_line_bytes, limit_from, cr_breaks_lines)
    size = BLOCK_BYTES if block_bytes is None else block_bytes
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0  # bytes before the current block
    line = 1  # line number at the start of the current block
    current = 0  # length of the line still open at the end of the previous block
    pending_cr = False
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(size), b""):
            if offset == 0:
                for bom, name in _OTHER_BOMS:
                    if block.startswith(bom):
                        raise FileRejected(
                            f"{name} text (it starts with a {name} byte-order mark); "
                            "only UTF-8 is accepted"
                        )
            if (nul := block.find(b"\x00")) >= 0:
                raise FileRejected(
                    f"not UTF-8 text: a NUL byte at line {line + block.count(NL, 0, nul)} "
                    f"(byte offset {offset + nul}); UTF-16 text or a binary file?"
                )
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                carried = len(error.object) - len(block)  # bytes held from the last block
                at = max(error.start - carried, 0)
                raise FileRejected(
                    f"not UTF-8 text: byte 0x{error.object[error.start]:02x} at line "
                    f"{line + block.count(NL, 0, at)} (byte offset {offset + at}) is not "
                    f"valid UTF-8{_encoding_hint(error.object[error.start])}"
                ) from None
            # A CRLF split across two blocks is one line break, not two.
            start = 1 if pending_cr and block.startswith(NL) else 0
            pending_cr = cr_breaks_lines and block.endswith(CR)
            if _lines_fit(block, start, current, limit):
                line, current = _count_lines(block, start, line, current, cr_breaks_lines)
            else:  # the exact walk finds the line and raises
                line, current = _walk_lines(block, start, line, current, limit)
            offset += len(block)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise FileRejected(
            f"not UTF-8 text: the file ends inside a multi-byte character (byte offset "
            f"{offset}); was it truncated?"
        ) from None


@dataclass(frozen=True)
class _Limit:
    bytes: int
    source: str  # where it was set, named in the message
    cr_breaks_lines: bool


_CSV_BREAKS, _JSON_BREAKS = re.compile(rb"\r\n|\r|\n"), re.compile(rb"\n")


def _last_break(block: bytes, start: int, end: int, cr_breaks_lines: bool) -> int:
    last = block.rfind(NL, start, end)
    return max(last, block.rfind(CR, start, end)) if cr_breaks_lines else last


def _lines_fit(block: bytes, start: int, current: int, limit: _Limit) -> bool:
    """Whether no line in ``block[start:]`` (the first continuing one of ``current``
    bytes) is longer than the limit, looking at about one break per ``limit`` bytes.

    A window one byte longer than the limit, from a line's start, must hold a break; the
    last one in it starts the next window, as every line before it is short enough too.
    Counting the CR and the LF of a CRLF as two breaks only adds an empty line.
    """
    budget = limit.bytes - current  # bytes the open line may still take
    while len(block) - start > budget:
        last = _last_break(block, start, start + budget + 1, limit.cr_breaks_lines)
        if last < 0:
            return False
        start, budget = last + 1, limit.bytes
    return True


def _count_lines(
    block: bytes, start: int, line: int, current: int, cr_breaks_lines: bool
) -> tuple[int, int]:
    """The line number and open line's length after ``block[start:]``, counted in C."""
    breaks = block.count(NL, start)
    if cr_breaks_lines and block.find(CR, start) >= 0:  # find is memchr: most have none
        breaks += block.count(CR, start) - block.count(b"\r\n", start)
    last = _last_break(block, start, len(block), cr_breaks_lines)
    if last < 0:
        return line, current + len(block) - start
    return line + breaks, len(block) - last - 1


def _walk_lines(
    block: bytes, start: int, line: int, current: int, limit: _Limit
) -> tuple[int, int]:
    """As _count_lines, line by line, raising at the first line longer than the limit."""
    breaks = _CSV_BREAKS if limit.cr_breaks_lines else _JSON_BREAKS
    for found in breaks.finditer(block, start):
        current += found.start() - start
        if current > limit.bytes:
            _too_long(line, current, limit)
        current, start = 0, found.end()
        line += 1
    current += len(block) - start
    if current > limit.bytes:
        _too_long(line, current, limit)
    return line, current


def _too_long(line: int, length: int, limit: _Limit) -> None:
    raise FileRejected(
        f"line {line} is longer than {limit.bytes} bytes (at least {length}), the longest "
        f"line accepted ({limit.source})"
    )
