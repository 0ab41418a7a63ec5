"""Renders a remote model as the OpenCode model entry syncd writes (pure; DESIGN §4.3, §1.4)."""

from __future__ import annotations

import math
import re
from typing import Any

from syncd.model import RemoteModel
from syncd.providers.normalize import unsafe_reason

# the only modality values OpenCode's config schema accepts (DESIGN §1.4)
MODALITIES = ("text", "audio", "image", "video", "pdf")
DEFAULT_OUTPUT_CAP = 32000
STATUSES = ("alpha", "beta", "deprecated")  # OpenCode's model `status` values (hides deprecated ones)

_ACRONYMS = {"gpt": "GPT", "oss": "OSS", "vl": "VL", "moe": "MoE", "awq": "AWQ", "gguf": "GGUF",
             "mlx": "MLX", "gptq": "GPTQ", "fp8": "FP8", "fp16": "FP16", "bf16": "BF16",
             "int4": "INT4", "int8": "INT8", "ai": "AI", "llm": "LLM", "hf": "HF"}
_SIZE = re.compile(r"(?i)^(?:\d+x)?\d+(?:\.\d+)?[kmbt]$|^e\d+b$")  # 30b, 1.5b, 8x7b, 405B, e4b
_QUANT = re.compile(r"(?i)^i?q\d")  # q4_K_M, iq3_xs: keep the underscores, upper-case it
_SMALL_NUMBER = re.compile(r"^\d{1,2}$")


def readable_name(model_id: str) -> str:
    """A display name from an ID: `qwen3-coder:30b` -> `Qwen3 Coder 30B`.

    The vendor prefix (`anthropic/`) is dropped; runs of small numbers become a version
    (`claude-sonnet-4-6` -> `Claude Sonnet 4.6`); sizes and quantisations are upper-cased.
    """
    base = model_id.rstrip("/").rsplit("/", 1)[-1] or model_id
    words: list[str] = []
    for token in re.split(r"[-:\s]+", base):
        if _QUANT.match(token):
            words.append(token.upper())
        else:
            words.extend(t for t in token.split("_") if t)
    out: list[str] = []
    for word in words:
        if out and _SMALL_NUMBER.match(word) and re.fullmatch(r"\d{1,2}(?:\.\d{1,2})*", out[-1]):
            out[-1] += "." + word
        else:
            out.append(_word(word))
    return " ".join(out) or model_id


def _word(word: str) -> str:
    lower = word.lower()
    if lower in _ACRONYMS:
        return _ACRONYMS[lower]
    if _SIZE.match(word):
        return word.upper() if lower.startswith("e") else lower[:-1] + lower[-1].upper()
    if word != lower:  # the ID already chose a casing (Meta-Llama, DeepSeek): keep it
        return word
    return word[:1].upper() + word[1:]


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def _price(value: object) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _input_modalities(m: RemoteModel) -> list[str] | None:
    """The input modalities OpenCode should know about, or None when there is nothing to say."""
    wanted: list[str] = []
    if m.input_modalities is not None:
        wanted = [x.lower() for x in m.input_modalities]
    if m.vision:
        wanted += ["text", "image"]
    if not wanted:
        return None
    if "text" not in wanted:
        wanted.insert(0, "text")
    accepted = [x for x in MODALITIES if x in wanted]
    if accepted == ["text"] and m.input_modalities is None:
        return None
    return accepted


def render_entry(m: RemoteModel) -> dict[str, Any]:
    """The model entry for `m`, keys in DESIGN §4.3 order, containing only what is known."""
    entry: dict[str, Any] = {}
    name = m.name.strip() if m.name else ""
    entry["name"] = name if name and unsafe_reason(name) is None else readable_name(m.id)

    context = _positive_int(m.context)
    if context is not None:
        output = _positive_int(m.output) or min(context // 4, DEFAULT_OUTPUT_CAP) or 1
        entry["limit"] = {"context": context, "output": output}

    if m.tool_call is not None:
        entry["tool_call"] = bool(m.tool_call)
    if m.reasoning is not None:
        entry["reasoning"] = bool(m.reasoning)

    inputs = _input_modalities(m)
    attachment = m.attachment
    if attachment is None and inputs is not None and inputs != ["text"]:
        attachment = True
    if attachment is not None:
        entry["attachment"] = bool(attachment)
    if inputs is not None:
        outputs = [x for x in MODALITIES if x in {o.lower() for o in m.output_modalities or ()}]
        entry["modalities"] = {"input": inputs, "output": outputs or ["text"]}

    cost_in, cost_out = _price(m.cost_in), _price(m.cost_out)
    if cost_in is not None and cost_out is not None:
        entry["cost"] = {"input": cost_in, "output": cost_out}
        for key, value in (("cache_read", m.cache_read), ("cache_write", m.cache_write)):
            if _price(value) is not None:
                entry["cost"][key] = value
    if m.status in STATUSES:
        entry["status"] = m.status
    return entry
