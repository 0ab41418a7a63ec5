"""The bodies a fake server answers for a test's models: real upstream items (tests/upstream.py) with the
test's values filled in. Nothing here invents a key: each function only overwrites keys its template has,
or drops keys the upstream omits in that state (an unloaded model has no `loaded_instances` entry).

A test's model is a small dict: `id`, `name`, `context` (the model's maximum), `num_ctx` (what the
server is set to serve), `loaded_context` (what a loaded instance serves now), `output`, `tools`,
`vision`, `reasoning`, `embedding`, `arch`, `digest`, `cost_in`/`cost_out` (USD per million), `extra`
(keys merged into an OpenAI-style item as they are).
"""

from __future__ import annotations

import hashlib
from typing import Any

import upstream


def digest_of(model: dict[str, Any]) -> str:
    return str(model.get("digest") or hashlib.sha256(model["id"].encode()).hexdigest())


def ollama_caps(m: dict[str, Any]) -> list[str]:
    caps = ["embedding"] if m.get("embedding") else ["completion"]
    caps += [c for c, k in (("tools", "tools"), ("vision", "vision"), ("thinking", "reasoning"))
             if m.get(k)]
    return caps


# --- Ollama --------------------------------------------------------------------------------------


def ollama_tag(m: dict[str, Any], with_capabilities: bool) -> dict[str, Any]:
    tag = upstream.ollama_tag(with_capabilities)
    arch = m.get("arch", "llama")
    tag.update(name=m["id"], model=m["id"], digest=digest_of(m))
    tag["details"].update(family=arch, families=[arch])
    if with_capabilities:
        tag["capabilities"] = ollama_caps(m)
        if m.get("context"):
            tag["details"]["context_length"] = m["context"]
        else:
            tag["details"].pop("context_length", None)
    return tag


def ollama_show(m: dict[str, Any]) -> dict[str, Any]:
    """The docs' /api/show example for another model: its architecture keys renamed, its
    `num_ctx` line the test's (or none), its capabilities the test's."""
    show = upstream.ollama_show()
    arch = m.get("arch", "llama")
    old_arch = show["model_info"]["general.architecture"]
    info = {}
    for key, value in show["model_info"].items():
        if key.startswith(old_arch + "."):
            key = arch + key[len(old_arch):]
        info[key] = value
    info["general.architecture"] = arch
    if m.get("context"):
        info[f"{arch}.context_length"] = m["context"]
    else:
        info.pop(f"{arch}.context_length", None)
    show["model_info"] = info
    lines = [ln for ln in show["parameters"].split("\n") if not ln.startswith("num_ctx")]
    if m.get("num_ctx"):
        lines.append(f"num_ctx {m['num_ctx']}")
    show["parameters"] = "\n".join(lines)
    show["capabilities"] = ollama_caps(m)
    show["details"].update(family=arch, families=[arch])
    return show


def ollama_ps(models: list[dict[str, Any]]) -> dict[str, Any]:
    running = []
    for m in models:
        if m.get("loaded_context"):
            entry = upstream.ollama_ps_entry()
            entry.update(name=m["id"], model=m["id"], digest=digest_of(m),
                         context_length=m["loaded_context"])
            running.append(entry)
    return {"models": running}


# --- LM Studio -----------------------------------------------------------------------------------


def lmstudio_v1(m: dict[str, Any]) -> dict[str, Any]:
    item = upstream.lmstudio_v1(embedding=bool(m.get("embedding")))
    item.update(key=m["id"], display_name=m.get("name", m["id"]), max_context_length=m.get("context"))
    loaded = m.get("loaded_context")
    if loaded:
        instance = upstream.lmstudio_v1(embedding=False)["loaded_instances"][0]
        instance["id"] = m["id"]
        instance["config"]["context_length"] = loaded
        item["loaded_instances"] = [instance]
    else:
        item["loaded_instances"] = []
    if "capabilities" in item:
        caps = item["capabilities"]
        caps.update(vision=bool(m.get("vision")), trained_for_tool_use=bool(m.get("tools")))
        if not m.get("reasoning"):
            caps.pop("reasoning", None)
    for key in ("variants", "selected_variant"):
        item.pop(key, None)
    return item


def lmstudio_v0(m: dict[str, Any]) -> dict[str, Any]:
    item = upstream.lmstudio_v0()
    kind = "embeddings" if m.get("embedding") else "vlm" if m.get("vision") else "llm"
    item.update(id=m["id"], type=kind, max_context_length=m.get("context"))
    return item


# --- llama.cpp -----------------------------------------------------------------------------------


def llamacpp_models(models: list[dict[str, Any]]) -> dict[str, Any]:
    """One model: a single-model server's envelope; more: a router's, each entry loaded or not."""
    if len(models) == 1:
        envelope, _ = upstream.llamacpp_single()
        m = models[0]
        entry = envelope["data"][0]
        entry.update(id=m["id"], aliases=[m["id"]])
        entry["meta"].update(n_ctx=m.get("num_ctx") or m.get("context"), n_ctx_train=m.get("context"))
        envelope["models"][0].update(name=m["id"], model=m["id"])
        return envelope
    data = []
    for m in models:
        entry = upstream.llamacpp_router(loaded=bool(m.get("loaded_context")))
        args = list(entry["status"]["args"])
        if "--ctx-size" in args:
            at = args.index("--ctx-size")
            del args[at:at + 2]
        if m.get("num_ctx"):
            args += ["--ctx-size", str(m["num_ctx"])]
        entry.update(id=m["id"])
        entry["status"]["args"] = args
        entry["status"].pop("preset", None)
        if "meta" in entry:
            entry["meta"].update(n_ctx=m["loaded_context"], n_ctx_train=m.get("context"))
        entry["architecture"]["input_modalities"] = ["text", "image"] if m.get("vision") else ["text"]
        data.append(entry)
    return {"data": data, "object": "list"}


def llamacpp_props(models: list[dict[str, Any]]) -> dict[str, Any]:
    _, props = upstream.llamacpp_single()
    m = models[0] if models else {}
    props["default_generation_settings"]["n_ctx"] = m.get("num_ctx") or m.get("context")
    props["model_alias"] = m.get("id", "")
    props["chat_template_caps"]["supports_tools"] = bool(m.get("tools"))
    props["modalities"]["vision"] = bool(m.get("vision"))
    return props


# --- OpenAI-compatible ---------------------------------------------------------------------------


def openai_item(m: dict[str, Any], variant: str | None) -> dict[str, Any]:
    if variant == "vllm":
        item = upstream.vllm_item()
        item.update(id=m["id"], root=m["id"], max_model_len=m.get("context"))
    elif variant == "openrouter":
        item = openrouter_item(m)
    elif variant == "litellm":
        item = upstream.litellm_item()
        item.update(id=m["id"], mode="embedding" if m.get("embedding") else "chat",
                    max_input_tokens=m.get("context"), max_output_tokens=m.get("output"))
    else:
        item = upstream.openai_item()
        item["id"] = m["id"]
    item.update(m.get("extra", {}))
    return item


def openrouter_item(m: dict[str, Any]) -> dict[str, Any]:
    item = upstream.openrouter_item()
    inputs = ["text", "image"] if m.get("vision") else ["text"]
    item.update(id=m["id"], canonical_slug=m["id"], name=m.get("name", m["id"]),
                context_length=m.get("context"), expiration_date=None)
    item["links"]["details"] = f"/api/v1/models/{m['id']}/endpoints"
    item["architecture"].update(input_modalities=inputs, modality="+".join(inputs) + "->text")
    item["pricing"] = {"prompt": f"{m.get('cost_in', 0) / 1e6:.10f}",
                       "completion": f"{m.get('cost_out', 0) / 1e6:.10f}", "request": "0", "image": "0"}
    item["top_provider"].update(context_length=m.get("context"), max_completion_tokens=m.get("output"))
    params = ["temperature", "top_p", "max_tokens"]
    params += ["tools", "tool_choice"] if m.get("tools") else []
    params += ["reasoning"] if m.get("reasoning") else []
    item["supported_parameters"] = params
    return item


def litellm_info(m: dict[str, Any]) -> dict[str, Any]:
    entry = upstream.litellm_info()
    entry["model_name"] = m["id"]
    entry["litellm_params"]["model"] = f"openai/{m['id']}"
    info = entry["model_info"]
    info.update({key: None for key, value in info.items() if key.startswith(("input_cost", "output_cost",
                                                                              "cache_"))})
    info.update(id=digest_of(m), key=m["id"], max_tokens=m.get("output"),
                max_input_tokens=m.get("context"), max_output_tokens=m.get("output"),
                input_cost_per_token=m["cost_in"] / 1e6 if "cost_in" in m else None,
                output_cost_per_token=m["cost_out"] / 1e6 if "cost_out" in m else None,
                mode="embedding" if m.get("embedding") else "chat",
                supports_function_calling=m.get("tools"), supports_vision=m.get("vision"),
                supports_reasoning=m.get("reasoning"), supports_pdf_input=None)
    return entry


# --- Anthropic and Gemini ------------------------------------------------------------------------


def anthropic_item(m: dict[str, Any]) -> dict[str, Any]:
    item = upstream.anthropic_item()
    item.update(id=m["id"], display_name=m.get("name", m["id"]),
                max_input_tokens=m.get("context"), max_tokens=m.get("output"))
    return item


def gemini_item(m: dict[str, Any]) -> dict[str, Any]:
    item = upstream.gemini_item()
    methods = ["embedContent", "countTokens"] if m.get("embedding") else item["supportedGenerationMethods"]
    name = m.get("name", m["id"])
    item.update(name=f"models/{m['id']}", displayName=name, description=name,
                inputTokenLimit=m.get("context"), outputTokenLimit=m.get("output"),
                supportedGenerationMethods=methods, thinking=bool(m.get("reasoning")))
    return item
