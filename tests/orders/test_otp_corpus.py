"""The whole OTP corpus (tests/data/otp_corpus.jsonl) against extract_otp, with the issue's bars.

Run with -s to see the per-language table. How to add a case: docs/OTP.md.
"""

import re
from collections import Counter

import pytest

from bench.otp import CorpusCase, CorpusScore, accuracy_table, load_corpus, score_corpus

MIN_ACCURACY = 0.99
MIN_LANGUAGE_ACCURACY = 0.98
LANGUAGE_BAR_FROM = 20  # cases; below that one miss swings the figure too far to judge by
MAX_FALSE_CODE_RATE = 0.01

MIN_CASES = 300
MIN_PER_MAIN_LANGUAGE = 100  # Indonesian and English each
MIN_OTHER_LANGUAGES = 8
MIN_PER_OTHER_LANGUAGE = 8
MIN_HARD = 80
MIN_NO_CODE = 60

# What an expected code may look like: separators already removed, as extract_otp returns it.
_EXPECTED_RE = re.compile(r"[0-9A-Z]{4,8}")


@pytest.fixture(scope="module")
def corpus() -> list[CorpusCase]:
    return load_corpus()


@pytest.fixture(scope="module")
def score(corpus: list[CorpusCase]) -> CorpusScore:
    return score_corpus(corpus)


def test_corpus_has_the_size_and_spread_the_issue_asks_for(corpus: list[CorpusCase]) -> None:
    languages = Counter(case.lang for case in corpus)
    others = {lang: n for lang, n in languages.items() if lang not in ("id", "en")}
    assert len(corpus) >= MIN_CASES
    assert languages["id"] >= MIN_PER_MAIN_LANGUAGE
    assert languages["en"] >= MIN_PER_MAIN_LANGUAGE
    assert sum(n >= MIN_PER_OTHER_LANGUAGE for n in others.values()) >= MIN_OTHER_LANGUAGES, others
    assert sum(case.hard for case in corpus) >= MIN_HARD
    assert sum(case.expected is None for case in corpus) >= MIN_NO_CODE


def test_every_corpus_line_is_well_formed(corpus: list[CorpusCase]) -> None:
    problems = []
    for case in corpus:
        if not case.source.strip():
            problems.append(f"line {case.line}: no source")
        if case.expected is not None and not _EXPECTED_RE.fullmatch(case.expected):
            problems.append(f"line {case.line}: expected {case.expected!r} is not a bare code")
        if not case.text.strip():
            problems.append(f"line {case.line}: empty text")
    duplicates = [text for text, n in Counter(c.text for c in corpus).items() if n > 1]
    problems += [f"duplicate text: {text!r}" for text in duplicates]
    assert not problems, "\n".join(problems)


def test_corpus_accuracy_holds_overall_and_in_every_large_language(score: CorpusScore) -> None:
    total = score.total
    print(f"\n\nOTP corpus: {total.correct}/{total.cases} exact ({total.accuracy:.2%})")
    print(accuracy_table(score))
    failures = []
    if total.accuracy < MIN_ACCURACY:
        failures.append(f"overall accuracy {total.accuracy:.2%} is below {MIN_ACCURACY:.0%}")
    failures += [
        f"{language.lang}: accuracy {language.accuracy:.2%} is below {MIN_LANGUAGE_ACCURACY:.0%}"
        for language in score.languages.values()
        if language.cases >= LANGUAGE_BAR_FROM and language.accuracy < MIN_LANGUAGE_ACCURACY
    ]
    if score.misses:
        print("Misses:\n" + _misses(score))
    assert not failures, "\n".join([*failures, _misses(score)])


def test_messages_without_a_code_almost_never_yield_one(score: CorpusScore) -> None:
    total = score.total
    assert score.false_code_rate <= MAX_FALSE_CODE_RATE, (
        f"{total.false_codes} of {total.no_code} no-code messages gave a code:\n"
        + _misses(score, no_code_only=True)
    )


def _misses(score: CorpusScore, *, no_code_only: bool = False) -> str:
    return "\n".join(
        f"  line {miss.case.line} [{miss.case.lang}] {miss.case.text!r}\n"
        f"    expected {miss.case.expected!r}, got {miss.got!r}"
        for miss in score.misses
        if not no_code_only or miss.case.expected is None
    )
