"""The reader's text work around the answer call: what kind of question it is, which sources to show,
the supporting sentence, and an answer snapped to the words of its source.

Small models read a few well-chosen sources better than many, paraphrase or write sentences where a
span of the source is the answer, and answer yes/no and either-or questions with a name from the
passage. These functions are pure (no model, no I/O) so each can be tested and measured on its own;
``benchmarks/reader_levers.py`` measures what each one buys (docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from leadline.agent.state import Evidence

QuestionKind = Literal["open", "yesno", "choice"]


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_AUX = _wordset("is are was were do does did can could has have had will would should may might am")
_STOP = _wordset(
    """a an the of in on at to for from by with and or but is are was were be been being do does did
    what which who whom whose when where why how that this these those it its as than then there their
    his her he she they them we you your our i me my has have had not no yes same both also into
    about after before during first last most more many much one two name named called"""
)
_WH = re.compile(r"\b(?:what|which|who|whom|whose|when|where|why|how)\b", re.IGNORECASE)
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class QuestionShape:
    """What kind of answer the question wants: open text, yes/no, or one of the options it names."""

    kind: QuestionKind
    options: tuple[str, ...] = ()


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = re.compile(r"[^\w\s]")


@functools.lru_cache(maxsize=4096)
def normalize(text: str) -> str:
    """Lower case, no punctuation, no articles (the SQuAD normalization the benchmarks score with).

    Cached: a run checks its answer against the same passages at every step, and a batch's runs share
    passages."""
    return " ".join(_PUNCTUATION.sub(" ", _ARTICLES.sub(" ", text.lower())).split())


def _strip_option(text: str) -> str:
    text = text.strip().strip("\"'“”‘’?").strip()
    return re.sub(r"^(?:the|a|an)\s+", "", text, flags=re.IGNORECASE).strip()


def _asks(text: str) -> bool:
    """Whether ``text`` opens with a wh-word or an auxiliary (it is the question's own head)."""
    return bool(_WH.match(text)) or text.split(" ", 1)[0].lower() in _AUX


def _choice(left: str, right: str) -> QuestionShape | None:
    """An either-or question's shape with these two options, or None when one is empty or too long."""
    left, right = _strip_option(left), _strip_option(right)
    if left and right and len(left.split()) <= 8 and len(right.split()) <= 8:
        return QuestionShape("choice", (left, right))
    return None


_JOINING_OR = re.compile(r"\s+or\s+(?!not\b)", re.IGNORECASE)
"""An "or" between two options: not one inside a title's "X or Not X"."""


_SENTENCE_BREAK = re.compile(
    r"(?<=\w\w[.!])(?<!\b(?:Mr|Ms|Dr|St|Jr|Sr|Mt|Co|No|vs)\.)(?<!\b(?:Mrs|Inc|Ltd|Gen|Col|Sgt)\.)\s+(?=[A-Z])"
)
"""The end of a sentence inside a question (not after an initial or "Mr.")."""
_COMPARES = re.compile(
    r"\b(?:first|last|earlier|earliest|later|latest|older|oldest|younger|youngest|more|most|less|least|fewer"
    r"|larger|largest|smaller|smallest|bigger|biggest|taller|tallest|higher|highest|lower|longer|longest"
    r"|shorter|closer|closest|further|farther|newer|newest|recently|better|best|greater|greatest)\b",
    re.IGNORECASE,
)
"""A word that makes a question compare two things."""
_LAST_AND = re.compile(r"\s+and\s+(?!.*\sand\s)", re.IGNORECASE)
"""The last "and" of a text."""
_BETWEEN = re.compile(
    r"^(?:in\s+)?between\s+(?P<pair>\S.*?\s+and\s+.+?)(?:,\s*|\s+)(?=(?:which|who)\b)", re.I
)
"""A question that opens with the two things it asks to choose between."""


def _option_parts(body: str) -> list[str]:
    """The parts of a question its options may stand in, the last first: what follows each comma or
    semicolon, and what follows a colon that ends the question's own words ("Which is older: A or B"),
    not a colon inside a title ("Which film, LaLee's Kin: The Legacy of Cotton or Gimme Shelter")."""
    parts: list[str] = []
    for i, segment in enumerate(re.split(r"[,;]\s+", body)):
        head, colon, tail = segment.partition(": ")
        if colon and (i == 0 or _asks(head)):
            parts += [head, tail]
        else:
            parts.append(segment)
    return parts[:0:-1]


def question_shape(question: str) -> QuestionShape:
    """Recognise either-or questions (with their two options) and yes/no questions.

    ``Who was born first, Sandy Denny or Jack White?`` is a choice between the two names, and so are
    ``Which band, A or B, had more members?``, ``Who is younger Keith Bostic or Jerry Glanville?`` and
    ``Did Franki Valli sing with Hellogoodbye or The Four Seasons?`` and ``Between A and B, which writer
    ...?``; ``Are X and Y both American?`` is yes/no; anything else is open.
    """
    q = " ".join(question.strip().split())
    body = q.rstrip("?").strip()
    for part in _option_parts(body):
        joins = list(_JOINING_OR.finditer(part))
        # the last "or" that joins two options ("To SquarePants or Not to SquarePants" is one)
        choice = _choice(part[: joins[-1].start()], part[joins[-1].end() :]) if joins else None
        if choice:
            return choice
    between = _BETWEEN.match(body)  # "Between A and B, which writer ...?": the last "and" joins them
    choice = _choice(*_LAST_AND.split(between.group("pair"))) if between else None
    if choice:
        return choice
    # a question after a statement ("X has an OBE. Does Y also have one?") is the last sentence's, when
    # that sentence asks (not after an abbreviation the break rule took for an end: "The Blues Bros. Band")
    last = _SENTENCE_BREAK.split(body)[-1]
    first, _, rest = (last if _asks(last) else body).partition(" ")
    # or, with no comma, two names joined by "or" in an auxiliary-led question ("Did X sing with A or
    # B?"), or in a wh-question that compares ("Who is younger Keith Bostic or Jerry Glanville?", "Which
    # airport A or B is closer?"; not "Who directed Now or Never?", a title)
    asks_which = first.lower() in _AUX or bool(_WH.match(first) and _COMPARES.search(rest))
    pair = _NAME_OR_NAME.search(rest) if asks_which else None
    choice = _choice(pair.group(1), pair.group(2)) if pair else None
    if choice:
        return choice
    if first.lower() in _AUX and not _WH.search(rest):
        return QuestionShape("yesno", ("yes", "no"))
    return QuestionShape("open")


def content_words(text: str) -> set[str]:
    """The words of ``text`` that carry meaning (no stop words, no single letters), lower-cased."""
    return {w for w in _words(text) if w not in _STOP and len(w) > 1}


_GLOSS = re.compile(r"\([^()]*\)")
"""A gloss in parentheses (``(TEU)``): it names nothing the answer does not."""
_OFFERS_CHOICE = re.compile(r"\bor\b|\bwhich (?:one|of (?:these|those|them|the two))\b|\bbetween\b", re.I)
"""A question that names the things its answer is one of (``X or Y``, ``which of these``), whatever
:func:`question_shape` made of it."""


def echoes_question(answer: str, question: str) -> bool:
    """Whether an answer to an open question only names what the question already names (every word
    of it that carries meaning is in the question): ``Jack`` for ``What is the first name of Jack
    Binion's father?``. Such answers are almost never right (docs/benchmarks.md, "Answers that echo"). Never
    for a question that offers the things its answer is one of (``X or Y``, ``which of these``)."""
    words = content_words(_GLOSS.sub(" ", answer))
    return bool(words) and words <= content_words(question) and not _OFFERS_CHOICE.search(question)


def rank_sources(
    evidence: Sequence[Evidence], question: str, notes: Sequence[str], limit: int
) -> list[Evidence]:
    """The ``limit`` sources that share the most words with the question and the run's notes.

    A word of the question counts twice (it names what is asked), a word only the notes name (a bridge
    entity a think step found) once, and a match in the title counts as much again. Ties keep the
    search's own order. The result is in citation order.
    """
    asked = content_words(question)
    noted = content_words(" ".join(notes)) - asked

    def score(e: Evidence) -> float:
        text, title = content_words(e["text"]), content_words(e["title"])
        return sum(2.0 * ((w in text) + (w in title)) for w in asked) + sum(
            (w in text) + (w in title) for w in noted
        )

    ranked = sorted(evidence, key=lambda e: (-score(e), e["rank"], e["n"]))
    return sorted(ranked[:limit], key=lambda e: e["n"])


def sentences(text: str) -> list[str]:
    """Split passage text into sentences (a light rule: end mark, space, capital or digit)."""
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def supporting_sentence(answer: str, passage: str, question: str = "") -> str:
    """The sentence of ``passage`` that best supports ``answer``: it contains the answer's words, and
    among those the one closest to the question. Empty when no sentence shares a word with the answer.
    """
    answer_words = set(normalize(answer).split())
    if not answer_words:
        return ""
    asked = content_words(question)
    best, best_key = "", (0.0, 0.0)
    for s in sentences(passage):
        words = set(normalize(s).split())
        hit = len(answer_words & words) / len(answer_words)
        if hit == 0:
            continue
        key = (hit + (1.0 if normalize(answer) in normalize(s) else 0.0), float(len(asked & words)))
        if key > best_key:
            best, best_key = s, key
    return best


def _f1(a: list[str], b: list[str]) -> float:
    common = sum((Counter(a) & Counter(b)).values())
    if common == 0:
        return 0.0
    p, r = common / len(a), common / len(b)
    return 2 * p * r / (p + r)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def snap_to_source(answer: str, texts: Sequence[str], question: str = "", *, min_f1: float = 0.5) -> str:
    """The answer as the source words it, when the model paraphrased or wrapped it in a sentence.

    An answer found verbatim (after normalization) in a source is kept. Otherwise the words that carry
    the answer are those not already in the question (``He played Lucas`` -> ``Lucas`` for "Which
    character did he play?"); the shortest span of a source (up to the answer's length plus two words)
    with the best token F1 against them replaces the answer if that F1 is at least ``min_f1``.
    """
    target = normalize(answer)
    if not target:
        return answer
    if any(f" {target} " in f" {normalize(t)} " for t in texts):
        return answer
    asked = {_stem(w) for w in normalize(question).split()}
    want = [_stem(w) for w in target.split() if _stem(w) not in asked and w not in _STOP]
    want = want or [_stem(w) for w in target.split()]
    best, best_f1, best_len = "", 0.0, 0
    for text in texts:
        raw = text.split()
        tokens = [_stem(normalize(w)) for w in raw]
        for i in range(len(raw)):
            if not tokens[i]:
                continue
            for j in range(i + 1, min(len(raw), i + len(target.split()) + 2) + 1):
                if not tokens[j - 1]:
                    continue
                score = _f1([t for t in tokens[i:j] if t], want)
                if score > best_f1 + 1e-9 or (score > 0 and abs(score - best_f1) < 1e-9 and j - i < best_len):
                    best, best_f1, best_len = " ".join(raw[i:j]), score, j - i
    if best_f1 >= min_f1:
        return best.strip(" ,.;:()[]\"'")
    return answer


_CLAUSE = re.compile(r",|;|\s\(|\s[–—]\s|\s(?:which|who|where|when|because|and is|and was)\s")


def trim_answer(answer: str, *, max_words: int = 5) -> str:
    """A long answer cut to its first clause: ``Leyton, East London, in 1975 by ...`` -> ``Leyton``.

    Small models often continue past the answer into the rest of the sentence; short answers are what
    the question asks for. Answers of ``max_words`` words or fewer are kept.
    """
    if len(answer.split()) <= max_words:
        return answer
    head = _CLAUSE.split(answer, maxsplit=1)[0].strip(" .")
    return head if head else answer


def unecho(answer: str, question: str, *, max_words: int = 5) -> str:
    """A sentence answer that restates the question cut to what it adds: ``The state where Pocahontas
    Mounds is located became part of the United States in 1817.`` -> ``1817``.

    Small models often answer in a sentence that begins with the question's own words, and the answer is
    at its end, where :func:`trim_answer`'s first clause does not reach. An answer of more than
    ``max_words`` words that shares at least two words that carry meaning with the question becomes one
    run of the words the question does not have (stop words may join them; a comma or full stop ends a
    run; a gloss in parentheses adds nothing): the first run that holds a name or a number, else the last
    (the verb a restatement adds comes before its object). An answer that adds no such word is kept as
    it is.
    """
    tokens = _GLOSS.sub(" ", answer).split()
    asked = content_words(question)
    if len(tokens) <= max_words or len(content_words(answer) & asked) < 2:
        return answer

    def adds(token: str) -> bool:
        return any(w not in asked and w not in _STOP and len(w) > 1 for w in _words(token))

    runs: list[list[str]] = []
    current: list[str] = []
    pending: list[str] = []  # stop words that join two added words
    for token in tokens:
        if adds(token):
            current += [*pending, token] if current else [token]
            pending = []
        elif current and all(w in _STOP for w in _words(token)):
            pending.append(token)
        else:
            if current:
                runs.append(current)
            current, pending = [], []
        if current and token.rstrip()[-1:] in ",;.":  # a clause ends here
            runs.append(current)
            current, pending = [], []
    if current:
        runs.append(current)
    if not runs:
        return answer
    named = [r for r in runs if any(t.lstrip("\"'(")[:1].isupper() or t[:1].isdigit() for t in r)]
    return " ".join(named[0] if named else runs[-1]).strip(" ,.;:()[]\"'")


def snap_to_option(answer: str, shape: QuestionShape) -> str:
    """For yes/no and either-or questions, the option the answer names (the answer itself if none)."""
    if shape.kind == "open":
        return answer
    a = normalize(answer)
    if shape.kind == "yesno":
        first = a.split(" ", 1)[0] if a else ""
        return first if first in ("yes", "no") else answer
    scores = [(_f1(a.split(), normalize(o).split()) if a else 0.0, o) for o in shape.options]
    score, option = max(scores)
    return option if score > 0 else answer


_NUMBER = re.compile(r"\d[\d,.]*")


def _name(particles: str) -> str:
    """A pattern for a capitalised name whose parts these lower-case particles may join."""
    return rf"\b[A-Z][\w'’.-]*(?:\s+(?:{particles})?\s*[A-Z][\w'’.-]*)*"


_NAMED = re.compile(_name("of|the|de|von|van"))
_QUOTED = r"[\"“][^\"”]+[\"”]"


def claim_support(claim: str, passage: str) -> float:
    """How well ``passage`` supports ``claim``: the share of the claim's content words (stemmed) that
    the passage contains, or 0 when a number of the claim is missing from the passage."""
    text = normalize(passage)
    for number in _NUMBER.findall(claim):
        digits = normalize(number).replace(" ", "")
        if digits and digits not in text.replace(" ", ""):
            return 0.0
    words = {_stem(w) for w in normalize(claim).split() if w not in _STOP and not w.isdigit()}
    if not words:
        return 0.0
    have = {_stem(w) for w in text.split()}
    return len(words & have) / len(words)


def supported(claim: str, passage: str, *, threshold: float = 0.75) -> bool:
    """The claim's content words and numbers are (almost) all in the passage."""
    return claim_support(claim, passage) >= threshold


def named_phrases(question: str) -> list[str]:
    """Capitalized phrases of the question after its first word (the names it asks about)."""
    body = question.strip()
    first = body.split(" ", 1)
    rest = first[1] if len(first) > 1 else ""
    return [m.group(0).strip(" .'’") for m in _NAMED.finditer(rest) if len(m.group(0).strip()) > 1]


def uncovered_names(question: str, texts: Sequence[str]) -> list[str]:
    """The question's names that no source mentions (empty: every name is covered)."""
    corpus = " " + " ".join(normalize(t) for t in texts) + " "
    return [n for n in named_phrases(question) if normalize(n) and f" {normalize(n)} " not in corpus]


_PAIR = re.compile(
    r"^(?:is|are|was|were|do|does|did|have|has|had)\s+(?:both\s+)?(?:the\s+)?(?P<rest>.+)$", re.IGNORECASE
)


def compared_entities(question: str, shape: QuestionShape) -> tuple[str, str] | None:
    """The two things a comparison question compares: the options of an either-or question, or the
    two names joined by "and" in a yes/no question (``Are X and Y both American?``); None otherwise."""
    if shape.kind == "choice" and len(shape.options) == 2:
        return shape.options[0], shape.options[1]
    if shape.kind != "yesno":
        return None
    m = _PAIR.match(" ".join(question.strip().rstrip("?").split()))
    left, sep, right = m.group("rest").partition(" and ") if m else ("", "", "")
    if not sep:
        return None
    firsts = _NAMED_OR_QUOTED.findall(left)
    right = right.strip()
    if " both " in f" {right} ":
        second = f" {right} ".split(" both ", 1)[0]
    else:
        found = _NAMED_OR_QUOTED.match(right)
        second = found.group(0) if found else ""
    a, b = (_strip_option(firsts[-1]) if firsts else ""), _strip_option(second)
    if not a or not b or (not b[0].isupper() and not b[0].isdigit()) or len(b.split()) > 8:
        return None
    return a, b


_NAMED_OR_QUOTED = re.compile(f"{_QUOTED}|{_NAMED.pattern}")
_OPTION = f"{_QUOTED}|" + _name("of|the|de|von|van|ul|al|el|bin|ibn|da|di|del|du|la|le|der|den|dos|das")
"""A quoted title, or a name whose parts may be joined by a lower-case particle (``Mahbub ul Haq``)."""
_NAME_OR_NAME = re.compile(rf"({_OPTION})\s+or\s+({_OPTION})(?![\w'’.-])")
"""Two names (or quoted titles) joined by "or"."""


def entity_sources(evidence: Sequence[Evidence], entity: str, limit: int = 2) -> list[Evidence]:
    """The sources about ``entity``: its name in the title first, then in the text (search order
    breaks ties); at most ``limit``, none when no source names it."""
    name = normalize(entity)
    words = content_words(entity)

    def score(e: Evidence) -> float:
        title, text = normalize(e["title"]), f" {normalize(e['text'])} "
        exact = 4.0 * (title == name) + 2.0 * (f" {name} " in f" {title} ") + 1.0 * (f" {name} " in text)
        overlap = len(words & content_words(e["title"])) / max(1, len(words))
        return exact + overlap

    scored = [(score(e), e["rank"], e["n"], e) for e in evidence]
    return [e for s, _, _, e in sorted(scored, key=lambda x: (-x[0], x[1], x[2])) if s > 0.5][:limit]


_EARLIER = re.compile(r"\b(?:first|earlier|earliest|older|oldest|before)\b", re.IGNORECASE)
_LATER = re.compile(
    r"\b(?:later|latest|younger|youngest|more recent(?:ly)?|most recent(?:ly)?|last)\b", re.IGNORECASE
)
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")


def date_order(question: str) -> Literal["earlier", "later"] | None:
    """Whether an either-or question asks for the earlier or the later of two dates (``born first``,
    ``older``, ``more recent``); None when it compares anything else."""
    earlier, later = bool(_EARLIER.search(question)), bool(_LATER.search(question))
    if earlier == later:
        return None
    return "earlier" if earlier else "later"


def first_year(text: str) -> int | None:
    """The first year (1000-2099) written in ``text``."""
    m = _YEAR.search(text)
    return int(m.group(1)) if m else None


def pick_by_date(question: str, options: tuple[str, str], facts: tuple[str, str]) -> str | None:
    """The option whose fact dates it as the question asks (earlier or later); None when the question
    is no date comparison or the facts do not give two different years."""
    order = date_order(question)
    years = (first_year(facts[0]), first_year(facts[1]))
    if order is None or years[0] is None or years[1] is None or years[0] == years[1]:
        return None
    first, second = options if years[0] < years[1] else (options[1], options[0])
    return first if order == "earlier" else second


_SAME = re.compile(r"\bsame\s+(?P<attr>[\w' -]+?)\s*[?.]?\s*$", re.IGNORECASE)


def same_attribute(question: str) -> str | None:
    """What a yes/no question asks two things to share (``... in the same province?`` -> ``province``),
    or None when it asks no such thing."""
    m = _SAME.search(" ".join(question.split()))
    if not m:
        return None
    words = m.group("attr").split()
    return " ".join(words[:4]) if words else None


def values_agree(a: str, b: str) -> bool | None:
    """Whether two values of the same attribute name the same thing (one may qualify the other:
    ``Jiangsu`` and ``Jiangsu province``); None when either is missing or unknown."""
    x, y = normalize(a), normalize(b)
    if x in ("", "unknown") or y in ("", "unknown"):
        return None
    return x == y or f" {x} " in f" {y} " or f" {y} " in f" {x} "
