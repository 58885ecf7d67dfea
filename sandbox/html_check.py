"""Reject text that Telegram's HTML parse mode would refuse with "can't parse entities"."""

from __future__ import annotations

import re
from html.parser import HTMLParser

ALLOWED_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
     "tg-spoiler", "span", "blockquote", "tg-emoji"}
)  # fmt: skip
NAMED_ENTITIES = ("&lt;", "&gt;", "&amp;", "&quot;")
_BARE_LT = re.compile(r"<(?![a-zA-Z/])")


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.error = self.error or f'Unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.error = self.error or f'Unexpected end tag "{tag}"'
            return
        self.stack.pop()

    def handle_entityref(self, name: str) -> None:
        if f"&{name};" not in NAMED_ENTITIES:
            self.error = self.error or f"Unsupported entity &{name};"


def html_error(text: str) -> str | None:
    """Why Telegram would refuse `text` in HTML mode, or None when it parses."""
    # A bare "<" or ">" or "&" that is not an entity is refused by Telegram.
    index = 0
    while (index := text.find("&", index)) != -1:
        end = text.find(";", index)
        entity = text[index : end + 1] if end != -1 else ""
        if not entity or not (entity in NAMED_ENTITIES or entity.startswith("&#")):
            return f"Can't find end of the entity starting at byte offset {index}"
        index += 1
    bare = _BARE_LT.search(text)
    if bare:
        return f"Unsupported start tag at byte offset {bare.start()}"
    checker = _Checker()
    checker.feed(text)
    checker.close()
    if checker.error:
        return checker.error
    if checker.stack:
        return f'Can\'t find end tag corresponding to start tag "{checker.stack[-1]}"'
    return None
