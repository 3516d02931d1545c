"""OTP extraction over the corpus: accuracy per language and per sender kind, and messages per
second on one core.

Run from the project folder: `.venv/bin/python -m bench.otp [--seconds 3]`. No Django: it
imports only the pure `orders.otp`. The corpus has two parts (docs/OTP.md): the tuning part
the extractor was fixed against and the held-out part it never was, scored apart. The corpus
test (tests/orders/test_otp_corpus.py) scores both with the same helpers and holds the bars.
"""

import argparse
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orders.otp import extract_otp

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
TUNING = DATA / "otp_corpus.jsonl"
HELD_OUT = DATA / "otp_heldout.jsonl"
PARTS = {"tuning": TUNING, "held-out": HELD_OUT}

# Who sent the message, as a buyer orders a number for it.
KINDS = (
    "bank",
    "ewallet",
    "superapp",
    "marketplace",
    "social",
    "messaging",
    "game",
    "crypto",
    "other",
)


@dataclass(frozen=True, slots=True)
class CorpusCase:
    text: str
    sender: str | None
    expected: str | None
    lang: str
    kind: str
    source: str
    hard: bool
    tags: tuple[str, ...]
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Miss:
    case: CorpusCase
    got: str | None


@dataclass(slots=True)
class Tally:
    """Cases of one language, one sender kind or the whole part."""

    name: str
    cases: int = 0
    correct: int = 0
    no_code: int = 0
    false_codes: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.cases if self.cases else 1.0

    def add(self, expected: str | None, got: str | None) -> None:
        self.cases += 1
        self.correct += got == expected
        if expected is None:
            self.no_code += 1
            self.false_codes += got is not None


@dataclass(slots=True)
class CorpusScore:
    total: Tally = field(default_factory=lambda: Tally("all"))
    languages: dict[str, Tally] = field(default_factory=dict)
    kinds: dict[str, Tally] = field(default_factory=dict)
    misses: list[Miss] = field(default_factory=list)

    @property
    def false_code_rate(self) -> float:
        return self.total.false_codes / self.total.no_code if self.total.no_code else 0.0


def load_corpus(path: Path = TUNING) -> list[CorpusCase]:
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
                    kind=row.get("kind") or "",
                    source=row.get("source") or "",
                    hard=bool(row.get("hard")),
                    tags=tuple(row.get("tags") or ()),
                    file=path.name,
                    line=number,
                )
            )
    return cases


def score_corpus(cases: Sequence[CorpusCase]) -> CorpusScore:
    score = CorpusScore()
    # Most cases first, then by name: the tables read the same from run to run.
    for groups, counts in (
        (score.languages, Counter(case.lang for case in cases)),
        (score.kinds, Counter(case.kind for case in cases)),
    ):
        for name in sorted(counts, key=lambda name: (-counts[name], name)):
            groups[name] = Tally(name)
    for case in cases:
        got = extract_otp(case.text, case.sender)
        for tally in (score.total, score.languages[case.lang], score.kinds[case.kind]):
            tally.add(case.expected, got)
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


def accuracy_table(score: CorpusScore, *, by: str = "language") -> str:
    """The score per language (`by="language"`) or per sender kind (`by="kind"`)."""
    groups = score.languages if by == "language" else score.kinds
    heading = "language" if by == "language" else "sender kind"
    rows = [
        f"| {heading} | cases | correct | accuracy | no-code cases | codes found in them |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for tally in [*groups.values(), score.total]:
        name = "**all**" if tally is score.total else tally.name
        rows.append(
            f"| {name} | {tally.cases} | {tally.correct} | {tally.accuracy:.1%} "
            f"| {tally.no_code} | {tally.false_codes} |"
        )
    return "\n".join(rows)


def misses_list(score: CorpusScore) -> str:
    return "\n".join(
        f"- {miss.case.file}:{miss.case.line} [{miss.case.lang}] {miss.case.text!r}: "
        f"expected {miss.case.expected!r}, got {miss.got!r}"
        for miss in score.misses
    )


def part_report(part: str, score: CorpusScore) -> str:
    """One part's figures: exact accuracy, false codes, both tables and the misses."""
    total = score.total
    lines = [
        f"### {part}: {total.correct}/{total.cases} exact ({total.accuracy:.2%}), "
        f"codes found in {total.false_codes}/{total.no_code} no-code messages "
        f"({score.false_code_rate:.2%})",
        "",
        accuracy_table(score, by="language"),
        "",
        accuracy_table(score, by="kind"),
    ]
    if score.misses:
        lines += ["", "Misses:", misses_list(score)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OTP extraction accuracy and speed.")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to time (3)")
    parser.add_argument(
        "--corpus",
        type=Path,
        action="append",
        help="a JSONL corpus, may repeat (default: the tuning and the held-out parts)",
    )
    args = parser.parse_args(argv)

    paths = {path.stem: path for path in args.corpus} if args.corpus else PARTS
    parts = {part: load_corpus(path) for part, path in paths.items()}
    everything = [case for cases in parts.values() for case in cases]
    rate = messages_per_second(everything, args.seconds)
    print(f"## OTP extraction: {len(everything)} messages\n")
    print("| measure | value |\n| --- | ---: |")
    print(f"| messages per second (one core) | {rate:,.0f} |")
    print(f"| milliseconds per message | {1000 / rate:.3f} |")
    scores = {part: score_corpus(cases) for part, cases in parts.items()}
    for part, score in scores.items():
        total = score.total
        print(f"| {part}: exact accuracy | {total.accuracy:.2%} ({total.correct}/{total.cases}) |")
    for part, score in scores.items():
        print("\n" + part_report(part, score))


if __name__ == "__main__":
    main()
