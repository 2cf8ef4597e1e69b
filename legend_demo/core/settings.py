"""Every environment setting of LeGend demo, in one table, and the one place that reads them (README "Settings").

A value is read when it is asked for (`get`), so launchers and tests may set variables at any time. Command-line
flags (app.py --checkpoints, --engine) become process overrides (`override`); nothing is written back into
os.environ. A malformed value raises ValueError naming the variable.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping


def _text(name: str, raw: str) -> str:
    return raw


def _path(name: str, raw: str) -> Path:
    return Path(raw).expanduser()


def _switch(name: str, raw: str) -> bool:
    if raw not in ("0", "1"):
        raise ValueError(f"{name}={raw!r} must be 0 or 1")
    return raw == "1"


def _positive(kind: type) -> Callable[[str, str], float | int]:
    def parse(name: str, raw: str):
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a {'whole ' if kind is int else ''}number") from None
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name}={raw!r} must be a positive number")
        return value

    return parse


def _addresses(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or networks (CIDR); '' for none."""
    import ipaddress

    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{name}: {item!r} is not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/8)") from None
    return items


def _log_level(name: str, raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"{name}={raw!r}; choose DEBUG, INFO, WARNING or ERROR")
    return level


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None  # as text, parsed like a value from the environment; None: unset
    parse: Callable[[str, str], Any]
    help: str


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("LEGEND_CHECKPOINTS", None, _path, "root of the checkpoint folders (default: ./checkpoints)"),
    Setting("LEGEND_FLUX_PATH", None, _text, "FLUX.1-dev folder or hub id (default: <root>/flux1-dev)"),
    Setting("LEGEND_LORA_PATH", None, _text, "stage-1 LoRA folder (default: <root>/legend-stage1-lora)"),
    Setting("LEGEND_GBCA_PATH", None, _text,
            "stage-2 s(τ) weights (default: <root>/legend-stage2-gbca/gbca_strength.safetensors)"),
    Setting("LEGEND_EMU3_PATH", None, _text, "Emu3-Gen folder or hub id for the AR engine (default: <root>/emu3-gen)"),
    Setting("LEGEND_AR_LORA_PATH", None, _text, "AR LoRA folder (default: <root>/legend-ar-lora)"),
    Setting("LEGEND_AR_GBCA_PATH", None, _text,
            "AR GBCA strength weights (default: <root>/legend-ar-gbca/gbca_strength.safetensors)"),
    Setting("LEGEND_QWEN_PATH", None, _text,
            "Qwen2.5-VL-7B-Instruct folder for the VLM grounder (default: <root>/qwen2.5-vl-7b-instruct)"),
    Setting("LEGEND_XRV_PATH", None, _path,
            "evaluate: TorchXRayVision densenet121-res224-all weights (default: <root>/xrv-densenet121-res224-all)"),
    Setting("LEGEND_CLIP_PATH", None, _path, "evaluate: CLIP model folder for CLIP-T (default: <root>/biomedclip)"),
    Setting("LEGEND_INCEPTION_PATH", None, _path,
            "evaluate: Inception-v3 weights for Inception FID (default: <root>/inception-v3)"),
    Setting("LEGEND_EMBEDDED_PATH", None, _path, "the embedded model folder (default: assets/embedded)"),
    Setting("LEGEND_ENGINE", None, _text, "engine used when none is named: app, API and CLI (default: first available)"),
    Setting("LEGEND_ENABLE_TEST_ENGINE", "0", _switch, "1 makes the tiny-random test engine exist (tests only)"),
    Setting("LEGEND_ALLOW_CPU_FLUX", "0", _switch, "1 lets FLUX.1-dev load without a CUDA GPU (very slow)"),
    Setting("LEGEND_ALLOW_CPU_EMU3", "0", _switch, "1 lets Emu3-Gen load without a CUDA GPU (very slow)"),
    Setting("LEGEND_QWEN_TIMEOUT_S", "60", _positive(float), "VLM grounder: seconds per answer"),
    Setting("LEGEND_QWEN_MAX_NEW_TOKENS", "256", _positive(int), "VLM grounder: tokens per answer"),
    Setting("LEGEND_QWEN_MAX_PIXELS", str(1024 * 28 * 28), _positive(int), "VLM grounder: image pixels after resizing"),
    Setting("LEGEND_QWEN_4BIT", "1", _switch, "VLM grounder: 1 = NF4 weights, 0 = bf16"),
    Setting("LEGEND_MAX_UPLOAD_MB", "50", _positive(float), "app: largest upload in MB"),
    Setting("LEGEND_MAX_PIXELS", "50000000", _positive(int), "app: largest image in pixels (W·H)"),
    Setting("LEGEND_LOG_LEVEL", "INFO", _log_level, "app console log level (DEBUG adds tracebacks of refused inputs)"),
    Setting("LEGEND_STUDY_ADMIN_PASSWORD", None, _text,
            "reader study: admin password when `study create` was given none"),
    Setting("LEGEND_STUDY_IDLE_MINUTES", "30", _positive(float), "reader study: idle minutes before a session ends"),
    Setting("LEGEND_STUDY_SESSION_HOURS", "12", _positive(float), "reader study: longest session in hours"),
    Setting("LEGEND_STUDY_TRUSTED_PROXIES", None, _addresses,
            "reader study: addresses of your reverse proxy, comma-separated (its X-Forwarded-For/-Proto are "
            "believed only from these; default: none, the connection's address is the client)"),
    Setting("LEGEND_CT_CACHE", None, _path, "synthetic data: CT cache folder (default: ~/.cache/legend_demo/ct)"),
)}

_overrides: dict[str, str] = {}


def get(name: str, env: Mapping[str, str] | None = None) -> Any:
    """The parsed value of setting `name`: a process override, else the environment (or `env`, for tests), else
    its default (None when it has none)."""
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}; known: {', '.join(SETTINGS)}")
    setting = SETTINGS[name]
    raw = (_overrides.get(name) or os.environ.get(name)) if env is None else env.get(name)
    raw = raw or setting.default
    return None if raw is None else setting.parse(name, raw)


def override(**values: str | Path | None) -> None:
    """Set process-wide values from command-line flags (None leaves a setting alone); checked at once."""
    for name, value in values.items():
        if value is None:
            continue
        if name not in SETTINGS:
            raise ValueError(f"unknown setting {name!r}")
        SETTINGS[name].parse(name, str(value))
        _overrides[name] = str(value)


def clear_overrides() -> None:
    _overrides.clear()


def markdown_table() -> str:
    """The README's settings table: variable, default, meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.name}` | {s.default if s.default is not None else '—'} | {s.help} |" for s in SETTINGS.values()]
    return "\n".join(rows)
