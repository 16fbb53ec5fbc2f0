"""Read the ``images`` block of a big DTD file without building a YAML document for it.

yaml_rs turns a 1M-image file into a million dicts with their own key strings: about 760 MB of
Python objects before a single Image exists, and most of the reading time (benchmarks/split.py,
docs in benchmarks/README.md). Big DTD files are nearly always in one plain shape, the one our
writer emits and yaml-cpp's emitter writes::

    images:
      - location: "images/a.jpg"
        label: "ground_truth/a.png"
      - images/b.jpg

This module reads that shape, and only that shape, with one regular expression; the rest of the
file (everything before and after the block) still goes through yaml_rs, so the document is
the same one yaml_rs would build, down to the type of each scalar. Anything else in the block
(escapes, comments, anchors, tags, ``values``, other keys, flow collections, blank lines) makes
``split_images_block`` return None and the caller parses the whole file with yaml_rs.

Why the result equals yaml_rs's on the shape accepted:
* a double-quoted scalar without ``\\`` or a line break means its characters (YAML 1.2 §7.3.1);
  characters YAML does not allow unescaped are refused here;
* a plain scalar made of ``[A-Za-z0-9_./-]`` that contains ``/`` matches none of the core
  schema's null/bool/int/float forms (YAML 1.2 §10.3.2), so it is a string; every other plain
  scalar is resolved by yaml_rs itself, all distinct ones in one call;
* the text before the block and after it must each parse on its own as a mapping without
  ``images`` and without shared keys: a quote, flow collection or alias running across the
  block fails that and falls back.
"""

from __future__ import annotations

import re
from typing import Any

import yaml_rs

# A double-quoted scalar on one line, without escapes or characters YAML wants escaped.
_DQUOTED = '"([^"\\\\\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\ufeff]*)"'
# A plain scalar of path characters; it cannot start with `-` (a sequence entry) or hold `:`/`#`.
_PLAIN = "([A-Za-z0-9_./][A-Za-z0-9_./-]*)"
_SCALAR = f"(?:{_DQUOTED}|{_PLAIN})"
_BLOCK_START = re.compile(r"^images:\n(?=( *)- )", re.MULTILINE)
_NEXT_KEY = re.compile(r"[A-Za-z_\"']")


def _entry_pattern(indent: int) -> re.Pattern[str]:
    """One entry at ``indent``: ``- location: S`` with an optional ``label: S`` line, or ``- S``."""
    dash = " " * indent
    key = " " * (indent + 2)
    return re.compile(f"{dash}- location: {_SCALAR} *\\n(?:{key}label: {_SCALAR} *\\n)?|{dash}- {_SCALAR} *\\n")


def split_images_block(text: str) -> dict[str, Any] | None:
    """The document of a DTD file whose ``images`` block has the plain shape, or None.

    ``images`` holds the entries of ``_entries``, which dataset_from_document reads as it reads
    yaml_rs's mappings, without a dict and two key strings per image.
    """
    start = _BLOCK_START.search(text)
    if start is None or not text.endswith("\n"):
        return None
    pattern = _entry_pattern(len(start.group(1)))
    position = start.end()
    raw: list[tuple] = []
    append = raw.append
    for match in pattern.finditer(text, position):
        if match.start() != position:
            break
        position = match.end()
        append(match.groups())
    if not raw or (position < len(text) and not _NEXT_KEY.match(text, position)):
        return None  # the block goes on in a shape not read here, or is not followed by a key
    head = _mapping(text[: start.start()])
    tail = _mapping(text[position:])
    if head is None or tail is None or "images" in head or "images" in tail or head.keys() & tail.keys():
        return None
    return {**head, "images": _entries(raw), **tail}


def _mapping(text: str) -> dict[str, Any] | None:
    """``text`` parsed on its own: a mapping ({} when empty), or None when it is anything else."""
    try:
        document = yaml_rs.loads(text, parse_datetime=False) if text.strip() else {}
    except yaml_rs.YAMLDecodeError:
        return None
    return document if isinstance(document, dict) else None


def _entries(raw: list[tuple]) -> list[str | tuple[Any, Any]]:
    """The matched groups as entries: a location string, ``(location,)`` for another location
    without a label, or ``(location, label)``; plain scalars without ``/`` resolved by yaml_rs."""
    unresolved = {token for groups in raw for token in groups[1::2] if token is not None and "/" not in token}
    resolved = _resolve_plain(sorted(unresolved))
    entries: list[str | tuple[Any, Any]] = []
    append = entries.append
    for location_q, location_p, label_q, label_p, bare_q, bare_p in raw:
        if bare_q is not None or bare_p is not None:
            append(_value(bare_q, bare_p, resolved))
            continue
        location = _value(location_q, location_p, resolved)
        if label_q is None and label_p is None:
            append(location if type(location) is str and location else (location,))
        else:
            append((location, _value(label_q, label_p, resolved)))
    return entries


def _value(quoted: str | None, plain: str | None, resolved: dict[str, Any]) -> Any:
    if quoted is not None:
        return quoted
    assert plain is not None
    return plain if "/" in plain else resolved[plain]


def _resolve_plain(tokens: list[str]) -> dict[str, Any]:
    """What yaml_rs makes of each plain token (null, bool, int, float or string), in one parse."""
    if not tokens:
        return {}
    values = yaml_rs.loads("[" + ", ".join(tokens) + "]", parse_datetime=False)
    return dict(zip(tokens, values, strict=True))
