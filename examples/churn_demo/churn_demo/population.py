"""The simulated customers: hidden traits, lifecycle stage, and the churn hazard.

Traits are numpy arrays indexed by customer number (``C000001`` is index 0) so that a day
of ordering and churning for thousands of customers is a few vectorized draws. The
constants below *are* the planted churn signal; world.py's docstring explains it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from churn_demo.messy import EMAIL_DOMAINS, FIRST_NAMES, LAST_NAMES

SEGMENTS = ("consumer", "smb", "enterprise")
SEGMENT_SHARE = (0.62, 0.28, 0.10)
SEGMENT_HAZARD = np.array([1.25, 0.8, 0.45])
SEGMENT_DAYS_BETWEEN_ORDERS = np.array([12.0, 6.0, 3.5])
SEGMENT_MEAN_AMOUNT = np.array([45.0, 320.0, 1400.0])
SEGMENT_TICKETS_PER_DAY = np.array([1 / 110, 1 / 80, 1 / 50])

AGE_BAND_EDGES = np.array([25, 35, 50, 65])  # bands: <25, 25-34, 35-49, 50-64, 65+
AGE_BAND_HAZARD = np.array([1.5, 1.15, 0.9, 0.75, 0.95])

COUNTRIES = ("US", "DE", "GB", "FR", "ES", "NL")
COUNTRY_SHARE = (0.40, 0.15, 0.15, 0.10, 0.10, 0.10)

BASE_DAILY_HAZARD = 0.0011
NEW_CUSTOMER_DAYS = 60
NEW_CUSTOMER_HAZARD = 1.8
LOW_SATISFACTION_WEIGHT = 1.8  # per unit of low-satisfaction memory, on the log hazard
STALE_TICKET_WEIGHT = 0.9  # per ticket open longer than STALE_AFTER_DAYS
LOW_SATISFACTION_MEMORY_DECAY = 0.99  # per day: a bad experience fades by half in ~69 days
MAX_DAILY_HAZARD = 0.5

ACTIVE, DISENGAGING, CHURNED = 0, 1, 2


@dataclass
class Population:
    """One entry per customer ever signed up; grows as customers sign up."""

    segment: np.ndarray  # index into SEGMENTS
    age: np.ndarray
    country: np.ndarray  # index into COUNTRIES
    signup_day: np.ndarray  # days since the start date; negative before it
    order_rate: np.ndarray  # expected orders per day while active
    amount_log_mean: np.ndarray
    ticket_rate: np.ndarray  # expected tickets per day while not churned
    friction: np.ndarray  # hidden: drives ticket volume and bad support experiences
    frailty: np.ndarray  # hidden: churn noise no feature can explain
    first_name: np.ndarray
    last_name: np.ndarray
    email_domain: np.ndarray
    email_number: np.ndarray
    stage: np.ndarray  # ACTIVE, DISENGAGING or CHURNED
    stage_until: np.ndarray  # last day of disengagement
    churn_day: np.ndarray  # ground truth: first day without orders for good, -1 if never
    low_sat_memory: np.ndarray

    def __len__(self) -> int:
        return len(self.segment)

    def extend(self, other: Population) -> None:
        for field in fields(self):
            name = field.name
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))

    def customer_id(self, index: int) -> str:
        return f"C{index + 1:06d}"

    def full_name(self, index: int) -> str:
        return f"{FIRST_NAMES[self.first_name[index]]} {LAST_NAMES[self.last_name[index]]}"


def _mean_one_lognormal(rng: np.random.Generator, sigma: float, n: int) -> np.ndarray:
    return rng.lognormal(-(sigma**2) / 2, sigma, n)


def draw_customers(rng: np.random.Generator, signup_days: np.ndarray) -> Population:
    """New customers with hidden traits drawn from the segment they belong to."""
    n = len(signup_days)
    segment = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARE)
    friction = _mean_one_lognormal(rng, 0.8, n)
    return Population(
        segment=segment,
        age=np.clip(np.round(rng.normal(41, 14, n)), 18, 88).astype(np.int64),
        country=rng.choice(len(COUNTRIES), size=n, p=COUNTRY_SHARE),
        signup_day=np.asarray(signup_days, dtype=np.int64),
        order_rate=_mean_one_lognormal(rng, 0.6, n) / SEGMENT_DAYS_BETWEEN_ORDERS[segment],
        amount_log_mean=np.log(SEGMENT_MEAN_AMOUNT[segment]) + rng.normal(0, 0.4, n),
        ticket_rate=SEGMENT_TICKETS_PER_DAY[segment] * friction,
        friction=friction,
        frailty=_mean_one_lognormal(rng, 0.5, n),
        first_name=rng.integers(0, len(FIRST_NAMES), n),
        last_name=rng.integers(0, len(LAST_NAMES), n),
        email_domain=rng.integers(0, len(EMAIL_DOMAINS), n),
        email_number=rng.integers(1, 1000, n),
        stage=np.full(n, ACTIVE, dtype=np.int64),
        stage_until=np.full(n, -1, dtype=np.int64),
        churn_day=np.full(n, -1, dtype=np.int64),
        low_sat_memory=np.zeros(n),
    )


def daily_hazard(
    population: Population, day: int, stale_tickets: np.ndarray, multiplier: float = 1.0
) -> np.ndarray:
    """Each customer's probability of starting to churn today (meaningful while active)."""
    band = np.searchsorted(AGE_BAND_EDGES, population.age, side="right")
    tenure = np.where(day - population.signup_day < NEW_CUSTOMER_DAYS, NEW_CUSTOMER_HAZARD, 1.0)
    support = np.exp(
        LOW_SATISFACTION_WEIGHT * population.low_sat_memory + STALE_TICKET_WEIGHT * stale_tickets
    )
    hazard = (
        BASE_DAILY_HAZARD
        * SEGMENT_HAZARD[population.segment]
        * AGE_BAND_HAZARD[band]
        * tenure
        * support
        * population.frailty
        * multiplier
    )
    return np.minimum(hazard, MAX_DAILY_HAZARD)
