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
from pathlib import Path

from training_pipeline.environment import MAX_LINE_BYTES_ENV
from training_pipeline.ingestion.errors import FileRejected

BLOCK_BYTES = 1 << 20
NL = b"\n"

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
) -> None:
    """Raise FileRejected naming the line and byte offset of the first problem.

    ``cr_breaks_lines``: CSV readers also end a line at a lone carriage return, so the
    length limit must too; JSON text never holds a raw one inside a record.
    ``limit_from``: where the line limit was set (a variable or a declaration's field).
    """
    breaks = re.compile(rb"\r\n|\r|\n" if cr_breaks_lines else rb"\n")
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0  # bytes before the current block
    line = 1  # line number at the start of the current block
    current = 0  # length of the line still open at the end of the previous block
    pending_cr = False
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
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
            pending_cr = cr_breaks_lines and block.endswith(b"\r")
            for found in breaks.finditer(block, start):
                current += found.start() - start
                if current > max_line_bytes:
                    _too_long(line, current, max_line_bytes, limit_from)
                current, start = 0, found.end()
                line += 1
            current += len(block) - start
            if current > max_line_bytes:
                _too_long(line, current, max_line_bytes, limit_from)
            offset += len(block)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise FileRejected(
            f"not UTF-8 text: the file ends inside a multi-byte character (byte offset "
            f"{offset}); was it truncated?"
        ) from None


def _too_long(line: int, length: int, limit: int, limit_from: str) -> None:
    raise FileRejected(
        f"line {line} is longer than {limit} bytes (at least {length}), the longest line "
        f"accepted ({limit_from})"
    )
