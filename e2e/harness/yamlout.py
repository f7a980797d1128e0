"""A tiny YAML emitter for Envoy bootstraps (dicts, lists, str, int, float,
bool, None). Strings are always double-quoted JSON-style, which YAML reads
back unchanged, so no value can be misread as another type."""

from __future__ import annotations

import json
import re

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _scalar(v) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=True)
    raise TypeError(f"cannot emit {type(v).__name__} as YAML")


def _key(k) -> str:
    if not isinstance(k, str):
        raise TypeError(f"YAML keys must be strings, not {k!r}")
    return k if _PLAIN_KEY.match(k) and k not in ("true", "false", "null", "yes", "no", "on", "off") else json.dumps(k)


def _emit(v, indent: int, out: list[str]) -> None:
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            out[-1] += " {}"
            return
        for k, item in v.items():
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{_key(k)}:")
                _emit(item, indent + 1, out)
            elif isinstance(item, dict):
                out.append(f"{pad}{_key(k)}: {{}}")
            elif isinstance(item, list):
                out.append(f"{pad}{_key(k)}: []")
            else:
                out.append(f"{pad}{_key(k)}: {_scalar(item)}")
    elif isinstance(v, list):
        for item in v:
            if isinstance(item, dict) and item:
                sub: list[str] = [""]
                _emit(item, indent + 1, sub)
                first = sub[1]
                out.append(f"{pad}- {first.lstrip()}")
                out.extend(sub[2:])
            elif isinstance(item, list) and item:
                out.append(f"{pad}-")
                _emit(item, indent + 1, out)
            elif isinstance(item, dict):
                out.append(f"{pad}- {{}}")
            elif isinstance(item, list):
                out.append(f"{pad}- []")
            else:
                out.append(f"{pad}- {_scalar(item)}")
    else:
        out.append(f"{pad}{_scalar(v)}")


def dump(doc) -> str:
    out: list[str] = [""]
    _emit(doc, 0, out)
    return "\n".join(out[1:]) + "\n"
