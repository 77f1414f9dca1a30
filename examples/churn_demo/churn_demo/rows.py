"""The rows one simulated day delivers to the three source systems, already rendered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class CrmRecord:
    """One inserted record of the CRM's ``customers`` table."""

    record_id: int
    customer_id: str
    full_name: str
    email: str
    age: str
    country: str
    segment: str
    signup_date: str
    updated_at: datetime  # aware, UTC


@dataclass(frozen=True)
class OrderRow:
    """One line of an order file. ``amount_text`` is a float where the source sent a number."""

    order_id: str
    customer_id: str
    ordered_at: str
    amount_text: str | float
    amount: float
    status: str


@dataclass(frozen=True)
class TicketRow:
    """A ticket as the API serves it after one change (insert or in-place update)."""

    ticket_id: str
    customer_id: str
    created_at: str
    updated_at: str  # clean ISO 8601 UTC, the API's cursor
    status: str
    satisfaction: int | str | None
    channel: str
    subject: str


@dataclass(frozen=True)
class DayEvents:
    """Everything that happened in the sources on one simulated day."""

    day: int
    date: date
    crm_records: tuple[CrmRecord, ...]
    orders: tuple[OrderRow, ...]  # the day's file, re-delivered rows included
    redelivered: int
    tickets: tuple[TicketRow, ...]  # in the order the changes happened
