"""Property: whatever mixture of good files, bad files and poison rows lands over several
batches, with a crash at any point in between, every landed row ends up exactly once in
raw.orders, in raw.rejected_rows or in quarantine, and every good file gets loaded."""

from __future__ import annotations

import random
import tempfile
from contextlib import ExitStack, suppress
from datetime import datetime
from pathlib import Path
from unittest import mock

from churn_demo.reliability.accounting import account_order_files
from churn_demo.reliability.bad_files import (
    BAD_KINDS,
    LandedFile,
    good_orders_file,
    land,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples
from order_file_helpers import ORDERS, reconcile_orders

from training_pipeline.ingestion import landing_ingest, manifest, pending_files, quarantine
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.landing_ingest import ingest_landing_folder
from training_pipeline.settings import DuckDBLimits

AT = datetime(2026, 3, 1, 12, 0, 0)
# Files with some valid rows: they must load, whatever else arrives beside them.
LOADABLE = {"good", "bom", "blank_keys", "far_future"}
KINDS = ["good", *sorted(BAD_KINDS)]
# Where a process can die while ingesting: while a file's rows are judged and held,
# inside the commit of the held files, between the reason file and the move, between
# the move and the manifest row.
CRASH_POINTS = [
    (pending_files, "judge_rows"),
    (pending_files, "write_manifest"),
    (landing_ingest, "move_to_quarantine"),
    (manifest, "write_manifest"),
    (quarantine.os, "replace"),
]


class SimulatedCrash(BaseException):
    """Like a kill: not an error any handler in ingestion may catch."""


def crash_on_call(target: object, name: str, call: int) -> mock._patch:
    real = getattr(target, name)
    calls = 0

    def maybe_crash(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == call:
            raise SimulatedCrash(f"{name} call {call}")
        return real(*args, **kwargs)

    return mock.patch.object(target, name, maybe_crash)


batches = st.lists(
    st.tuples(
        st.lists(st.sampled_from(KINDS), min_size=1, max_size=4),
        st.none() | st.tuples(st.integers(0, len(CRASH_POINTS) - 1), st.integers(1, 3)),
    ),
    min_size=1,
    max_size=3,
)


@given(batches=batches, seed=st.integers(0, 2**16))
@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_landed_row_is_loaded_rejected_or_quarantined_exactly_once(batches, seed):
    rng = random.Random(seed)
    with (
        tempfile.TemporaryDirectory() as tmp,
        wh.connect(Path(tmp) / "wh.duckdb", limits=DuckDBLimits()) as con,
    ):
        wh.ensure_raw_layer(con)
        landing, quarantine_dir = Path(tmp) / "landing", Path(tmp) / "quarantine"
        landed: list[LandedFile] = []
        for number, (kinds, crash) in enumerate(batches, 1):
            arrived = []
            for position, kind in enumerate(kinds):
                stem = f"orders_b{number}_{position}_{kind}"
                generate = good_orders_file if kind == "good" else BAD_KINDS[kind]
                name, payload, rows = generate(rng, stem)
                arrived.append(LandedFile(name, kind, land(landing, name, payload), rows))
            landed += arrived
            if crash is not None:
                target, attribute = CRASH_POINTS[crash[0]]
                with ExitStack() as stack:
                    stack.enter_context(crash_on_call(target, attribute, crash[1]))
                    with suppress(SimulatedCrash):
                        ingest_landing_folder(
                            con, ORDERS, landing, quarantine_dir, f"c{number}", AT
                        )
            # The next run after a crash (or the only one): it must not be wedged.
            ingest_landing_folder(con, ORDERS, landing, quarantine_dir, f"b{number}", AT)
            statuses = dict(con.execute("select path, status from raw.file_manifest").fetchall())
            for f in arrived:
                if f.kind in LOADABLE:
                    assert statuses.get(f.name) == "loaded", (f, statuses)
                else:
                    assert statuses.get(f.name) == "quarantined", (f, statuses)
        line = account_order_files(con, landed)
        assert (line.lost, line.duplicates) == (0, 0), line
        assert line.rows_landed == line.rows_loaded + line.rows_rejected + line.rows_quarantined
        assert reconcile_orders(con).holds
        # Loaded files stay where they landed; quarantined ones are moved out.
        remaining = {p.name for p in landing.iterdir()}
        assert remaining == {f.name for f in landed if f.kind in LOADABLE}
        # Only folders holding files remain in quarantine.
        for folder in (p for p in quarantine_dir.rglob("*") if p.is_dir()):
            assert any(folder.iterdir()), folder
