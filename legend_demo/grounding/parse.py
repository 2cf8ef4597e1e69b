"""Read a VLM answer into points: repair the usual defects, then validate strictly (thesis §4.6 output format).

Repairs: code fences, text around the JSON, trailing commas, single quotes, unquoted keys, Python literals; a
bare list of points; Qwen's native `point_2d` [x, y] and `bbox_2d` [x1, y1, x2, y2] answers (box → centre).
Validation: numeric coordinates inside the image the model saw, integer confidence 1–5 (a missing confidence
counts as 3, the weakest kept level). Anything else raises AnswerError, which the VLM grounder turns into a
fallback to the rules.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..core.points import LesionPoint

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_UNQUOTED_KEY = re.compile(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:")
MISSING_CONFIDENCE = 3


class AnswerError(ValueError):
    """A VLM answer that cannot be read as valid points."""


@dataclass
class ParsedAnswer:
    points: list[LesionPoint]  # in pixels of the image the model saw
    repairs: list[str] = field(default_factory=list)


def parse_answer(answer: str, seen_size: tuple[int, int]) -> ParsedAnswer:
    """Answer text → validated points in the pixels of the (W, H) image the model saw."""
    repairs: list[str] = []
    data = _load_json(answer, repairs)
    items = _items(data, repairs)
    return ParsedAnswer([_point(item, seen_size, repairs) for item in items], repairs)


def _load_json(answer: str, repairs: list[str]) -> Any:
    if not isinstance(answer, str) or not answer.strip():
        raise AnswerError("the answer is empty")
    text = answer.strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
        repairs.append("code fence removed")
    candidate = _first_balanced(text)
    if candidate is None:
        raise AnswerError(f"no JSON in the answer: {_preview(answer)}")
    if candidate != text:
        repairs.append("text around the JSON ignored")
    for attempt, note in ((candidate, ""), (_repaired(candidate), "JSON syntax repaired")):
        try:
            data = json.loads(attempt)
        except json.JSONDecodeError:
            continue
        if note:
            repairs.append(note)
        return data
    raise AnswerError(f"malformed JSON in the answer: {_preview(candidate)}")


def _first_balanced(text: str) -> str | None:
    """The first {...} or [...] with balanced brackets (strings respected), or None."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    start, depth, quote, escaped = min(starts), 0, "", False
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            escaped = (char == "\\") and not escaped
            if char == quote and not escaped:
                quote = ""
            continue
        if char in "\"'":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return text[start: index + 1]
    return None


def _repaired(text: str) -> str:
    if '"' not in text:
        text = text.replace("'", '"')
    text = _UNQUOTED_KEY.sub(r'\1"\2":', text)
    text = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null", text)))
    return _TRAILING_COMMA.sub(r"\1", text)


def _items(data: Any, repairs: list[str]) -> list[dict]:
    if isinstance(data, dict) and "points" in data:
        items = data["points"]
    elif isinstance(data, list):
        items = data
        repairs.append("bare list of points")
    elif isinstance(data, dict):
        items = [data]
        repairs.append("single point object")
    else:
        raise AnswerError(f"expected {{\"points\": [...]}}, got {type(data).__name__}: {_preview(str(data))}")
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise AnswerError(f"'points' must be a list of objects, got {_preview(json.dumps(items))}")
    return items


def _point(item: dict, seen_size: tuple[int, int], repairs: list[str]) -> LesionPoint:
    if "x" in item and "y" in item:
        x, y = _number(item["x"], "x"), _number(item["y"], "y")
    elif "point_2d" in item:
        x, y = _pair(item["point_2d"], "point_2d", 2)
        repairs.append("point_2d read as x, y")
    elif "bbox_2d" in item:
        x1, y1, x2, y2 = _pair(item["bbox_2d"], "bbox_2d", 4)
        x, y = (x1 + x2) / 2, (y1 + y2) / 2
        repairs.append("bbox_2d read as its centre")
    else:
        raise AnswerError(f"a point needs x and y (or point_2d / bbox_2d), got {_preview(json.dumps(item))}")
    width, height = seen_size
    if not (0 <= x < width and 0 <= y < height):
        raise AnswerError(f"point ({x:g}, {y:g}) lies outside the {width}x{height} image the model saw")
    label = item.get("label", "")
    return LesionPoint(x, y, _confidence(item, repairs), str(label)[:80] if label else "vlm")


def _confidence(item: dict, repairs: list[str]) -> int:
    if "confidence" not in item:
        repairs.append(f"missing confidence counted as {MISSING_CONFIDENCE}")
        return MISSING_CONFIDENCE
    value = _number(item["confidence"], "confidence")
    if value != int(value) or not 1 <= value <= 5:
        raise AnswerError(f"confidence must be an integer 1-5, got {item['confidence']!r}")
    return int(value)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AnswerError(f"{name} must be a number, got {value!r}")
    return float(value)


def _pair(value: Any, name: str, length: int) -> list[float]:
    if not isinstance(value, list) or len(value) != length:
        raise AnswerError(f"{name} must be a list of {length} numbers, got {value!r}")
    return [_number(v, name) for v in value]


def _preview(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "…")
