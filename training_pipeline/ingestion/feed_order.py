"""The order an incremental API promises, checked page by page during one ingestion.

An incremental feed serves record versions in ``(updated, key)`` order from
``updated_since`` (inclusive), one version per ``(key, updated)``. A page that breaks
that order means its pagination is broken: a record served twice (a page served again)
or an ``updated`` stamp older than one already served or than ``updated_since`` (a
cursor that points back). Either way the page that should have come may never arrive,
so the ingestion stops instead of deduplicating its way past a gap.

Only the stamp must never decrease: ties are not checked for key order, which depends
on the API's collation.  A feed without an updated field (read in full every run) is
checked for repeats only: a key served twice in one reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


class FeedOrderError(ValueError):
    """A page does not continue the feed; the message says which record and why."""


def updated_at_instant(text: str) -> datetime:
    """An ISO 8601 stamp as an aware datetime; no zone means UTC (the contract)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class FeedOrder:
    """Where the feed has got to: the newest stamp served, the keys served at exactly
    that instant, and the keys of the previous page."""

    def __init__(
        self, updated_since: str | None, key: Sequence[str], updated_field: str | None
    ) -> None:
        self.latest = updated_at_instant(updated_since) if updated_since else None
        self._key = tuple(key)
        self._updated = updated_field
        self._at_latest: set[str] = set()
        self._previous_page: set[tuple[datetime | None, str]] = set()
        self._every_key: set[str] = set()  # only for a feed without an updated field

    def _key_of(self, record: Mapping[str, Any]) -> str:
        values = [str(record.get(field)) for field in self._key]
        return values[0] if len(values) == 1 else repr(tuple(values))

    def _repeated(self, key: str, text: object) -> FeedOrderError:
        at = f" updated at {text}" if self._updated else ""
        return FeedOrderError(
            f"returned record {key!r}{at} a second time: the API is repeating records "
            "(a page served again), so the page that should have come may be skipped"
        )

    def check_page(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Accept the page if it continues the feed, else raise FeedOrderError."""
        if self._updated is None:
            self._check_keys_only(records)
            return
        page: set[tuple[datetime | None, str]] = set()
        for record in records:
            key, text = self._key_of(record), record.get(self._updated)
            try:
                stamp = updated_at_instant(text)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise FeedOrderError(
                    f"returned record {key!r} with {self._updated} {text!r}, "
                    "not an ISO 8601 timestamp"
                ) from None
            if (
                (stamp, key) in self._previous_page
                or (stamp, key) in page
                or (stamp == self.latest and key in self._at_latest)
            ):
                raise self._repeated(key, text)
            if self.latest is not None and stamp < self.latest:
                raise FeedOrderError(
                    f"returned record {key!r} updated at {text}, before "
                    f"{self.latest:%Y-%m-%dT%H:%M:%S%z} already reached: the feed went "
                    "backwards (the cursor of this request points back)"
                )
            if stamp != self.latest:
                self.latest, self._at_latest = stamp, set()
            self._at_latest.add(key)
            page.add((stamp, key))
        self._previous_page = page

    def _check_keys_only(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            key = self._key_of(record)
            if key in self._every_key:
                raise self._repeated(key, None)
            self._every_key.add(key)
