"""Links between passages of a local corpus: a passage links to every passage whose title it names.

Multi-hop questions hop through an entity the first passage names (a film's director, a band's home
town) and the second passage is about. The web has hyperlinks for this; a corpus of titled passages has
the titles themselves. A passage names a title when the title's words appear in its text as a run of
whole words, case and order kept, punctuation ignored ("Blood, Sweat & Tears" in "by Blood, Sweat &
Tears."). Titles shorter than :data:`MIN_TITLE_CHARS` are left out: they match ordinary words.

Lookups go through word n-grams of the text (at most as long as the longest title), so the cost is
the text's length times that bound, whatever the number of titles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MIN_TITLE_CHARS = 4
"""A title must have this many characters to be a link (measured rule, docs/benchmarks.md)."""

_WORD = re.compile(r"\w+")


def title_key(text: str) -> tuple[str, ...]:
    """The words of a title or a text, in order, case kept, punctuation dropped."""
    return tuple(_WORD.findall(text))


class TitleLinks:
    """Title → passage ids of one corpus, and the titles a text names."""

    def __init__(self, titles: Iterable[tuple[str, str]]) -> None:
        """``titles``: (title, passage id) for every passage of the corpus."""
        # Keyed by the title's words joined by spaces (words hold none), valued by the one passage id or
        # a tuple of them: a million titles take 529 MB where word tuples and lists took 806 MB.
        self._ids: dict[str, str | tuple[str, ...]] = {}
        self._longest = 0
        for title, doc_id in titles:
            key = title_key(title)
            if key and len(title) >= MIN_TITLE_CHARS:
                joined = " ".join(key)
                held = self._ids.get(joined)
                if held is None:
                    self._ids[joined] = doc_id
                else:
                    self._ids[joined] = (held, doc_id) if isinstance(held, str) else (*held, doc_id)
                self._longest = max(self._longest, len(key))

    def __len__(self) -> int:
        return len(self._ids)

    def named_in(self, text: str) -> list[tuple[str, ...]]:
        """The titles ``text`` names, each once, in the order of their first mention (a title inside a
        longer one named at the same place counts too: "Paris" in "Paris Saint-Germain")."""
        words = title_key(text)
        found: dict[tuple[str, ...], None] = {}
        for start in range(len(words)):
            for end in range(start + 1, min(len(words), start + self._longest) + 1):
                if " ".join(words[start:end]) in self._ids:
                    found.setdefault(words[start:end], None)
        return list(found)

    def ids(self, key: tuple[str, ...]) -> list[str]:
        """The passages with this title (a title may be shared)."""
        held = self._ids.get(" ".join(key), ())
        return [held] if isinstance(held, str) else list(held)

    def linked(self, texts: Iterable[str], *, named_by_query: str = "") -> list[str]:
        """The passages the texts link to, in order of first mention (text by text), leaving out those
        whose title the query itself names: the query already finds them by name."""
        return list(self.linked_by(texts, named_by_query=named_by_query))

    def linked_by(self, texts: Iterable[str], *, named_by_query: str = "") -> dict[str, int]:
        """As :meth:`linked`, each passage with the index of the first text that names it."""
        own = set(self.named_in(named_by_query)) if named_by_query else set()
        out: dict[str, int] = {}
        for i, text in enumerate(texts):
            for key in self.named_in(text):
                if key not in own:
                    for doc_id in self.ids(key):
                        out.setdefault(doc_id, i)
        return out


__all__ = ["MIN_TITLE_CHARS", "TitleLinks", "title_key"]
