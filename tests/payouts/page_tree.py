"""A small HTML tree for page tests, on the standard library's parser: find elements by tag, id, class and
attributes, read their text and attributes (no third-party HTML library is pinned)."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def __getitem__(self, name: str) -> str:
        value = self.attrs[name]
        return "" if value is None else value

    def has_attr(self, name: str) -> bool:
        return name in self.attrs

    def walk(self) -> Iterator[Node]:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.walk()

    def find_all(
        self, tag: str | None = None, *, id: str | None = None, class_: str | None = None, **attrs: str | bool
    ) -> list[Node]:
        def matches(node: Node) -> bool:
            if tag is not None and node.tag != tag:
                return False
            if id is not None and node.attrs.get("id") != id:
                return False
            if class_ is not None and class_ not in (node.attrs.get("class") or "").split():
                return False
            for name, want in attrs.items():
                name = name.replace("_", "-")
                if want is True:
                    if name not in node.attrs:
                        return False
                elif node.attrs.get(name) != want:
                    return False
            return True

        return [node for node in self.walk() if matches(node)]

    def find(self, tag: str | None = None, **kwargs: Any) -> Node | None:
        found = self.find_all(tag, **kwargs)
        return found[0] if found else None

    def one(self, tag: str | None = None, **kwargs: Any) -> Node:
        found = self.find(tag, **kwargs)
        assert found is not None, f"no <{tag or '*'}> with {kwargs}"
        return found

    def raw_text(self) -> str:
        return "".join(c if isinstance(c, str) else c.raw_text() for c in self.children)

    def text(self) -> str:
        """The text content, whitespace collapsed (tags are word boundaries)."""
        parts = (c if isinstance(c, str) else f" {c.text()} " for c in self.children)
        return " ".join("".join(parts).split())

    def without(self, node: Node) -> str:
        """This subtree as a canonical string with `node` left out: for comparing two pages but for one part."""
        if self is node:
            return ""
        inner = "".join(c if isinstance(c, str) else c.without(node) for c in self.children)
        return f"<{self.tag} {sorted(self.attrs.items(), key=str)}>{inner}</{self.tag}>"


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Node(tag, dict(attrs), self.current))

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(html: bytes | str) -> Node:
    builder = _Builder()
    builder.feed(html.decode() if isinstance(html, bytes) else html)
    builder.close()
    return builder.root
