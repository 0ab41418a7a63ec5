"""The HTTP edge: every server fault becomes the right FetchError, in bounded time, without secrets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from syncd.errors import (
    AuthFailed,
    BadResponse,
    FetchError,
    FetchTimeout,
    RateLimited,
    ServerFailed,
    Unreachable,
)
from syncd.model import Kind, Limits, ProviderSpec, Secret
from syncd.providers.discover import fetch_many, fetch_models
from syncd.providers.fetch import check_count, make_client, redact_url, request_json, root_url, unwrap_list
from tests import fakes
from tests.fakes import FakeProvider

FAST = Limits(connect=0.5, read=0.5, total=1.5, max_body=1024 * 1024)
KEY = "sk-test-SECRET-0123456789"

Factory = Callable[..., FakeProvider]
fake_provider = fakes.fake_provider  # the lead may move this into conftest.py


def spec_of(fake: FakeProvider, kind: Kind = Kind.OPENAI, key: str | None = None) -> ProviderSpec:
    return ProviderSpec(id="gw", base_url=fake.base_url, kind=kind,
                        api_key=Secret(key) if key else None)


async def fetch(spec: ProviderSpec, limits: Limits = FAST) -> FetchError | None:
    async with make_client(limits) as client:
        try:
            await fetch_models(spec, client, limits=limits)
        except FetchError as exc:
            return exc
    return None


FAULTS: list[tuple[str, type[FetchError]]] = [
    ("hang", FetchTimeout),
    ("slow", FetchTimeout),
    ("500", ServerFailed),
    ("html", BadResponse),
    ("truncated", BadResponse),
    ("error200", BadResponse),
    ("401", AuthFailed),
    ("429", RateLimited),
    ("huge", BadResponse),
]


@pytest.mark.parametrize(("fault", "expected"), FAULTS, ids=[f for f, _ in FAULTS])
async def test_fault_becomes_its_error_within_the_budget(
    fake_provider: Factory, fault: str, expected: type[FetchError]
) -> None:
    fake = fake_provider("openai")
    fake.fault = fault
    started = time.monotonic()
    error = await fetch(spec_of(fake, key=KEY))
    elapsed = time.monotonic() - started
    assert type(error) is expected, error
    assert elapsed < FAST.total + 1.0
    assert "\n" not in str(error) and KEY not in str(error)


async def test_rate_limit_carries_retry_after(fake_provider: Factory) -> None:
    fake = fake_provider("openai")
    fake.fault, fake.retry_after = "429", 42
    error = await fetch(spec_of(fake))
    assert isinstance(error, RateLimited) and error.retry_after == 42


async def test_server_error_carries_status(fake_provider: Factory) -> None:
    fake = fake_provider("openai")
    fake.fault = "500"
    error = await fetch(spec_of(fake))
    assert isinstance(error, ServerFailed) and error.status == 500


async def test_data_null_is_an_empty_list_not_an_error(fake_provider: Factory) -> None:
    fake = fake_provider("openai")
    fake.fault = "null"
    async with make_client(FAST) as client:
        result = await fetch_models(spec_of(fake), client, limits=FAST)
    assert result.models == ()


async def test_closed_port_is_unreachable() -> None:
    fake = FakeProvider("openai")
    fake.close()
    error = await fetch(spec_of(fake))
    assert isinstance(error, Unreachable)


async def test_key_sent_as_bearer_and_never_in_messages(fake_provider: Factory) -> None:
    fake = fake_provider("openai", api_key="sk-right-key-000")
    error = await fetch(spec_of(fake, key=KEY))
    assert isinstance(error, AuthFailed)
    assert fake.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in str(error) and KEY not in repr(error) and "Bearer" not in str(error)


async def test_server_echoing_the_key_is_scrubbed() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        sent = request.headers["authorization"]
        return httpx.Response(401, json={"error": {"message": f"Incorrect API key: {sent}"}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(echo)) as client:
        with pytest.raises(AuthFailed) as info:
            await request_json(client, "http://h/v1/models", headers={"authorization": f"Bearer {KEY}"},
                               secrets=[KEY])
    assert KEY not in str(info.value)


async def test_400_saying_the_key_is_wrong_is_auth() -> None:
    def gemini_style(request: httpx.Request) -> httpx.Response:
        message = "API key not valid. Please pass a valid API key."
        return httpx.Response(400, json={"error": {"message": message}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(gemini_style)) as client:
        with pytest.raises(AuthFailed):
            await request_json(client, "http://h/models")


async def test_password_in_url_is_redacted_in_messages() -> None:
    url = "http://user:hunter2pass@127.0.0.1:9/v1"
    error = await fetch(ProviderSpec(id="x", base_url=url, kind=Kind.OPENAI))
    assert isinstance(error, Unreachable)
    assert "hunter2pass" not in str(error) and "user" not in str(error) and "//***@127" in str(error)


def test_redact_url_hides_userinfo_and_every_query_value() -> None:
    # a user name can be the token itself (https://TOKEN@host), and any query value a key
    assert redact_url("https://a:b@h/x?key=zzz&q=1") == "https://***@h/x?key=***&q=***"
    assert redact_url("https://tok3n@h/x") == "https://***@h/x"
    assert redact_url("http://h:1234/v1") == "http://h:1234/v1"


def test_root_url_drops_v1() -> None:
    assert root_url("http://localhost:11434/v1/") == "http://localhost:11434"
    assert root_url("https://openrouter.ai/api/v1") == "https://openrouter.ai/api"
    assert root_url("http://h:8000") == "http://h:8000"


@pytest.mark.parametrize(
    ("payload", "count"),
    [({"data": [{"id": "a"}]}, 1), ({"models": [{"id": "a"}, {"id": "b"}]}, 2),
     ([{"id": "a"}], 1), ({"data": None}, 0), ({"object": "list", "data": []}, 0)],
)
def test_envelopes_accepted(payload: object, count: int) -> None:
    assert len(unwrap_list(payload, "x")) == count


@pytest.mark.parametrize("payload", [{"data": "nope"}, {"object": "list"}, "text", 3, None])
def test_wrong_shapes_are_bad_responses(payload: object) -> None:
    with pytest.raises(BadResponse):
        unwrap_list(payload, "x")


def test_too_many_models_is_an_error_naming_the_limit() -> None:
    with pytest.raises(BadResponse, match="limit of 3"):
        check_count(4, Limits(max_models=3), "x")
    check_count(3, Limits(max_models=3), "x")


async def test_over_max_models_is_refused_not_truncated(fake_provider: Factory) -> None:
    fake = fake_provider("openai", [{"id": f"m{i}"} for i in range(12)])
    error = await fetch(spec_of(fake), Limits(connect=1, read=1, total=3, max_models=10))
    assert isinstance(error, BadResponse) and "10" in str(error)


async def test_one_failure_never_affects_the_others(fake_provider: Factory) -> None:
    good = fake_provider("openai")
    hung = fake_provider("openai")
    hung.fault = "hang"
    broken = fake_provider("openai")
    broken.fault = "html"
    specs = [spec_of(good), spec_of(hung), spec_of(broken), spec_of(good)]
    async with make_client(FAST) as client:
        results = await fetch_many(specs, client, limits=FAST)
    assert [type(r).__name__ for r in results] == [
        "FetchResult", "FetchTimeout", "BadResponse", "FetchResult"]
    assert [m.id for m in results[0].models] == [m["id"] for m in good.models]  # type: ignore[union-attr]


async def test_unexpected_payload_never_escapes_as_another_exception() -> None:
    def odd(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"id": "a", "context_length": {"x": 1},
                                                  "pricing": [1], "architecture": 5}, 7, None]})

    spec = ProviderSpec(id="odd", base_url="http://h/v1", kind=Kind.OPENAI)
    async with httpx.AsyncClient(transport=httpx.MockTransport(odd)) as client:
        result = await fetch_models(spec, client, limits=FAST)
    assert [m.id for m in result.models] == ["a"]
    assert all(s.reason for s in result.suspicious)


async def test_hang_on_one_provider_does_not_delay_fetch_many_past_budget(
    fake_provider: Factory,
) -> None:
    fakes = [fake_provider("openai") for _ in range(4)]
    for fake in fakes:
        fake.fault = "hang"
    started = time.monotonic()
    async with make_client(FAST) as client:
        results = await asyncio.wait_for(
            fetch_many([spec_of(f) for f in fakes], client, limits=FAST), timeout=10)
    assert all(isinstance(r, FetchTimeout) for r in results)
    assert time.monotonic() - started < FAST.total + 2.0
