"""The import columns of every object type, described from the schemas (`tslcd import --columns TYPE`).

The README's import section is this module's Markdown output; a test keeps the two the same.
"""

import enum
import types
import typing
from datetime import date
from typing import Any

from tslcd.core.text import table
from tslcd.registry.context import NATURAL_KEYS
from tslcd.registry.models import AdminUnit
from tslcd.registry.resources import RESOURCES, Resource

LINK_END_DOCS = {
    "a_device": ("text", "device name of the a end (with a_interface; or give a_interface_id)"),
    "a_interface": ("text", "interface name on a_device"),
    "b_device": ("text", "device name of the b end (with b_interface; or give b_interface_id)"),
    "b_interface": ("text", "interface name on b_device"),
}


def _kind(annotation: Any, metadata: list[Any]) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kind(typing.get_args(annotation)[0], metadata)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _kind(inner[0], metadata) if inner else "text"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of: " + ", ".join(m.value for m in annotation)
    if annotation is bool:
        return "true/false"
    if annotation is int:
        if any(getattr(m, "func", None) is not None and "bitrate" in getattr(m.func, "__name__", "") for m in metadata):
            return "bit rate (bit/s, or 100M, 1G, 2.5G)"
        return "integer"
    if annotation is float:
        return "number"
    if annotation is date:
        return "date YYYY-MM-DD"
    return "text"


def _limit(res: Resource, name: str) -> str:
    column = res.model.__table__.c.get(name)
    length = getattr(getattr(column, "type", None), "length", None)
    return f", at most {length} characters" if length and not hasattr(column.type, "enums") else ""


def _range(metadata: list[Any]) -> str:
    low = next((getattr(m, "ge", None) for m in metadata if getattr(m, "ge", None) is not None), None)
    high = next((getattr(m, "le", None) for m in metadata if getattr(m, "le", None) is not None), None)
    if low is None and high is None:
        return ""
    return f", {low if low is not None else ''}..{high if high is not None else ''}"


def rows(res: Resource) -> list[tuple[str, str, str, str]]:
    """(column, type, required for new rows, description) in export order."""
    from tslcd.registry.service import export_columns

    refs = {r.column: r for r in res.refs}
    fields = res.create.model_fields
    out = [("id", "integer", "", "empty: a new object; an id: update that object (only the columns given change)")]
    for name in export_columns(res)[1:]:
        if name in refs:
            ref = refs[name]
            target = fields[ref.target]
            key = "code, or code@YYYY-MM-DD" if ref.model is AdminUnit else NATURAL_KEYS[ref.model].key
            out.append((name, f"{ref.model.__tablename__} {key}", "yes" if target.is_required() else "",
                        f"or {ref.target} (id)" + (f"; {target.description}" if target.description else "")))
        elif name in LINK_END_DOCS:
            kind, doc = LINK_END_DOCS[name]
            out.append((name, kind, "yes", doc))
        else:
            info = fields[name]
            kind = _kind(info.annotation, list(info.metadata)) + _limit(res, name) + _range(info.metadata)
            default = "" if info.is_required() or info.default in (None, "") else f"default {getattr(info.default, 'value', info.default)}"
            doc = "; ".join(d for d in (info.description or "", default) if d)
            out.append((name, kind, "yes" if info.is_required() else "", doc))
    return out


def describe(names: list[str], *, markdown: bool = False) -> str:
    parts = []
    for name in names:
        res = RESOURCES[name]
        body = rows(res)
        if markdown:
            lines = [f"#### `{name}`", "", "| column | type | required | notes |", "|---|---|---|---|"]
            lines += [f"| `{c}` | {t} | {r} | {d} |" for c, t, r, d in body]
            parts.append("\n".join(lines))
        else:
            parts.append(f"{name}:\n" + table(["column", "type", "required", "notes"], body))
    return "\n\n".join(parts)
