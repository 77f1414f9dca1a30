"""A seeded retail world whose customers churn for learnable, noisy reasons.

The planted churn signal (what the churn model downstream should be able to learn):

* Every active customer has a daily hazard of starting to churn,
  ``0.0011 × segment × age band × tenure × support × frailty``:
  segment consumer 1.25, smb 0.8, enterprise 0.45; age band <25 1.5, 25–34 1.15,
  35–49 0.9, 50–64 0.75, 65+ 0.95; tenure 1.8 during the first 60 days after signup;
  support ``exp(1.8 × low-satisfaction memory + 0.9 × stale open tickets)``, where each
  ticket rated 1–2 adds 1 to a memory that fades by half in ~69 days and each ticket open
  for more than 5 days counts while it stays open (one fresh bad ticket ≈ 6× the hazard,
  two ≈ 36×, capped at 0.5 a day);
  frailty is a hidden mean-one log-normal factor (σ 0.5) that no feature can see.
* When the hazard fires the customer disengages: for 6 days to a few weeks they order at
  a quarter of their usual rate, cancelling and returning more, then churn for good: no
  more orders, no more tickets.
* Active customers order as a Poisson process with their own rate (log-normal around a
  segment mean: consumer every ~12 days, smb ~6, enterprise ~3.5), a little more at
  weekends, so recency and frequency predict "no order in the next 30 days" while slow
  buyers sometimes go quiet without churning (the label's noise).
* Tickets arrive at a rate set by segment and a hidden friction factor; the same friction
  makes stuck tickets and low scores likelier, so ticket counts carry signal too.

Randomness: day ``d`` draws from ``default_rng([seed, SIM, d])`` for what happens and a
``random.Random`` seeded from ``[seed, RENDER, d]`` for how it is written down, so a day's
output depends only on the seed and the days before it, never on how days are batched.
A drifted day (``DayParams(drift=True)``, see drift_day.py) adds an incident drawn from a
stream of its own, ``[seed, DRIFT, d]``.
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from churn_demo import drift_day, messy
from churn_demo.population import (
    ACTIVE,
    CHURNED,
    COUNTRIES,
    DISENGAGING,
    LOW_SATISFACTION_MEMORY_DECAY,
    SEGMENTS,
    daily_hazard,
    draw_customers,
)
from churn_demo.rows import CrmRecord, DayEvents, OrderRow, TicketRow
from churn_demo.support import DAY_S, SupportDesk

START_DATE = date(2026, 1, 1)
BOOTSTRAP, SIM, RENDER = 0, 1, 2  # random streams
ORDER_STATUSES = ("completed", "shipped", "cancelled", "returned", "refunded", "pending")
ORDER_STATUS_SHARE = {
    ACTIVE: (0.78, 0.07, 0.06, 0.025, 0.015, 0.05),
    DISENGAGING: (0.58, 0.07, 0.16, 0.08, 0.05, 0.06),
}


@dataclass(frozen=True)
class WorldConfig:
    seed: int
    customers: int  # at the start date; more sign up later
    start_date: date = START_DATE


@dataclass(frozen=True)
class DayParams:
    """Knobs of one simulated day; ``drift`` adds the incident of drift_day.py."""

    order_rate: float = 1.0
    ticket_rate: float = 1.0
    churn_hazard: float = 1.0
    low_satisfaction_bias: float = 0.0  # added to the log-odds of a 1-2 score
    signups_per_1000: float = 1.5  # per day, per 1000 customers at the start date
    profile_update_rate: float = 0.003  # per customer and day
    duplicate_record_rate: float = 0.06  # CRM records entered twice
    redelivery_rate: float = 0.3  # chance that a file repeats part of the previous one
    drift: bool = False


def streams(seed: int, stream: int, day: int) -> tuple[np.random.Generator, random.Random]:
    """Independent generators for one (seed, stream, day): numpy for vectorized draws, a
    stdlib Random for the many small per-row choices where numpy's scalar calls are slow."""
    sequence = np.random.SeedSequence([seed, stream, day])
    rng = np.random.default_rng(sequence)
    rnd = random.Random(int(sequence.generate_state(2, np.uint64)[1]))
    return rng, rnd


class World:
    """The world's state between days; ``step`` advances it by one day."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self.start_epoch = calendar.timegm(config.start_date.timetuple())
        self.population = draw_customers(np.random.default_rng(0), np.zeros(0))
        self.desk = SupportDesk(self.start_epoch)
        self.next_record_id = 1
        self.next_order_number = 1
        self.days_simulated = 0
        self._previous_orders: tuple[OrderRow, ...] = ()

    @classmethod
    def bootstrap(cls, config: WorldConfig) -> tuple[World, list[CrmRecord]]:
        """The customers who exist at the start date, and the CRM records they left."""
        world = cls(config)
        rng, rnd = streams(config.seed, BOOTSTRAP, 0)
        n = config.customers
        world.population = draw_customers(rng, np.sort(rng.integers(-730, 0, n)))
        signed_up = world.start_epoch + world.population.signup_day * DAY_S
        first = signed_up + rng.integers(0, DAY_S, n)
        times = [first]
        duplicated = rng.random(n) < DayParams().duplicate_record_rate
        times.append(first[duplicated] + rng.integers(5, 3600, duplicated.sum()))
        updated = rng.random(n) < 0.12
        span = world.start_epoch - first[updated]
        times.append(first[updated] + (rng.random(updated.sum()) * span).astype(np.int64))
        customers = [np.arange(n), np.flatnonzero(duplicated), np.flatnonzero(updated)]
        events = sorted(
            zip(np.concatenate(times).tolist(), np.concatenate(customers).tolist(), strict=True)
        )
        return world, world._crm_records(rnd, events)

    def step(self, params: DayParams | None = None) -> DayEvents:
        """Simulate the next day and return what the source systems received."""
        params = params or DayParams()
        day = self.days_simulated
        rng, _ = streams(self.config.seed, SIM, day)
        _, render = streams(self.config.seed, RENDER, day)
        incident = streams(self.config.seed, drift_day.DRIFT, day)[0] if params.drift else None
        day_start = self.start_epoch + day * DAY_S
        # The incident's CRM sync reaches only customers who existed before today.
        synced = (
            [] if incident is None else drift_day.crm_sync(incident, self.population, day_start)
        )
        crm_events = self._signups_and_updates(rng, day, day_start, params)
        if synced:
            crm_events = sorted(crm_events + synced)
        self._churn(rng, day, params)
        orders = self._orders(rng, render, day, day_start, params)
        redelivered = self._redelivery(rng, params)
        tickets = self._tickets(rng, render, day, params, incident)
        self._previous_orders = orders
        self.days_simulated += 1
        return DayEvents(
            day=day,
            date=self.config.start_date + timedelta(days=day),
            crm_records=tuple(self._crm_records(render, crm_events)),
            orders=orders + redelivered,
            redelivered=len(redelivered),
            tickets=tickets,
        )

    def _signups_and_updates(
        self, rng: np.random.Generator, day: int, day_start: int, params: DayParams
    ) -> list[tuple[int, int]]:
        pop = self.population
        existing = len(pop)
        updated = np.flatnonzero(
            (pop.stage != CHURNED) & (rng.random(existing) < params.profile_update_rate)
        )
        moved = updated[rng.random(len(updated)) < 0.4]  # a new email address
        pop.email_domain[moved] = rng.integers(0, len(messy.EMAIL_DOMAINS), len(moved))
        pop.email_number[moved] = rng.integers(1, 1000, len(moved))
        joined = rng.poisson(params.signups_per_1000 * self.config.customers / 1000)
        pop.extend(draw_customers(rng, np.full(joined, day)))
        new = np.arange(existing, existing + joined)
        twice = rng.random(joined) < params.duplicate_record_rate
        times = day_start + rng.integers(0, DAY_S - 3600, len(updated) + joined)
        again = times[len(updated) :][twice] + rng.integers(5, 3600, twice.sum())
        customers = np.concatenate([updated, new, new[twice]])
        times = np.concatenate([times, again])
        return sorted(zip(times.tolist(), customers.tolist(), strict=True))

    def _crm_records(self, rnd: random.Random, events: list[tuple[int, int]]) -> list[CrmRecord]:
        pop, records = self.population, []
        for at, i in events:
            address = messy.email_address(
                messy.FIRST_NAMES[pop.first_name[i]],
                messy.LAST_NAMES[pop.last_name[i]],
                int(pop.email_number[i]),
                messy.EMAIL_DOMAINS[pop.email_domain[i]],
            )
            signup = self.config.start_date + timedelta(days=int(pop.signup_day[i]))
            records.append(
                CrmRecord(
                    record_id=self.next_record_id,
                    customer_id=pop.customer_id(i),
                    full_name=pop.full_name(i),
                    email=messy.render_email(rnd, address),
                    age=messy.render_age(rnd, int(pop.age[i])),
                    country=messy.render_country(rnd, COUNTRIES[pop.country[i]]),
                    segment=messy.render_segment(rnd, SEGMENTS[pop.segment[i]]),
                    signup_date=messy.render_signup_date(rnd, signup),
                    updated_at=datetime.fromtimestamp(at, UTC),
                )
            )
            self.next_record_id += 1
        return records

    def _churn(self, rng: np.random.Generator, day: int, params: DayParams) -> None:
        pop = self.population
        pop.low_sat_memory *= LOW_SATISFACTION_MEMORY_DECAY
        gone = (pop.stage == DISENGAGING) & (pop.stage_until < day)
        pop.stage[gone] = CHURNED
        pop.churn_day[gone] = day
        stale = self.desk.stale_open_tickets(day, len(pop))
        hazard = daily_hazard(pop, day, stale, params.churn_hazard)
        starts = (pop.stage == ACTIVE) & (rng.random(len(pop)) < hazard)
        pop.stage[starts] = DISENGAGING
        pop.stage_until[starts] = day + 5 + rng.geometric(1 / 14, starts.sum())

    def _orders(
        self,
        rng: np.random.Generator,
        render: random.Random,
        day: int,
        day_start: int,
        params: DayParams,
    ) -> tuple[OrderRow, ...]:
        pop = self.population
        weekend = (self.config.start_date + timedelta(days=day)).weekday() >= 5
        stage_factor = np.select([pop.stage == ACTIVE, pop.stage == DISENGAGING], [1.0, 0.25])
        rate = pop.order_rate * stage_factor * (1.15 if weekend else 0.94) * params.order_rate
        buyers = np.repeat(np.arange(len(pop)), rng.poisson(rate))
        seconds = rng.integers(0, DAY_S, len(buyers))
        amounts = np.exp(pop.amount_log_mean[buyers] + rng.normal(0, 0.45, len(buyers)))
        if params.drift:
            amounts = amounts * drift_day.PRICE_FACTOR
        shares = np.array([ORDER_STATUS_SHARE[ACTIVE], ORDER_STATUS_SHARE[DISENGAGING]])
        cumulative = np.cumsum(shares, axis=1)[(pop.stage[buyers] == DISENGAGING).astype(int)]
        statuses = (rng.random(len(buyers))[:, None] > cumulative[:, :-1]).sum(axis=1)
        rows = []
        for k in np.argsort(seconds, kind="stable").tolist():
            at = day_start + int(seconds[k])
            amount = round(float(amounts[k]), 2)
            rows.append(
                OrderRow(
                    order_id=f"O{self.next_order_number:08d}",
                    customer_id=pop.customer_id(int(buyers[k])),
                    ordered_at=messy.render_ordered_at(render, at),
                    amount_text=messy.render_amount(render, amount),
                    amount=amount,
                    status=messy.render_order_status(render, ORDER_STATUSES[statuses[k]]),
                )
            )
            self.next_order_number += 1
        return tuple(rows)

    def _redelivery(self, rng: np.random.Generator, params: DayParams) -> tuple[OrderRow, ...]:
        """A slice of yesterday's file sent again, as an upstream retry would."""
        previous = self._previous_orders
        if not previous or rng.random() >= params.redelivery_rate:
            return ()
        size = max(1, round(len(previous) * rng.uniform(0.05, 0.2)))
        first = int(rng.integers(0, len(previous) - size + 1))
        return previous[first : first + size]

    def _tickets(
        self,
        rng: np.random.Generator,
        render: random.Random,
        day: int,
        params: DayParams,
        incident: np.random.Generator | None = None,
    ) -> tuple[TicketRow, ...]:
        pop = self.population
        rate = np.where(pop.stage == CHURNED, 0.0, pop.ticket_rate * params.ticket_rate)
        filers = np.flatnonzero(rng.random(len(pop)) < rate)
        opened = self.desk.open_tickets(rng, render, day, filers, pop, params.low_satisfaction_bias)
        if incident is not None:
            wave = drift_day.complaint_wave(incident, pop)
            bias = params.low_satisfaction_bias + drift_day.WAVE_LOW_SATISFACTION_BIAS
            opened += self.desk.open_tickets(incident, render, day, wave, pop, bias)
        changed, ratings = self.desk.advance(render, day)
        for rating in ratings:
            if rating.score <= 2:
                pop.low_sat_memory[rating.customer] += 1.0
        ordered = sorted(opened + changed, key=lambda item: item[0])
        return tuple(row for _, row in ordered)
