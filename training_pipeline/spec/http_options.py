"""How an ``http_api`` source pages through its endpoint, asks for what changed, and
retries: the parts of its declaration that are about HTTP rather than rows."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from training_pipeline.spec.contracts import Spec
from training_pipeline.spec.errors import FieldError
from training_pipeline.spec.sizes import seconds


class CursorPagination(Spec):
    style: Literal["cursor"]
    cursor_param: str = "cursor"  # query parameter carrying the next cursor
    next_path: str = "next_cursor"  # dotted path of the next cursor in the body; null = done


class PageNumberPagination(Spec):
    style: Literal["page_number"]
    page_param: str = "page"
    start: int = 1  # an empty page is the last (a server may cap page_size, so short is not)


class OffsetPagination(Spec):
    style: Literal["offset"]
    offset_param: str = "offset"  # an empty page is the last


class LinkHeaderPagination(Spec):
    style: Literal["link_header"]  # RFC 8288 `Link: <...>; rel="next"`; absent = done


Pagination = Annotated[
    CursorPagination | PageNumberPagination | OffsetPagination | LinkHeaderPagination,
    Field(discriminator="style"),
]


class HttpIncremental(Spec):
    param: str  # query parameter that asks for records changed since the last stamp
    updated_field: str  # record field holding its change time (must be a contract column)


class Retry(Spec):
    attempts: int = 5
    backoff_s: float = 0.5
    timeout_s: float = 10.0
    max_retry_after_s: float = 120.0  # a longer Retry-After fails the batch instead of hanging

    @field_validator("backoff_s", "timeout_s", "max_retry_after_s", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return seconds(value)

    @model_validator(mode="after")
    def _rules(self) -> Retry:
        if self.attempts < 1:
            raise FieldError("attempts", f"{self.attempts} attempts never sends a request", ">= 1")
        if self.timeout_s <= 0:
            raise FieldError("timeout_s", "must be positive")
        return self
