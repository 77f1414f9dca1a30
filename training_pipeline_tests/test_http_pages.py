"""How the HTTP engine reads a body and follows pages, whatever the style: a body it
cannot use stops the ingestion naming the request, and it never follows a link away."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from training_pipeline.ingestion.http_api import HttpApiClient, HttpApiError, dig
from training_pipeline_tests.http_source_helpers import churn_tickets


def client(body: Any, headers: dict[str, str] | None = None, **changes: Any) -> HttpApiClient:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, json=body, headers=headers or {})
    )
    source = churn_tickets(**changes)
    return HttpApiClient(source, "http://api.test", transport=transport)


def ticket(ticket_id: str) -> dict[str, str]:
    return {"ticket_id": ticket_id, "updated_at": "2026-01-01T00:00:00Z"}


def test_a_dotted_path_finds_a_value_and_says_when_it_is_missing():
    body = {"result": {"items": [1], "next": None}}
    assert dig(body, "result.items") == (True, [1])
    assert dig(body, "result.next") == (True, None)
    assert dig(body, "result.missing") == (False, None)
    assert dig([1, 2], "") == (True, [1, 2])
    assert dig([1, 2], "data") == (False, None)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"items": []}, "without a list of records at 'data'"),
        ({"data": {"0": ticket("T1")}}, "without a list of records at 'data'"),
        ({"data": [ticket("T1"), "T2"]}, "records at 'data' that are not all objects"),
        ({"data": [ticket("T1")]}, "without a next cursor at 'next_cursor'"),
        ({"data": [], "next_cursor": {"page": 2}}, "without a next cursor at 'next_cursor'"),
    ],
)
def test_a_body_without_the_declared_shape_stops_naming_the_request(body, problem):
    with client(body) as api, pytest.raises(HttpApiError) as raised:
        list(api.iter_pages(None))
    assert f"GET http://api.test/tickets?limit=500 answered JSON {problem}" in str(raised.value)


def test_a_body_that_is_the_list_is_read_when_records_path_is_empty_until_an_empty_page():
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            200, json=[] if "skip" in request.url.params else [ticket("T1")]
        )
    )
    source = churn_tickets(records_path="", pagination={"style": "offset", "offset_param": "skip"})
    with HttpApiClient(source, "http://api.test", transport=transport) as api:
        pages = list(api.iter_pages(None))
    assert [p.request_ref for p in pages] == ["/tickets?limit=500", "/tickets?limit=500&skip=1"]
    assert [len(p.records) for p in pages] == [1, 0]


def test_a_next_link_to_another_origin_is_refused_not_followed():
    link = {"Link": '<https://elsewhere.test/tickets?page=2>; rel="next"'}
    source = {"pagination": {"style": "link_header"}}
    api = client({"data": [ticket("T1")]}, link, **source)
    with api, pytest.raises(HttpApiError, match="next link to another origin"):
        list(api.iter_pages(None))


def test_a_next_link_that_was_already_followed_stops_instead_of_looping():
    link = {"Link": '</tickets?page=2>; rel="next"'}
    pages = iter([{"data": [ticket("T1")]}, {"data": [ticket("T2")]}, {"data": [ticket("T3")]}])
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, json=next(pages), headers=link)
    )
    source = churn_tickets(pagination={"style": "link_header"})
    api = HttpApiClient(source, "http://api.test", transport=transport)
    with api, pytest.raises(HttpApiError, match="returned a next link already followed"):
        list(api.iter_pages(None))
