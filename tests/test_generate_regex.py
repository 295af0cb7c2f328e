"""``constrain.generate`` on the embedded SmolLM2 with regex constraints: every output full-matches its
regex (``re.fullmatch``). Every regex here is bounded, so EOS is forced before ``max_new_tokens`` runs out:
an output that did not end by EOS would itself be a failure."""

from __future__ import annotations

import re

import pytest

from constrain.generation import generate_result

# (prompt, regex): dates, times, e-mails, phone numbers, IPs, enums, bounded repeats, Unicode
CASES = [
    ("When did Apollo 11 land on the Moon? Give the date.", r"(19|20)\d{2}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"),
    ("What time is noon in 24-hour format?", r"([01]\d|2[0-3]):[0-5]\d"),
    ("Give an example e-mail address.", r"[a-z]{1,10}(\.[a-z]{1,10})?@[a-z]{2,10}\.(com|org|net)"),
    ("Give a US phone number.", r"\(\d{3}\) \d{3}-\d{4}"),
    ("Give an international phone number.", r"\+\d{1,3} \d{2,4} \d{3,4} \d{3,4}"),
    ("What is the IP address of localhost?",
     r"((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"),
    ("Give an IPv6 address.", r"[0-9a-f]{1,4}(:[0-9a-f]{1,4}){7}"),
    ("Is the sky blue? Answer yes or no.", r"(yes|no)"),
    ("What colour is grass?", r"(red|green|blue|yellow|black|white)"),
    ("Which planet is largest?", r"(Mercury|Venus|Earth|Mars|Jupiter|Saturn|Uranus|Neptune)"),
    ("How many legs does a spider have?", r"[1-9]\d{0,2}"),
    ("What is pi to two decimals?", r"-?\d{1,3}\.\d{2}"),
    ("Name a fruit in lowercase.", r"[a-z]{3,12}"),
    ("Write a short hex colour.", r"#[0-9A-Fa-f]{6}"),
    ("Give a version number.", r"v?\d{1,2}\.\d{1,2}\.\d{1,3}"),
    ("Rate the movie from one to five stars.", r"★{1,5}☆{0,4}"),
    ("Say hello in Japanese.", r"[ぁ-んァ-ン一-龯]{1,6}"),
    ("Name a French city with an accent.", r"[A-ZÉ][a-zéèêàç]{2,12}"),
    ("Give a UUID.", r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"),
    ("Give a US zip code.", r"\d{5}(-\d{4})?"),
    ("Write an ISO timestamp.", r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"),
    ("Give a short Python identifier.", r"[A-Za-z_][A-Za-z0-9_]{0,15}"),
    ("Answer with an emoji.", r"(😀|😂|👍|🎉|❤️)"),
    ("Give three comma-separated digits.", r"\d(, \d){2}"),
]


@pytest.mark.slow
def test_every_output_fullmatches_its_regex() -> None:
    assert len(CASES) >= 20
    failures = []
    for i, (prompt, pattern) in enumerate(CASES):
        r = generate_result(prompt, pattern, seed=i, temperature=1.0, max_new_tokens=96)
        if not (r.stopped_by_eos and re.fullmatch(pattern, r.text)):
            failures.append((pattern, r.text, r.stopped_by_eos))
    assert not failures, failures
