"""A schema-driven fuzzer (schemathesis) against the running server's own OpenAPI document:
whatever it sends, the server answers 2xx/4xx, never 5xx. Kept small enough for CI."""

from __future__ import annotations

import httpx
import pytest
from server_helpers import running_server

schemathesis = pytest.importorskip("schemathesis", reason="the test extra: pip install -e '.[test,ui]'")
from hypothesis import HealthCheck, settings  # noqa: E402  (schemathesis brings hypothesis)

LIMITS = ["--max-pixels", "4096", "--max-steps", "2", "--max-frames", "3", "--max-num", "1", "--max-upload-mb", "0.1"]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory):
    with running_server(tmp_path_factory.mktemp("fuzzed"), *LIMITS) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(url: str):
    return schemathesis.openapi.from_url(f"{url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_server_fail(case) -> None:
    response = case.call(timeout=60)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
        detail = response.json().get("detail")
        assert isinstance(detail, str) and "\n" not in detail, detail


def test_the_schema_lists_every_operation(url: str) -> None:
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    assert {"/jobs", "/jobs/{job_id}", "/jobs/{job_id}/events", "/uploads", "/runs", "/models", "/info"} <= set(paths)
