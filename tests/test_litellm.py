"""A real LiteLLM proxy as the gateway: syncd learns its models, limits, tool support and embedding kind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from syncd.errors import AuthFailed, BadResponse, FetchError
from syncd.model import Kind, Limits, ModelKind, ProviderSpec, Secret
from syncd.providers.discover import FetchCache, fetch_models, make_client

pytestmark = pytest.mark.litellm

MASTER = "sk-syncd-test-master-4242"
CONFIG = """\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "http://127.0.0.1:9/v1", api_key: dummy}
  - model_name: local-coder
    litellm_params: {model: openai/local-coder, api_base: "http://127.0.0.1:9/v1", api_key: dummy}
    model_info: {max_input_tokens: 65536, max_output_tokens: 8192, supports_function_calling: true}
  - model_name: embed-small
    litellm_params: {model: openai/text-embedding-3-small, api_base: "http://127.0.0.1:9/v1", api_key: dummy}
    model_info: {mode: embedding}
  # one model_name over two deployments: the router may send a request to either
  - model_name: coder
    litellm_params: {model: openai/local-coder, api_base: "http://127.0.0.1:9/v1", api_key: dummy}
    model_info: {max_input_tokens: 65536, max_output_tokens: 8192, supports_function_calling: true}
  - model_name: coder
    litellm_params: {model: openai/local-coder, api_base: "http://127.0.0.1:10/v1", api_key: dummy}
    model_info: {max_input_tokens: 32768, max_output_tokens: 4096, supports_function_calling: true}
  - model_name: claude-sonnet
    litellm_params: {model: anthropic/claude-sonnet-4-5-20250929, api_key: dummy, api_base: "http://127.0.0.1:9"}
  - model_name: image-gen
    litellm_params: {model: openai/gpt-image-1, api_base: "http://127.0.0.1:9/v1", api_key: dummy}
general_settings: {master_key: MASTER_KEY}
""".replace("MASTER_KEY", MASTER)
LIMITS = Limits(connect=2, read=10, total=20)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def litellm_url(litellm_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A LiteLLM proxy on a free loopback port, offline; always killed at the end."""
    work = tmp_path_factory.mktemp("litellm")
    (work / "config.yaml").write_text(CONFIG)
    port = _free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
           "NO_PROXY": "*", "HOME": str(work)}
    log = (work / "proxy.log").open("wb")
    proc = subprocess.Popen(
        [litellm_bin, "--config", str(work / "config.yaml"), "--host", "127.0.0.1",
         "--port", str(port), "--num_workers", "1"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"litellm exited with {proc.returncode}: see {work / 'proxy.log'}")
            try:
                if httpx.get(url + "/health/liveliness", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"litellm not ready within 120 s: see {work / 'proxy.log'}")
            time.sleep(0.25)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


async def test_syncd_learns_litellm_models(litellm_url: str) -> None:
    spec = ProviderSpec(id="gateway", base_url=litellm_url + "/v1", api_key=Secret(MASTER))
    cache = FetchCache()
    async with make_client(LIMITS) as client:
        result = await fetch_models(spec, client, limits=LIMITS, cache=cache)
    assert result.kind is Kind.OPENAI and cache.kinds[spec.base_url] is Kind.OPENAI
    models = {m.id: m for m in result.models}
    assert set(models) == {"gpt-4o", "local-coder", "embed-small", "coder", "claude-sonnet", "image-gen"}
    coder = models["local-coder"]
    assert (coder.context, coder.output, coder.tool_call) == (65536, 8192, True)
    assert models["embed-small"].kind is ModelKind.EMBEDDING
    gpt = models["gpt-4o"]  # from LiteLLM's own (offline) cost map
    assert gpt.context and gpt.output and gpt.tool_call is True and gpt.cost_in
    assert result.suspicious == ()


async def test_one_model_name_over_two_deployments_gets_the_smaller_limits(litellm_url: str) -> None:
    spec = ProviderSpec(id="gateway", base_url=litellm_url + "/v1", api_key=Secret(MASTER))
    async with make_client(LIMITS) as client:
        models = {m.id: m for m in (await fetch_models(spec, client, limits=LIMITS)).models}
    assert (models["coder"].context, models["coder"].output) == (32768, 4096)


async def test_pdf_input_cache_prices_and_an_image_model(litellm_url: str) -> None:
    spec = ProviderSpec(id="gateway", base_url=litellm_url + "/v1", api_key=Secret(MASTER))
    async with make_client(LIMITS) as client:
        models = {m.id: m for m in (await fetch_models(spec, client, limits=LIMITS)).models}
    claude = models["claude-sonnet"]  # LiteLLM's own cost map says all of this
    assert claude.input_modalities is not None and "pdf" in claude.input_modalities
    assert claude.cache_read and claude.cache_write and claude.reasoning is True
    assert models["image-gen"].kind is ModelKind.OTHER


async def test_wrong_key_fails_without_leaking_it(litellm_url: str) -> None:
    wrong = "sk-wrong-key-for-litellm-77"
    spec = ProviderSpec(id="gateway", base_url=litellm_url + "/v1", api_key=Secret(wrong),
                        kind=Kind.OPENAI)
    async with make_client(LIMITS) as client:
        with pytest.raises(FetchError) as info:
            await fetch_models(spec, client, limits=LIMITS)
    assert wrong not in str(info.value)
    # Without a database LiteLLM answers an unknown key with 400 "No connected db." rather than
    # 401; either way it is this provider's typed failure, never a crash or an empty list.
    assert isinstance(info.value, (AuthFailed, BadResponse)), info.value
