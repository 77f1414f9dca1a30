"""Order files as a careless upstream delivers them, and a ledger of everything landed.

Each writer lands its file the way a correct producer would (a hidden temporary name,
then a rename), so the fault is in the content, never in a half-written file.  The
ledger records, per file, the data records the writer put in it: the figure the
reconciliation holds the pipeline to (rows landed = rows loaded + rows rejected + rows
quarantined).  Besides bad files, some kinds hold poison rows in an otherwise good file
(a blank key, a far-future date): those rows are rejected, the rest load.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HEADER = ("order_id", "customer_id", "ordered_at", "amount", "status")


@dataclass(frozen=True)
class LandedFile:
    name: str  # the file's name in the landing folder
    kind: str  # "good" or one of BAD_KINDS
    sha256: str
    rows: int  # data records written (a row cut short or broken still counts as one)


def land(landing_dir: Path, name: str, payload: bytes) -> str:
    """Write ``payload`` under a dot-name, fsync, rename into place; return its sha256."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    # A bounded temporary name: the final one may already be near the 255-byte limit.
    temporary = landing_dir / f".{hashlib.sha256(name.encode()).hexdigest()[:16]}.landing"
    with open(temporary, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, landing_dir / name)
    return hashlib.sha256(payload).hexdigest()


def _orders(rng: random.Random, n: int, prefix: str) -> list[tuple[str, ...]]:
    return [
        (
            f"{prefix}-{i}",
            f"C{rng.randrange(1, 50):05d}",
            f"2026-01-{rng.randrange(1, 28):02d} 10:00:00",
            f"{rng.uniform(5, 200):.2f}",
            "completed",
        )
        for i in range(n)
    ]


def _csv(rows: Iterable[tuple[str, ...]], header: tuple[str, ...] = HEADER) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _empty(rng: random.Random, stem: str) -> tuple[str, bytes, int]:
    return f"{stem}.csv", b"", 0


def _header_only(rng: random.Random, stem: str) -> tuple[str, bytes, int]:
    return f"{stem}.csv", _csv([]), 0


def _truncated(rng: random.Random, stem: str) -> tuple[str, bytes, int]:
    rows = _orders(rng, rng.randrange(5, 20), stem)
    payload = _csv(rows)
    last_row = payload.rstrip(b"\n").rfind(b"\n") + 1
    cut = last_row + (len(payload) - last_row) // 3  # the last row stops after a field or two
    return f"{stem}.csv", payload[:cut], len(rows)


def _garbage(rng: random.Random, stem: str) -> tuple[str, bytes, int]:
    return f"{stem}.csv", bytes(rng.randrange(256) for _ in range(2048)), 0


def _wrong_schema(rng: random.Random, stem: str) -> tuple[str, bytes, int]:
    rows = _orders(rng, rng.randrange(5, 20), stem)
    return f"{stem}.csv", _csv(rows, ("id", "client", "when", "total", "state")), len(rows)


def _bom(rng: random.Random, stem: str) -> tuple[str, bytes, int]:
    rows = _orders(rng, rng.randrange(5, 20), stem)
    return f"{stem}.csv", b"\xef\xbb\xbf" + _csv(rows), len(rows)


def _broken_jsonl(rng: random.Random, stem: str) -> tuple[str, bytes, int]:
    rows = _orders(rng, rng.randrange(5, 20), stem)
    lines = [json.dumps(dict(zip(HEADER, row, strict=True))) for row in rows]
    lines.insert(len(lines) // 2, '{"order_id": "' + stem + '-broken", "customer_id": ')
    return f"{stem}.jsonl", ("\n".join(lines) + "\n").encode(), len(lines)


def _blank_keys(rng: random.Random, stem: str) -> tuple[str, bytes, int]:
    rows = _orders(rng, rng.randrange(5, 20), stem)
    at = rng.randrange(len(rows))
    rows[at] = ("", *rows[at][1:])
    return f"{stem}.csv", _csv(rows), len(rows)


def _far_future(rng: random.Random, stem: str) -> tuple[str, bytes, int]:
    rows = _orders(rng, rng.randrange(5, 20), stem)
    at = rng.randrange(len(rows))
    rows[at] = (*rows[at][:2], "2099-12-31T10:00:00Z", *rows[at][3:])
    lines = [json.dumps(dict(zip(HEADER, row, strict=True))) for row in rows]
    return f"{stem}.jsonl", ("\n".join(lines) + "\n").encode(), len(rows)


def _case_clash(rng: random.Random, stem: str) -> tuple[str, bytes, int]:
    rows = _orders(rng, rng.randrange(5, 20), stem)
    columns = {"ORDER_ID": [f"WRONG-{r[0]}" for r in rows]}
    columns |= {name: [r[i] for r in rows] for i, name in enumerate(HEADER)}
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return f"{stem}.parquet", buffer.getvalue(), len(rows)


def _long_name(rng: random.Random, stem: str) -> tuple[str, bytes, int]:
    # 250 bytes: fits a file system's 255, not with a ".tmp" and ".reason.json" around it.
    name = f"{stem}_".ljust(246, "L") + ".csv"
    return name, _csv(_orders(rng, 3, stem)).replace(b"completed", b"comp\x00leted", 1), 3


def _semicolon_commas(rng: random.Random, stem: str) -> tuple[str, bytes, int]:
    rows = _orders(rng, rng.randrange(5, 20), stem)
    lines = [";".join(HEADER)] + [
        ";".join((*r[:3], f"${1 + i},586.31", r[4])) for i, r in enumerate(rows)
    ]
    return f"{stem}.csv", ("\n".join(lines) + "\n").encode(), len(rows)


BAD_KINDS: dict[str, Callable[[random.Random, str], tuple[str, bytes, int]]] = {
    "empty": _empty,
    "header_only": _header_only,
    "truncated": _truncated,
    "garbage": _garbage,
    "wrong_schema": _wrong_schema,
    "bom": _bom,
    "broken_jsonl": _broken_jsonl,
    "blank_keys": _blank_keys,
    "far_future": _far_future,
    "case_clash": _case_clash,
    "long_name": _long_name,
    "semicolon_commas": _semicolon_commas,
}


def good_orders_file(rng: random.Random, stem: str) -> tuple[str, bytes, int]:
    """A well-formed order file in a random format, as a careful upstream delivers it."""
    rows = _orders(rng, rng.randrange(1, 20), stem)
    fmt = rng.choice(("csv", "jsonl", "parquet"))
    if fmt == "csv":
        return f"{stem}.csv", _csv(rows), len(rows)
    if fmt == "jsonl":
        lines = [json.dumps(dict(zip(HEADER, row, strict=True))) for row in rows]
        return f"{stem}.jsonl", ("\n".join(lines) + "\n").encode(), len(rows)
    buffer = io.BytesIO()
    pq.write_table(pa.table({name: [r[i] for r in rows] for i, name in enumerate(HEADER)}), buffer)
    return f"{stem}.parquet", buffer.getvalue(), len(rows)


def land_bad_file(landing_dir: Path, kind: str, stem: str, rng: random.Random) -> LandedFile:
    name, payload, rows = BAD_KINDS[kind](rng, stem)
    return LandedFile(name, kind, land(landing_dir, name, payload), rows)


def count_rows(path: Path) -> int:
    """Data records of a well-formed order file, counted without the pipeline's readers."""
    if path.suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return max(sum(1 for row in csv.reader(handle) if row) - 1, 0)
    return sum(1 for line in path.read_bytes().splitlines() if line.strip())


def good_file(path: Path) -> LandedFile:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return LandedFile(path.name, "good", digest, count_rows(path))


class Ledger:
    """Every order file landed, kept as JSON lines so a later invocation can add to it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[LandedFile]:
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [LandedFile(**json.loads(line)) for line in lines if line.strip()]

    def add(self, files: Iterable[LandedFile]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            for landed in files:
                handle.write(json.dumps(asdict(landed), sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
