"""The simulated support desk: tickets are opened, answered, resolved, rated and closed.

A ticket's whole future is drawn when it is opened (from the simulation's random stream)
and its changes are scheduled by day, so a ticket opened on day 10 and resolved on day 40
changes the ticket store on exactly those days however the days are batched into calls.
Customers with high hidden friction get stuck tickets and low scores more often; low
scores and long-open tickets are what raise their churn hazard (see population.py).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from churn_demo import messy
from churn_demo.population import Population
from churn_demo.rows import TicketRow

DAY_S = 86_400
STALE_AFTER_DAYS = 5
CHANNELS = ("email", "phone", "chat")
CHANNEL_SHARE = np.array([0.5, 0.3, 0.2])


@dataclass
class _Ticket:
    ticket_id: str
    customer: int
    customer_id: str
    created_at: str
    created_day: int
    channel: str
    subject: str
    status: str = ""
    satisfaction: int | str | None = None
    is_open: bool = True

    def row(self, updated_epoch: int) -> TicketRow:
        return TicketRow(
            ticket_id=self.ticket_id,
            customer_id=self.customer_id,
            created_at=self.created_at,
            updated_at=messy.iso_utc(updated_epoch),
            status=self.status,
            satisfaction=self.satisfaction,
            channel=self.channel,
            subject=self.subject,
        )


@dataclass(frozen=True)
class _Change:
    at: int  # epoch seconds
    ticket_id: str
    kind: str  # "respond", "resolve", "rate" or "close"
    score: int = 0  # satisfaction given with this change; 0 for none


@dataclass(frozen=True)
class Rating:
    customer: int
    score: int


class SupportDesk:
    def __init__(self, start_epoch: int) -> None:
        self._start_epoch = start_epoch
        self._tickets: dict[str, _Ticket] = {}
        self._scheduled: dict[int, list[_Change]] = {}
        self._next_number = 1

    def stale_open_tickets(self, day: int, n_customers: int) -> np.ndarray:
        """Per customer, tickets still open after STALE_AFTER_DAYS days."""
        customers = [
            t.customer
            for t in self._tickets.values()
            if t.is_open and t.created_day <= day - STALE_AFTER_DAYS
        ]
        counts = np.bincount(np.asarray(customers, dtype=np.int64), minlength=n_customers)
        return counts.astype(float)

    def open_tickets(
        self,
        rng: np.random.Generator,
        rnd: random.Random,
        day: int,
        customers: np.ndarray,
        population: Population,
        low_satisfaction_bias: float = 0.0,
    ) -> list[tuple[int, TicketRow]]:
        """Open one ticket for each given customer and schedule its future."""
        n = len(customers)
        u = rng.random((n, 8))
        opened_s = rng.integers(0, DAY_S, n)
        channels = rng.choice(len(CHANNELS), size=n, p=CHANNEL_SHARE)
        rows = []
        for k, customer in enumerate(customers.tolist()):
            at = self._start_epoch + day * DAY_S + int(opened_s[k])
            ticket = _Ticket(
                ticket_id=f"T{self._next_number:07d}",
                customer=customer,
                customer_id=population.customer_id(customer),
                created_at=messy.render_ticket_created_at(rnd, at),
                created_day=day,
                channel=messy.render_channel(rnd, CHANNELS[channels[k]]),
                subject=messy.render_subject(rnd, f"#{rnd.randint(100000, 999999)}"),
                status=messy.render_ticket_status(rnd, "open"),
            )
            self._next_number += 1
            self._tickets[ticket.ticket_id] = ticket
            friction = float(population.friction[customer])
            self._schedule_future(ticket.ticket_id, at, friction, low_satisfaction_bias, u[k])
            rows.append((at, ticket.row(at)))
        return rows

    def _schedule_future(
        self, ticket_id: str, opened: int, friction: float, bias: float, u: np.ndarray
    ) -> None:
        """Each change is scheduled strictly after the ticket's previous one (respond ≥ 1 h
        after opening, resolve ≥ 10 min after that, rate and close days later), so no two
        versions of a ticket share an ``updated_at``: the API's keyset relies on it."""
        stuck = u[0] < 0.08 + 0.12 * (friction > 2.0)
        last = opened
        if u[1] < 0.6:
            last = opened + 3600 + int(u[2] * 27 * 3600)
            self._add(_Change(last, ticket_id, "respond"))
        delay = (20 + u[3] * 40) * DAY_S if stuck else 3600 - math.log1p(-u[3]) * 1.5 * DAY_S
        resolved = max(opened + int(delay), last + 600)
        logit = -1.9 + 1.1 * math.log(friction) + 1.3 * stuck + bias
        if u[4] < 1 / (1 + math.exp(-logit)):
            score = 1 + int(u[5] * 2)
        else:
            score = 3 + int(u[5] >= 0.2) + int(u[5] >= 0.6)
        if u[6] < 0.8:
            self._add(_Change(resolved, ticket_id, "resolve", score))
            last = resolved
        else:
            self._add(_Change(resolved, ticket_id, "resolve"))
            last = resolved + DAY_S + int(u[6] * 2 * DAY_S)
            self._add(_Change(last, ticket_id, "rate", score))
        if u[7] < 0.35:
            self._add(_Change(last + 3 * DAY_S + int(u[7] * 20 * DAY_S), ticket_id, "close"))

    def _add(self, change: _Change) -> None:
        day = (change.at - self._start_epoch) // DAY_S
        self._scheduled.setdefault(day, []).append(change)

    def advance(
        self, rnd: random.Random, day: int
    ) -> tuple[list[tuple[int, TicketRow]], list[Rating]]:
        """Apply the changes due today; return the changed rows and the scores given."""
        rows, ratings = [], []
        for change in sorted(self._scheduled.pop(day, []), key=lambda c: (c.at, c.ticket_id)):
            ticket = self._tickets[change.ticket_id]
            if change.kind == "respond":
                ticket.status = messy.render_ticket_status(rnd, "pending")
            elif change.kind == "resolve":
                ticket.is_open = False
                ticket.status = messy.render_ticket_status(rnd, "resolved")
            elif change.kind == "close":
                ticket.status = messy.render_ticket_status(rnd, "closed")
            if change.score:
                ticket.satisfaction = messy.render_satisfaction(rnd, change.score)
                ratings.append(Rating(ticket.customer, change.score))
            rows.append((change.at, ticket.row(change.at)))
        return rows, ratings
