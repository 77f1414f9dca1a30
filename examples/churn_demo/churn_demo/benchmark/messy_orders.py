"""N messy order rows as the demo delivers them: one file per day, formats rotating.

The rows are rendered by the demo's own functions (``demo/messy.py``: timestamps in five
spellings, amounts with currency signs, status synonyms) and written by its own writer
(``demo/writers.py``), so the benchmark reads exactly what the pipeline reads in
production.  A share of each day's rows re-delivers orders of the previous day with a
new amount, so de-duplication has work to do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from churn_demo import messy
from churn_demo.rows import OrderRow
from churn_demo.writers import order_file_format, write_order_file

START = date(2026, 1, 1)
DAY_S = 86_400
STATUSES = tuple(messy.ORDER_STATUS_VARIANTS)
REDELIVERED_SHARE = 0.03
ROWS_PER_CUSTOMER = 40  # a customer orders about 40 times over the benchmark's history


@dataclass(frozen=True)
class OrderWorld:
    """How many rows, over how many days, by how many customers; seeded."""

    rows: int
    days: int
    seed: int = 0

    @property
    def customers(self) -> int:
        return max(10, self.rows // ROWS_PER_CUSTOMER)

    def rows_on(self, day: int) -> int:
        """Rows of day ``day`` (0-based): the total spread evenly, the rest on the last days."""
        base, extra = divmod(self.rows, self.days)
        return base + (1 if day >= self.days - extra else 0)


def _day_rows(world: OrderWorld, day: int, first_number: int) -> list[OrderRow]:
    rnd = random.Random(f"{world.seed}:{day}")
    day_start = int((START - date(1970, 1, 1)).total_seconds()) + day * DAY_S
    count = world.rows_on(day)
    redelivered = int(count * REDELIVERED_SHARE) if day > 0 else 0
    rows = []
    for i in range(count):
        # Re-deliveries name orders of the previous day (numbered just before this one's).
        number = first_number - 1 - i if i < redelivered else first_number + i - redelivered
        amount = round(rnd.lognormvariate(3.5, 0.6), 2)
        rows.append(
            OrderRow(
                order_id=f"O{number:09d}",
                customer_id=f"C{rnd.randrange(world.customers):07d}",
                ordered_at=messy.render_ordered_at(rnd, day_start + rnd.randrange(DAY_S)),
                amount_text=messy.render_amount(rnd, amount),
                amount=amount,
                status=messy.render_order_status(rnd, rnd.choice(STATUSES)),
            )
        )
    return rows


def first_order_number(world: OrderWorld, day: int) -> int:
    """Orders are numbered across days; re-deliveries take no new number."""
    return sum(
        world.rows_on(d) - (int(world.rows_on(d) * REDELIVERED_SHARE) if d > 0 else 0)
        for d in range(day)
    )


def write_day(world: OrderWorld, day: int, landing_dir: Path) -> Path:
    """Write day ``day``'s file (CSV, JSON Lines or Parquet by day) into ``landing_dir``."""
    rows = _day_rows(world, day, first_order_number(world, day))
    return write_order_file(landing_dir, START + timedelta(days=day), order_file_format(day), rows)


def write_days(world: OrderWorld, days: range, landing_dir: Path) -> list[Path]:
    return [write_day(world, day, landing_dir) for day in days]
