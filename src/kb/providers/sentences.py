"""Text handling for the extractive answerer: sentences, terms, and what kind of words
answer a question.

English only, on purpose: the rules are small and predictable, and a question in another
language still gets the embedding half of the relevance score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_WORD = re.compile(r"\w+")
# A sentence ends at . ! ? followed by space and something that can start a sentence; a
# blank line or a list item also ends one, and so does a period before a code name
# ("... them. time.sleep() delays"). "e.g. this" and "3.5 cm" do not split.
_SPLIT = re.compile(
    r"(?<=[.!?])[\"')\]*_]*\s+(?=[\"'(\[*_]*[A-Z0-9]|[a-z_]\w*[.(]\w)|\n\s*\n|\n(?=\s*(?:[-*•]|\d{1,2}[.)])\s)"
)
_ABBREVIATION = re.compile(r"\b(?:e\.g|i\.e|etc|vs|cf|approx|Dr|Mr|Mrs|Ms|St|No|Fig)\.$", re.IGNORECASE)
_LIST_NUMBER = re.compile(r"\d{1,2}[.)]")  # "1. **Eggs.**" splits after "1."; the number goes
_MARKUP = re.compile(r"\*\*|__|`|^\s*(?:[-*•]|\d{1,2}[.)])\s+|^#+\s*")
_FLUFF = re.compile(
    r"^(?:however|moreover|furthermore|in addition|additionally|also|so|thus|therefore|"
    r"in fact|of course|basically|generally|in general|note that|remember that|finally|then|"
    r"and|but|now)\b,?\s+",
    re.IGNORECASE,
)
# A sentence that starts like this leans on the one before it.
BACK_REFERENCE = re.compile(
    r"^(?:it|its|this|that|these|those|they|their|them|he|she|his|her|such|both|the latter|"
    r"the former|here|there)\b",
    re.IGNORECASE,
)


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP = _set(
    """a an the of to in on at for and or but is are was were be been being do does did done
    have has had how what when where which who whom whose why can could should would will
    shall may might must i you he she it we they me my your our its their his her them this
    that these those there here with from by as about into onto than then so if not no yes
    any some many much more most very also just only such each every all both either
    neither one's get gets got tell explain describe called call name named kind type
    please give list mean means"""
)

MONTHS = _set(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
)
SEASONS = _set("spring summer autumn fall winter midwinter midsummer season seasons")
TIMES_OF_DAY = _set("morning afternoon evening night noon midnight dawn dusk daytime overnight")
NUMBER_WORDS = _set(
    """zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty
    ninety hundred thousand million billion dozen half quarter twice once double"""
)
LENGTH = _set(
    """mm millimetre millimetres millimeter millimeters cm centimetre centimetres centimeter
    centimeters metre metres meter meters m km kilometre kilometres kilometer kilometers inch
    inches foot feet ft mile miles micron microns"""
)
WEIGHT = _set("g gram grams kg kilogram kilograms pound pounds lb lbs tonne tonnes ton tons ounce ounces oz")
VOLUME = _set("ml litre litres liter liters l cup cups tablespoon tablespoons teaspoon teaspoons gallon gallons")
TEMPERATURE = _set("degree degrees c f celsius fahrenheit")
DURATION = _set("second seconds minute minutes hour hours day days week weeks month months year years decade decades")
PERCENT = _set("percent per cent")
UNITS = LENGTH | WEIGHT | VOLUME | TEMPERATURE | DURATION | PERCENT | _set("byte bytes kb mb gb")
# What a "how wide" or "what temperature" question measures, by the word that asks it.
_MEASURES = {
    **dict.fromkeys(["wide", "width", "far", "distance", "tall", "high", "height", "deep", "depth", "thick"], LENGTH),
    **dict.fromkeys(["big", "large", "size"], LENGTH | VOLUME | WEIGHT),
    **dict.fromkeys(["heavy", "weight"], WEIGHT),
    **dict.fromkeys(["hot", "cold", "warm", "temperature"], TEMPERATURE),
    **dict.fromkeys(["old", "age", "often"], DURATION),
    "long": LENGTH | DURATION,
    **dict.fromkeys(["percentage", "proportion", "share"], PERCENT),
}
CAUSAL = ("because", "so that", "since", "due to", "in order to", "to prevent", "otherwise", "or else", "as a result")
PLACE = re.compile(
    r"\b(?:in|at|on|under|above|below|behind|inside|outside|near|beside|between|into|from)\s+"
    r"(?:the|a|an|its|their|his|her)?\s*\w+",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(?:1[0-9]{3}|20[0-9]{2})\b")
_CLOCK = re.compile(r"\b\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|o'clock)\b|\b\d{1,2}:\d{2}\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d")
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*")


@dataclass
class Sentence:
    passage: int  # 1-based number of the passage, as cited
    index: int  # position in its passage
    text: str


def split_sentences(text: str) -> list[str]:
    """The passage's sentences, markup and line wrapping removed."""
    pieces: list[str] = []
    for raw in _SPLIT.split(text):
        piece = " ".join(_MARKUP.sub("", line) for line in raw.splitlines())
        piece = " ".join(piece.split())
        if not piece or _LIST_NUMBER.fullmatch(piece):
            continue
        if pieces and _ABBREVIATION.search(pieces[-1]):
            pieces[-1] = f"{pieces[-1]} {piece}"
        else:
            pieces.append(piece)
    return pieces


def trim(sentence: str) -> str:
    """Without leading discourse words ("However, ", "Also ")."""
    cut = _FLUFF.sub("", sentence, count=1)
    if cut is sentence or len(cut) < 2:
        return sentence
    return cut[0].upper() + cut[1:]


# Irregular forms questions and answers often mix ("fed" / "feed").
_IRREGULAR = {
    "fed": "feed", "caught": "catch", "laid": "lay", "kept": "keep", "built": "build", "left": "leave",
    "found": "find", "made": "make", "taken": "take", "took": "take", "given": "give", "gave": "give",
    "held": "hold", "brought": "bring", "bought": "buy", "grew": "grow", "grown": "grow", "known": "know",
    "knew": "know", "chosen": "choose", "written": "write", "wrote": "write", "sold": "sell", "told": "tell",
    "thought": "think", "began": "begin", "begun": "begin", "ran": "run", "won": "win", "lost": "lose",
    "paid": "pay", "said": "say", "sent": "send", "spent": "spend", "stood": "stand", "led": "lead",
    "men": "man", "women": "woman", "children": "child", "mice": "mouse", "feet": "foot", "teeth": "tooth",
    "larvae": "larva", "pupae": "pupa",
}  # fmt: skip


@lru_cache(maxsize=16384)
def stem(word: str) -> str:
    """A light English stemmer, enough to match "hives"/"hive", "colonies"/"colony",
    "swarming"/"swarm" and "capped"/"cap"; not a linguistic one."""
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    w = _IRREGULAR.get(w, w)
    if len(w) <= 3 or not w.isalpha():
        return w
    if w.endswith(("ies", "ied")) and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("sses"):
        w = w[:-2]
    elif w.endswith(("able", "ible")) and len(w) > 6:
        w = w[:-4]  # readable -> read, hashable -> hash
    elif w.endswith("ing") and len(w) > 5:
        w = w[:-3]
    elif (w.endswith("ed") and len(w) > 4) or (w.endswith("ly") and len(w) > 5):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        w = w[:-1]  # capp -> cap, runn -> run
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]  # hive/hives/hived all become "hiv"
    return w


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def terms(text: str) -> list[str]:
    """Stemmed content words, in order, repeats kept."""
    return [stem(w) for w in words(text) if w not in STOP and (len(w) > 1 or w.isdigit())]


def answer_kind(question: str) -> str | None:
    """What kind of words answer the question: time, number, name, place, reason,
    definition; None when the question's form does not say."""
    q = " ".join(words(question))
    if re.search(r"\b(how (many|much|long|far|old|big|large|wide|tall|high|deep|heavy|often|hot|cold|warm)"
                 r"|what (percentage|proportion|ratio|temperature|size|number|amount|age|weight|length|width)"
                 r"|(above|below|at|to) what (temperature|size|age)|how \w+ (is|are) it)\b", q):  # fmt: skip
        return "number"
    if re.search(r"\b(when|what (year|month|day|season|date|time)|which (year|month|day|season|date))\b", q):
        return "time"
    if re.search(r"\b(who|whom|whose|which person|what person)\b", q):
        return "name"
    if re.search(r"\b(where|which place|what place)\b", q):
        return "place"
    if re.search(r"\bwhy\b", q):
        return "reason"
    if (
        re.match(r"(what|who) (is|are|was|were) (an? |the )?\w+( \w+)?$", q)
        or q.startswith("define ")
        or bool(re.match(r"what does .* mean$", q))
    ):
        return "definition"
    return None


def answer_strength(kind: str, sentence: str, question: str) -> float:
    """How surely the sentence holds words of that kind which the question does not: 1 when
    it does, 0.5 for a bare number where the question asks for a measure ("how wide" and
    the sentence has a year but no length), 0 when it does not."""
    question_words = set(words(question))
    new = [w for w in words(sentence) if w not in question_words]
    if kind == "number":
        units = set().union(*(_MEASURES.get(w, frozenset()) for w in question_words))
        has_number = any(_NUMBER.search(w) or w in NUMBER_WORDS for w in new)
        if not units:
            return 1.0 if has_number or any(w in UNITS for w in new) else 0.0
        if any(w in units for w in new) or (units >= PERCENT and "%" in sentence):
            return 1.0
        return 0.5 if has_number else 0.0
    return 1.0 if _has_answer_words(kind, sentence, new) else 0.0


def _has_answer_words(kind: str, sentence: str, new: list[str]) -> bool:
    if kind == "time":
        return (
            any(w in MONTHS or w in SEASONS or w in TIMES_OF_DAY for w in new)
            or any(_YEAR.search(w) for w in new)
            or bool(_CLOCK.search(sentence))
            or (any(w in UNITS for w in new) and any(_NUMBER.search(w) or w in NUMBER_WORDS for w in new))
        )
    if kind == "name":
        return any(m.group(0).lower().split()[0] in new for m in _NAME.finditer(sentence))
    if kind == "place":
        return any(m.group(0).lower().split()[-1] in new for m in PLACE.finditer(sentence))
    if kind == "reason":
        lowered = sentence.lower()
        return any(cue in lowered for cue in CAUSAL) or ":" in sentence
    return False


def defines(sentence: str, subject: list[str]) -> bool:
    """Whether the sentence reads "<subject> is/are/means ..." for the question's subject."""
    stems = [stem(w) for w in words(sentence)[:12]]
    for verb in ("is", "are", "mean", "refer", "describ"):
        if verb in stems:
            before = set(stems[: stems.index(verb)])
            return bool(subject) and all(t in before for t in subject)
    return False
