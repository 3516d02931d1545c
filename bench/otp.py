"""OTP extraction over the corpus: accuracy per language and messages per second, one core.

Run from the project folder: `.venv/bin/python -m bench.otp [--seconds 3]`. No Django: it
imports only the pure `orders.otp`. The corpus test (tests/orders/test_otp_corpus.py) scores
the same corpus with the same helpers and holds the thresholds.
"""

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orders.otp import extract_otp

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "otp_corpus.jsonl"


@dataclass(frozen=True, slots=True)
class CorpusCase:
    text: str
    sender: str | None
    expected: str | None
    lang: str
    source: str
    hard: bool
    tags: tuple[str, ...]
    line: int


@dataclass(frozen=True, slots=True)
class Miss:
    case: CorpusCase
    got: str | None


@dataclass(slots=True)
class LanguageScore:
    lang: str
    cases: int = 0
    correct: int = 0
    no_code: int = 0
    false_codes: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.cases if self.cases else 1.0


@dataclass(slots=True)
class CorpusScore:
    languages: dict[str, LanguageScore] = field(default_factory=dict)
    misses: list[Miss] = field(default_factory=list)

    @property
    def total(self) -> LanguageScore:
        total = LanguageScore("all")
        for score in self.languages.values():
            total.cases += score.cases
            total.correct += score.correct
            total.no_code += score.no_code
            total.false_codes += score.false_codes
        return total

    @property
    def false_code_rate(self) -> float:
        total = self.total
        return total.false_codes / total.no_code if total.no_code else 0.0


def load_corpus(path: Path = CORPUS) -> list[CorpusCase]:
    cases = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            cases.append(
                CorpusCase(
                    text=row["text"],
                    sender=row.get("sender"),
                    expected=row.get("expected"),
                    lang=row["lang"],
                    source=row.get("source") or "",
                    hard=bool(row.get("hard")),
                    tags=tuple(row.get("tags") or ()),
                    line=number,
                )
            )
    return cases


def score_corpus(cases: Sequence[CorpusCase]) -> CorpusScore:
    score = CorpusScore()
    by_language: defaultdict[str, list[CorpusCase]] = defaultdict(list)
    for case in cases:
        by_language[case.lang].append(case)
    # Most cases first, then by name: the table reads the same from run to run.
    for lang in sorted(by_language, key=lambda lang: (-len(by_language[lang]), lang)):
        language = score.languages[lang] = LanguageScore(lang)
        for case in by_language[lang]:
            got = extract_otp(case.text, case.sender)
            language.cases += 1
            language.correct += got == case.expected
            if case.expected is None:
                language.no_code += 1
                language.false_codes += got is not None
            if got != case.expected:
                score.misses.append(Miss(case, got))
    return score


def messages_per_second(cases: Sequence[CorpusCase], seconds: float = 3.0) -> float:
    """Extract from the whole corpus again and again for about `seconds`, in this process."""
    messages = [(case.text, case.sender) for case in cases]
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for text, sender in messages:
            extract_otp(text, sender)
        done += len(messages)
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - started)


def accuracy_table(score: CorpusScore) -> str:
    rows = [
        "| language | cases | correct | accuracy | no-code cases | codes found in them |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for language in [*score.languages.values(), score.total]:
        name = "**all**" if language.lang == "all" else language.lang
        rows.append(
            f"| {name} | {language.cases} | {language.correct} | {language.accuracy:.1%} "
            f"| {language.no_code} | {language.false_codes} |"
        )
    return "\n".join(rows)


def misses_list(score: CorpusScore) -> str:
    return "\n".join(
        f"- line {miss.case.line} [{miss.case.lang}] {miss.case.text!r}: "
        f"expected {miss.case.expected!r}, got {miss.got!r}"
        for miss in score.misses
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OTP extraction accuracy and speed.")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to time (3)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="a JSONL corpus")
    args = parser.parse_args(argv)

    cases = load_corpus(args.corpus)
    score = score_corpus(cases)
    rate = messages_per_second(cases, args.seconds)
    total = score.total
    print(f"## OTP extraction: {len(cases)} messages from {args.corpus.name}\n")
    print("| measure | value |\n| --- | ---: |")
    print(f"| messages per second (one core) | {rate:,.0f} |")
    print(f"| milliseconds per message | {1000 / rate:.3f} |")
    print(f"| exact accuracy | {total.accuracy:.2%} ({total.correct}/{total.cases}) |")
    print(
        f"| codes found in no-code messages | {score.false_code_rate:.2%} "
        f"({total.false_codes}/{total.no_code}) |\n"
    )
    print(accuracy_table(score))
    if score.misses:
        print("\nMisses:\n" + misses_list(score))


if __name__ == "__main__":
    main()
