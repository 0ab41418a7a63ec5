"""Turns the entries removed from and appended to one container into text edits in the file's own style."""

from __future__ import annotations

from typing import Any

from syncd.jsonc.layout import Layout, render_key
from syncd.jsonc.parser import Node

Edit = tuple[int, int, str]  # (start, end, new text), offsets into the original text


class Group:
    """What happens to one container: entries removed, values replaced, new entries appended."""

    __slots__ = ("node", "parent_multiline", "removed", "replaced", "added", "above")

    def __init__(self, node: Node, parent_multiline: bool, above: tuple[int, ...]) -> None:
        self.node = node
        self.parent_multiline = parent_multiline
        self.removed: set[int] = set()
        self.replaced: dict[int, Any] = {}  # entry index -> its new value
        # appended, in order: object key -> value, or array values
        self.added: dict[str, Any] | list[Any] = {} if node.kind == "object" else []
        self.above = above  # ids of the containers on the way down to this one


class Emitter:
    """Emits the edits of each Group against one text; every edit is computed on the original."""

    def __init__(self, text: str, lay: Layout, edits: list[Edit]) -> None:
        self.text = text
        self.lay = lay
        self.edits = edits

    def items(self, g: Group, base: str, multiline: bool) -> list[str]:
        lay = self.lay
        pad = lay.value_pad(g.node)
        if isinstance(g.added, list):
            return [lay.render(v, base, multiline, pad) for v in g.added]
        return [f"{render_key(k)}: {lay.render(v, base, multiline, pad)}" for k, v in g.added.items()]

    def emit(self, g: Group) -> None:
        node, lay, edits = g.node, self.lay, self.edits
        entries = node.entries
        kept = next((i for i in range(len(entries) - 1, -1, -1) if i not in g.removed), None)
        trailing = entries[-1].comma >= 0 if entries else lay.trailing_commas
        last_removed = bool(entries) and len(entries) - 1 in g.removed
        if lay.multiline(node):
            for i in sorted(g.removed):
                e = entries[i]
                pos, hit = lay.trailing(e.node.end)
                start = lay.line_start(e.start)
                edits.append((start, pos + lay.break_len(pos) if hit else pos, ""))
            if last_removed and not trailing and kept is not None and not g.added:
                comma = entries[kept].comma
                edits.append((comma, comma + 1, ""))
            if g.added:
                self.append_lines(g, kept, trailing)
            return
        self.inline_remove(g)
        if g.added:
            self.append_inline(g, kept, trailing, last_removed)

    def append_lines(self, g: Group, kept: int | None, trailing: bool) -> None:
        """Append after the last entry kept (`kept`), each new entry on its own line."""
        node, lay, t = g.node, self.lay, self.text
        entries = node.entries
        indent = lay.indent_at(entries[0].start) if entries else lay.indent_at(node.start) + lay.unit
        ml = not lay.single_line_values(node)
        items = self.items(g, indent, ml)
        n = len(items)
        commas = ["," if k < n - 1 or trailing else "" for k in range(n)]
        if kept is not None:
            p = entries[kept]
            if p.comma < 0:
                self.edits.append((p.node.end, p.node.end, ","))
            body = "".join(lay.eol + indent + it + c for it, c in zip(items, commas, strict=True))
            pos, hit = lay.trailing(p.node.end)
            at = pos if hit else (p.comma + 1 if p.comma >= 0 else p.node.end)
            self.edits.append((at, at, body))
            return
        close = node.end - 1
        lines = "".join(indent + it + c + lay.eol for it, c in zip(items, commas, strict=True))
        if lay.first_on_line(close):
            at = lay.line_start(close)
            self.edits.append((at, at, lines))
        else:
            q = close
            while t[q - 1] in " \t":
                q -= 1
            self.edits.append((q, close, lay.eol + lines + lay.indent_at(node.start)))

    def inline_remove(self, g: Group) -> None:
        """Delete each run of removed entries of a one-line container (only the runs are visited)."""
        entries, edits = g.node.entries, self.edits
        todo = sorted(g.removed)
        k = 0
        while k < len(todo):
            i = j = todo[k]
            while k + 1 < len(todo) and todo[k + 1] == j + 1:
                k += 1
                j += 1
            if j + 1 < len(entries):
                edits.append((entries[i].start, entries[j + 1].start, ""))
            elif i > 0:
                # the removed tail's own comma (if any) survives as the previous entry's comma
                edits.append((entries[i - 1].node.end, entries[j].node.end, ""))
            else:
                last = entries[j]
                edits.append((entries[0].start, last.comma + 1 if last.comma >= 0 else last.node.end, ""))
            k += 1

    def append_inline(self, g: Group, kept: int | None, trailing: bool, last_removed: bool) -> None:
        node, lay, t = g.node, self.lay, self.text
        entries = node.entries
        if kept is not None:
            items = self.items(g, "", False)
            p = entries[kept]
            if trailing and last_removed:
                # the removed tail's comma stays as the survivor's: the new entries go after it
                at = entries[-1].comma + 1
                self.edits.append((at, at, " " + ", ".join(items) + ","))
            elif trailing:
                self.edits.append((p.comma + 1, p.comma + 1, " " + ", ".join(items) + ","))
            else:
                self.edits.append((p.node.end, p.node.end, ", " + ", ".join(items)))
            return
        if entries:  # every entry removed: the deletion starts at the first one
            items = self.items(g, "", False)
            self.edits.append((entries[0].start, entries[0].start, ", ".join(items)))
            return
        close = node.end - 1
        q = close
        while t[q - 1] in " \t":
            q -= 1
        if not lay.one_line and g.parent_multiline:
            ind = lay.indent_at(node.start)
            inner = ind + lay.unit
            items = self.items(g, inner, True)
            sep = "," + lay.eol + inner
            tail = "," if trailing else ""
            self.edits.append((q, close, lay.eol + inner + sep.join(items) + tail + lay.eol + ind))
            return
        pad = lay.pad(node)
        items = self.items(g, "", False)
        start = node.start + 1 if q == node.start + 1 else q
        self.edits.append((start, close, pad + ", ".join(items) + pad))
