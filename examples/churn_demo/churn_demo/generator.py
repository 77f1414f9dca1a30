"""Generate the demo's three source systems, or extend them by more days.

``generate(settings, days=N)`` on a data directory without ``demo/state.json`` creates a
new world: the CRM's ``customers`` table (dropped and recreated at the declared CRM URL),
the ticket store (``demo/tickets.sqlite``) and one order file per day in the landing
folder. Called again, it appends ``N`` further days to the same world. The state file
records only the seed, the start date, the initial number of customers, the days
generated and which of them were drifted: the world itself is rebuilt by re-simulating
the earlier days without writing them (well under a second for the default size). That is
what makes the output byte-identical for the same seed and the same sequence of normal
and drifted days, however the days were batched: 180 days in one call equal 90 + 90.

``generate(settings, days=1, drift=True)`` (CLI ``--drift``) makes every day of the call
a drifted day: the normal day plus the incident described in drift_day.py (amounts in
cents, a wave of badly rated complaints, a CRM sync rewriting segment and country of
most customers), enough to move most features of the next snapshot. The day
is recorded in ``drift_days`` before any source sees it, so an interrupted drifted day is
finished as a drifted day by the next call, with or without ``drift``. A world that never
drifted writes no ``drift_days`` at all, so its state file is what it always was.

``generate_if_missing(settings)`` (CLI ``churn-demo world --if-missing``) does
nothing when the state file exists; ``make run`` uses it to create data only once.

Each day is written source by source and then recorded in the state file, and every
writer is safe to repeat (CRM records beyond the state are discarded, the ticket store
remembers the days it applied, order files are replaced atomically), so an interrupted
run can simply be run again.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from churn_demo import declared, ticket_store, writers
from churn_demo.world import START_DATE, DayParams, World, WorldConfig
from training_pipeline.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_SEED = 42
DEFAULT_CUSTOMERS = 1500
DEFAULT_INITIAL_DAYS = 270
DEFAULT_APPEND_DAYS = 1
STATE_VERSION = 1


@dataclass(frozen=True)
class DemoState:
    """What ``demo/state.json`` records: enough to rebuild the world exactly."""

    seed: int
    customers: int
    start_date: date
    days_generated: int
    drift_days: tuple[int, ...] = ()  # drifted days, as day numbers from the start date

    @property
    def last_date(self) -> date | None:
        if self.days_generated == 0:
            return None
        return self.start_date + timedelta(days=self.days_generated - 1)

    def to_json(self) -> str:
        payload = asdict(self) | {
            "version": STATE_VERSION,
            "start_date": self.start_date.isoformat(),
            "last_date": self.last_date.isoformat() if self.last_date else None,
            "drift_days": list(self.drift_days),
        }
        if not self.drift_days:
            del payload["drift_days"]  # a world that never drifted keeps its old state file
        return json.dumps(payload, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DemoState:
        payload = json.loads(text)
        if payload.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported demo state version {payload.get('version')!r}")
        return cls(
            seed=int(payload["seed"]),
            customers=int(payload["customers"]),
            start_date=date.fromisoformat(payload["start_date"]),
            days_generated=int(payload["days_generated"]),
            drift_days=tuple(sorted(int(day) for day in payload.get("drift_days", ()))),
        )


@dataclass(frozen=True)
class GenerationSummary:
    """What one call added to the sources."""

    created: bool  # a new world was started
    state: DemoState
    days: int
    crm_records: int
    orders: int  # rows in the new order files, re-delivered duplicates included
    redelivered: int
    ticket_changes: int
    order_files: tuple[Path, ...]
    drifted: int = 0  # days of this call that were drifted


def state_path(settings: Settings) -> Path:
    return settings.demo_dir / "state.json"


def load_state(settings: Settings) -> DemoState | None:
    path = state_path(settings)
    return DemoState.from_json(path.read_text(encoding="utf-8")) if path.exists() else None


def _save_state(settings: Settings, state: DemoState) -> None:
    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(state.to_json(), encoding="utf-8")
    os.replace(temporary, path)


def day_params(state: DemoState, day: int) -> DayParams:
    """The knobs of one day: the defaults, with the incident on the days recorded as
    drifted, so re-simulating earlier days reproduces them exactly."""
    return DayParams(drift=day in state.drift_days)


def _resolve_state(
    existing: DemoState | None, customers: int | None, seed: int | None
) -> DemoState:
    if existing is None:
        state = DemoState(
            seed=DEFAULT_SEED if seed is None else seed,
            customers=DEFAULT_CUSTOMERS if customers is None else customers,
            start_date=START_DATE,
            days_generated=0,
        )
        if state.customers < 1 or state.seed < 0:
            raise ValueError("customers must be at least 1 and seed non-negative")
        return state
    for name, asked in (("customers", customers), ("seed", seed)):
        if asked is not None and asked != getattr(existing, name):
            raise ValueError(
                f"the existing demo world has {name}={getattr(existing, name)}, not {asked}; "
                "delete the data directory to start a new world"
            )
    return existing


def generate(
    settings: Settings,
    days: int | None = None,
    *,
    customers: int | None = None,
    seed: int | None = None,
    drift: bool = False,
) -> GenerationSummary:
    """Create the demo world (``days`` defaults to 270) or append ``days`` (default 1).

    ``customers`` and ``seed`` apply to a new world; for an existing one they may only
    repeat what the state file says. ``drift`` makes each of the ``days`` a drifted day.
    """
    existing = load_state(settings)
    state = _resolve_state(existing, customers, seed)
    if days is None:
        days = DEFAULT_INITIAL_DAYS if existing is None else DEFAULT_APPEND_DAYS
    if days < 0:
        raise ValueError(f"days must not be negative, got {days}")
    world, bootstrap_records = World.bootstrap(
        WorldConfig(seed=state.seed, customers=state.customers, start_date=state.start_date)
    )
    store = ticket_store.ticket_store_path(settings)
    orders_landing = declared.orders_landing(settings)
    engine = writers.crm_engine(declared.crm_url(settings))
    try:
        if existing is None:
            writers.reset_crm(engine)
            writers.insert_crm_records(engine, bootstrap_records)
            ticket_store.create_store(store)
            _save_state(settings, state)
            crm_records = len(bootstrap_records)
        else:
            if not store.is_file():
                raise FileNotFoundError(f"{store} is missing; delete {state_path(settings)}")
            for day in range(state.days_generated):
                world.step(day_params(state, day))
            writers.discard_crm_records_from(engine, world.next_record_id)
            crm_records = 0
        orders = redelivered = ticket_changes = drifted = 0
        files = []
        for _ in range(days):
            day = state.days_generated
            if drift and day not in state.drift_days:
                state = replace(state, drift_days=(*state.drift_days, day))
                _save_state(settings, state)
            params = day_params(state, day)
            events = world.step(params)
            writers.insert_crm_records(engine, events.crm_records)
            ticket_store.apply_day(store, events.day, events.tickets)
            fmt = writers.order_file_format(events.day)
            files.append(writers.write_order_file(orders_landing, events.date, fmt, events.orders))
            state = replace(state, days_generated=state.days_generated + 1)
            _save_state(settings, state)
            crm_records += len(events.crm_records)
            orders += len(events.orders)
            redelivered += events.redelivered
            ticket_changes += len(events.tickets)
            drifted += params.drift
    finally:
        engine.dispose()
    summary = GenerationSummary(
        created=existing is None,
        state=state,
        days=days,
        crm_records=crm_records,
        orders=orders,
        redelivered=redelivered,
        ticket_changes=ticket_changes,
        order_files=tuple(files),
        drifted=drifted,
    )
    log.info("demo sources: %s", describe(summary))
    return summary


def generate_if_missing(
    settings: Settings,
    days: int | None = None,
    *,
    customers: int | None = None,
    seed: int | None = None,
    drift: bool = False,
) -> GenerationSummary | None:
    """Create the demo world unless ``demo/state.json`` exists; None when it did."""
    if state_path(settings).exists():
        return None
    return generate(settings, days, customers=customers, seed=seed, drift=drift)


def describe(summary: GenerationSummary) -> str:
    state = summary.state
    span = (
        f"{state.start_date + timedelta(days=state.days_generated - summary.days)}"
        f"..{state.last_date}"
        if summary.days
        else "no new days"
    )
    return (
        f"{'created' if summary.created else 'extended'} world (seed {state.seed}, "
        f"{state.customers} initial customers): {summary.days} day(s) {span}"
        f"{f' ({summary.drifted} drifted)' if summary.drifted else ''}, "
        f"{state.days_generated} in total; {summary.crm_records} CRM records, "
        f"{summary.orders} order rows ({summary.redelivered} re-delivered) in "
        f"{len(summary.order_files)} files, {summary.ticket_changes} ticket changes"
    )
