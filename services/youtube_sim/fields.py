"""The ``fields`` partial-response parameter of Google APIs, as the simulator applies it.

Grammar (the subset YouTube clients use): a comma-separated list of selections; a selection
is a path ``a/b/c`` optionally followed by a parenthesised sub-list, e.g.
``nextPageToken,items(id,snippet(title,thumbnails/high/url)),pageInfo``.
A selection keeps only the named keys; arrays are filtered element by element.
"""

from __future__ import annotations

from typing import Any

Tree = dict[str, "Tree | None"]  # None: keep the whole value


class FieldsError(ValueError):
    """A ``fields`` value that does not parse."""


def parse_fields(text: str) -> Tree:
    tree, rest = _parse_list(text.replace(" ", ""), 0)
    if rest != len(text.replace(" ", "")):
        raise FieldsError(f"unexpected character at {rest}")
    return tree


def _merge(into: Tree, path: list[str], sub: Tree | None) -> None:
    """Adds the selection ``path`` (+ ``sub``) to ``into``; a whole-value selection wins."""
    head, *tail = path
    if head in into and into[head] is None:
        return
    if tail:
        _merge(into.setdefault(head, {}), tail, sub)  # type: ignore[arg-type]
    elif sub is None:
        into[head] = None
    else:
        node = into.setdefault(head, {})
        for key, value in sub.items():
            _merge(node, [key], value)  # type: ignore[arg-type]


def _parse_list(text: str, pos: int) -> tuple[Tree, int]:
    tree: Tree = {}
    while True:
        start = pos
        while pos < len(text) and text[pos] not in ",()":
            pos += 1
        path = text[start:pos].split("/")
        if not all(path):
            raise FieldsError(f"empty field name at {start}")
        sub: Tree | None = None
        if pos < len(text) and text[pos] == "(":
            sub, pos = _parse_list(text, pos + 1)
            if pos >= len(text) or text[pos] != ")":
                raise FieldsError("unclosed parenthesis")
            pos += 1
        _merge(tree, path, sub)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        return tree, pos


def apply_fields(value: Any, tree: Tree | None) -> Any:
    """``value`` trimmed to the selection ``tree`` (None keeps everything)."""
    if tree is None:
        return value
    if isinstance(value, list):
        return [apply_fields(item, tree) for item in value]
    if isinstance(value, dict):
        return {key: apply_fields(value[key], sub) for key, sub in tree.items() if key in value}
    return value
