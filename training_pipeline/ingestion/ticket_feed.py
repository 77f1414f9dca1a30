"""The order the ticket API promises, checked page by page during one ingestion.

The API serves ticket versions in ``(updated_at, ticket_id)`` order from ``updated_since``
(inclusive), one version per ``(ticket_id, updated_at)``. A page that breaks that order
means its pagination is broken: a record served twice (a page served again) or an
``updated_at`` older than one already served or than ``updated_since`` (a cursor that
points back). Either way the page that should have come may never arrive, so the
ingestion stops instead of deduplicating its way past a gap.

Only ``updated_at`` must never decrease: ties are not checked for ``ticket_id`` order,
which depends on the API's collation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any


class FeedOrderError(ValueError):
    """A page does not continue the feed; the message says which record and why."""


def updated_at_instant(text: str) -> datetime:
    """An ISO 8601 ``updated_at`` as an aware datetime; no zone means UTC (the contract)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class FeedOrder:
    """Where the feed has got to: the newest ``updated_at`` served, the tickets served at
    exactly that instant, and the keys of the previous page."""

    def __init__(self, updated_since: str | None) -> None:
        self.latest = updated_at_instant(updated_since) if updated_since else None
        self._at_latest: set[str] = set()
        self._previous_page: set[tuple[datetime, str]] = set()

    def check_page(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Accept the page if it continues the feed, else raise FeedOrderError."""
        page: set[tuple[datetime, str]] = set()
        for record in records:
            ticket_id, text = str(record.get("ticket_id")), record.get("updated_at")
            try:
                stamp = updated_at_instant(text)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise FeedOrderError(
                    f"returned ticket {ticket_id!r} with updated_at {text!r}, "
                    "not an ISO 8601 timestamp"
                ) from None
            key = (stamp, ticket_id)
            if (
                key in self._previous_page
                or key in page
                or (stamp == self.latest and ticket_id in self._at_latest)
            ):
                raise FeedOrderError(
                    f"returned ticket {ticket_id!r} updated at {text} a second time: the "
                    "API is repeating records (a page served again), so the page that "
                    "should have come may be skipped"
                )
            if self.latest is not None and stamp < self.latest:
                raise FeedOrderError(
                    f"returned ticket {ticket_id!r} updated at {text}, before "
                    f"{self.latest:%Y-%m-%dT%H:%M:%S%z} already reached: the feed went "
                    "backwards (the cursor of this request points back)"
                )
            if stamp != self.latest:
                self.latest, self._at_latest = stamp, set()
            self._at_latest.add(ticket_id)
            page.add(key)
        self._previous_page = page
