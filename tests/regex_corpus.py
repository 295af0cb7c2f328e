"""Regexes for the completeness/soundness suites: curated real-world ones, the peer engines' test
regexes from ../shared/data, and seeded random ones (so the suite is not only examples we picked)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from conftest import DATA

CURATED = [
    r"\d{4}-\d{2}-\d{2}",
    r"(19|20)\d{2}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])",
    r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?",
    r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}",
    r"\+?1?[ -]?\(?\d{3}\)?[ -]?\d{3}[ -]?\d{4}",
    r"((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)",
    r"([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}",
    r"(red|green|blue|yellow|black|white)",
    r"(yes|no)",
    r"(Positive|Negative|Neutral)",
    r"[A-Z]{3}-\d{3,5}",
    r"\w{3,8}",
    r"[a-z]{2,4}( [a-z]{2,4}){0,3}",
    r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?",
    r"-?\d+",
    r"(true|false|null)",
    r"[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
    r"https?://[a-z0-9.-]+(\.[a-z]{2,6})(/[a-zA-Z0-9_.-]*)*",
    r"#[0-9a-fA-F]{6}",
    r"\$\d{1,3}(,\d{3})*(\.\d{2})?",
    r"[A-Z][a-z]+ [A-Z][a-z]+",
    r"(Mr|Mrs|Ms|Dr)\. [A-Z][a-z]+",
    r"[日本中国]{1,4}語?",
    r"(café|naïve|résumé|über)",
    r"[αβγδε]+",
    r"[😀-😏]{1,3}",
    r"[^\n]{1,20}",
    r"[^aeiou ]{2,5}",
    r".{0,10}",
    r"(?i)hello world",
    r"(?i:select) \w+ (?i:from) \w+",
    r"(ab|cd|ef){2,4}",
    r"a{3}b{0,2}c+",
    r"(a|b)*abb",
    r"(\d+,)*\d+",
    r"\[(\d+(, \d+)*)?\]",
    r'"([^"\\]|\\.)*"',
    r"\s*\w+\s*",
    r"[\w.-]+",
    r"[\d\s]+",
    r"\S+",
    r"\D{2}\W",
    r"[\u00c0-\u00ff]+",
    r"\x41\x42?\u0043",
    r"[a-c-]+",
    r"[]a]+",
    r"[\]\\]+",
    r"(?:x|y)+z?",
    r"(?P<year>\d{4})/(?P<month>\d\d)",
    r"[+-]?(\d+\.?\d*|\.\d+)",
    r"(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",
    r"(January|February|March|April|May|June|July|August|September|October|November|December) \d{1,2}, \d{4}",
    r"[A-Z]{2}\d{2} ?\d{4} ?\d{4} ?\d{4} ?\d{4} ?\d{0,2}",
    r"(\d{3}-){2}\d{4}",
    r"[1-9]\d{0,2}(\.\d{1,2})? ?(kg|g|mg)",
    r"[a-z]+(_[a-z]+)*",
    r"[A-Z][A-Za-z]*(\.[A-Z][A-Za-z]*)*",
    r"</?[a-z]+>",
    r"\(\d+(\+\d+)*\)",
    r"(0|1)+",
    r"((a|b)c)*",
    r"[ \t]+\S",
    r"(\n|\r\n)+x",
    r"\d+\.\d{2} (USD|EUR|GBP)",
    r"(north|south|east|west)(-(north|south|east|west))?",
    r"[a-z0-9]{32}",
    r"v\d+\.\d+\.\d+(-[a-z]+\.\d+)?",
    r"(SELECT|select) [a-z_]+(, [a-z_]+)* FROM [a-z_]+;",
    r"Answer: (A|B|C|D)",
    r"The answer is \d+\.",
]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open() if line.strip()]


def data_regexes() -> list[str]:
    out: list[str] = []
    out += [c["grammar"] for c in _jsonl(DATA / "xgrammar-tests" / "regex.jsonl")]
    out += [c["regex"] for c in _jsonl(DATA / "outlines-tests" / "regex_types.jsonl")]
    out += [c["regex"] for c in _jsonl(DATA / "outlines-tests" / "json_schema_to_regex.jsonl")]
    return out


_ATOMS = [*"abcxyz019", "é", "ß", "日", "😀", r"\.", r"\-", " ", r"\n"]
_CLASSES = [r"[a-c]", r"[^a-c]", r"[0-9]", r"\d", r"\w", r"\s", r"[a-zé日]", r"[^\s]", r"[α-ω]", "."]


def random_regex(rng: random.Random, depth: int = 0) -> str:
    """A random regex from literals, classes, groups, alternation and quantifiers (seeded)."""
    parts = []
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        if r < 0.45:
            item = rng.choice(_ATOMS)
        elif r < 0.75 or depth >= 2:
            item = rng.choice(_CLASSES)
        else:
            alts = [random_regex(rng, depth + 1) for _ in range(rng.randint(1, 3))]
            item = "(" + "|".join(alts) + ")"
        q = rng.random()
        if item.startswith("(") and (q >= 0.4 or any(x in item for x in "*+.") or "{" in item):
            # bounded repeats of groups blow DFAs up, and quantified groups with unbounded parts make
            # Python's backtracking re (our reference) exponentially slow: keep groups unquantified then
            q = 1.0
        if q < 0.15:
            item += "*"
        elif q < 0.3:
            item += "+"
        elif q < 0.4:
            item += "?"
        elif q < 0.5:
            lo = rng.randint(0, 3)
            item += f"{{{lo},{lo + rng.randint(0, 3)}}}"
        elif q < 0.55:
            item += f"{{{rng.randint(1, 3)}}}"
        parts.append(item)
    return "".join(parts)


def random_regexes(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [random_regex(rng) for _ in range(n)]


def all_regexes() -> list[str]:
    return list(dict.fromkeys(CURATED + data_regexes() + random_regexes(120)))
