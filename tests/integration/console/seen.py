"""What a person sees on a console page, read from its HTML without the markup: the
visible text, the links by name, the buttons and the labelled form fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

HIDDEN = {"script", "style", "template", "title"}


@dataclass
class Seen:
    text: str = ""
    links: dict[str, str] = field(default_factory=dict)
    buttons: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.seen, self.words, self.hidden = Seen(), list[str](), 0
        self.open: list[tuple[str, str]] = []
        self.current = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag in HIDDEN:
            self.hidden += 1
        if tag in ("a", "button", "label"):
            self.open.append((tag, values.get("href", "")))
            self.current = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        if self.open and self.open[-1][0] == tag:
            kind, href = self.open.pop()
            name = " ".join(self.current.split())
            if kind == "a":
                self.seen.links[name] = href
            elif kind == "button":
                self.seen.buttons.append(name)
            else:
                self.seen.labels.append(name)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        self.words.append(data)
        self.current += data


def seen(html: str) -> Seen:
    reader = _Reader()
    reader.feed(html)
    reader.seen.text = " ".join(" ".join(reader.words).split())
    return reader.seen
