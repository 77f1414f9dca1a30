"""A drifted day: a bad release that shifts most of the current snapshot's features.

``churn-demo world --days 1 --drift`` (``generate(settings, days=1, drift=True)``)
simulates the day as usual and then lets one incident hit it, a release of the shop's
systems gone wrong:

* **Amounts in cents.** The new checkout reports every order of the day in cents while
  the files still say USD, so each amount is ``PRICE_FACTOR`` (100) times too large.
  Only the ~12% of active customers who order on a given day are hit, but that is
  enough to move ``spend_30d``, ``spend_90d`` and ``avg_order_value`` far beyond their
  usual week-to-week wobble (at ×10 only ``spend_30d`` moved).
* **A wave of complaints.** ``WAVE_REACH`` of the customers who have not churned open a
  ticket that day (on top of the usual ones), rated 1–2 far more often than usual
  (``WAVE_LOW_SATISFACTION_BIAS`` on the log-odds). At the next snapshot most of them are
  still open (``tickets_90d``, ``open_tickets``); those already resolved carry their bad
  score (``low_satisfaction_tickets_90d``, ``mean_satisfaction_90d``). The bad scores
  also raise those customers' churn hazard, as any bad experience does (population.py).
* **A CRM sync that rewrites profiles.** ``SYNC_REACH`` of the customers who have not
  churned get a new CRM record that day with the segment ``smb`` and the country ``US``
  (the new system's defaults), so ``segment`` and ``country_code`` move too. It is a
  change of the record, so it persists, and the smb hazard applies to those customers
  from then on.

On the default world (1500 customers, 270 days) that is nine of the thirteen monitored
features (``training_pipeline/ml/drift.py``) against none on a normal day. Seven of the
nine (the three spend features, ``tickets_90d``, ``open_tickets``, segment and country)
move by at least 2.5 times the threshold, which alone is past the error level of half
of them; the two satisfaction features depend on how many complaints are rated before
midnight and were just under the threshold in one small test world (400 customers).

Determinism: every draw of the incident comes from its own stream
``default_rng([seed, DRIFT, day])``, so the simulation's own stream draws exactly the
numbers it draws on a normal day, and a drifted day depends only on the seed, the days
before it and the fact that it was drifted (which ``demo/state.json`` records).
"""

from __future__ import annotations

import numpy as np

from churn_demo.population import CHURNED, COUNTRIES, SEGMENTS, Population
from churn_demo.support import DAY_S

DRIFT = 3  # random stream, beside world.py's BOOTSTRAP, SIM and RENDER
PRICE_FACTOR = 100.0
WAVE_REACH = 0.8
WAVE_LOW_SATISFACTION_BIAS = 4.0
SYNC_REACH = 0.7
SYNC_SEGMENT = SEGMENTS.index("smb")
SYNC_COUNTRY = COUNTRIES.index("US")


def _reached(rng: np.random.Generator, population: Population, reach: float) -> np.ndarray:
    """Customers who have not churned, each with probability ``reach``."""
    candidates = np.flatnonzero(population.stage != CHURNED)
    return candidates[rng.random(len(candidates)) < reach]


def crm_sync(
    rng: np.random.Generator, population: Population, day_start: int
) -> list[tuple[int, int]]:
    """Rewrite segment and country of the customers reached; their (time, customer) updates."""
    synced = _reached(rng, population, SYNC_REACH)
    population.segment[synced] = SYNC_SEGMENT
    population.country[synced] = SYNC_COUNTRY
    times = day_start + rng.integers(0, DAY_S - 3600, len(synced))
    return list(zip(times.tolist(), synced.tolist(), strict=True))


def complaint_wave(rng: np.random.Generator, population: Population) -> np.ndarray:
    """The customers who open a complaint ticket because of the incident."""
    return _reached(rng, population, WAVE_REACH)
