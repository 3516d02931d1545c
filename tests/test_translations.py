"""The Indonesian catalogue is whole: every message a person reads has its translation,
none is a fuzzy guess, and the committed .mo is what the .po compiles to (the site reads
the .mo; a stale one shows English on Indonesian pages)."""

import gettext
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.utils.functional import Promise

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "id" / "LC_MESSAGES"


def entries(po: str) -> list[tuple[str, list[str], str]]:
    """(msgid, flags, every msgstr joined) of each entry but the header and obsolete ones."""

    def text(quoted: list[str]) -> str:
        return "".join(
            bytes(q.strip()[1:-1], "utf-8").decode("unicode_escape").encode("latin-1").decode()
            for q in quoted
        )

    found = []
    for block in po.strip().split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith("#~")]
        flags = [f.strip() for line in lines if line.startswith("#,") for f in line[2:].split(",")]
        fields: dict[str, list[str]] = {}
        current = ""
        for line in lines:
            if line.startswith("#"):
                continue
            match = re.match(r'^(msgid|msgid_plural|msgstr(?:\[\d+\])?|msgctxt) (".*")$', line)
            if match:
                current = match.group(1)
                fields.setdefault(current, []).append(match.group(2))
            elif line.startswith('"') and current:
                fields[current].append(line)
        if "msgid" not in fields:
            continue
        msgid = text(fields["msgid"])
        translations = [text(v) for k, v in fields.items() if k.startswith("msgstr")]
        if msgid:
            found.append((msgid, flags, "" if "" in translations else "ok"))
    return found


def test_the_parser_sees_an_empty_and_a_fuzzy_entry() -> None:
    po = (
        'msgid ""\nmsgstr "Language: id\\n"\n\n'
        'msgid "Done"\nmsgstr "Selesai"\n\n'
        'msgid "Missing"\nmsgstr ""\n\n'
        '#, fuzzy, python-format\nmsgid "Guess %(x)s"\nmsgstr "Tebak %(x)s"\n'
    )
    found = {msgid: (flags, state) for msgid, flags, state in entries(po)}
    assert found["Done"] == ([], "ok")
    assert found["Missing"][1] == ""
    assert "fuzzy" in found["Guess %(x)s"][0]


def test_every_indonesian_message_is_translated_and_none_is_fuzzy() -> None:
    po = (CATALOGUE / "django.po").read_text(encoding="utf-8")
    problems = [
        f"{'fuzzy' if 'fuzzy' in flags else 'untranslated'}: {msgid!r}"
        for msgid, flags, state in entries(po)
        if "fuzzy" in flags or not state
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="gettext's msgfmt is not installed")
def test_the_committed_mo_is_the_compiled_po(tmp_path: Path) -> None:
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(fresh), str(CATALOGUE / "django.po")], check=True)

    def catalogue(path: Path) -> dict:
        with path.open("rb") as mo:
            return dict(gettext.GNUTranslations(mo)._catalog)  # type: ignore[attr-defined]

    assert catalogue(CATALOGUE / "django.mo") == catalogue(fresh), (
        "locale/id/LC_MESSAGES/django.mo is stale: run manage.py compilemessages -l id"
    )


def test_every_field_and_choice_of_the_apps_is_named_for_translation() -> None:
    # A field without verbose_name heads the admin's columns and labels its forms in
    # English whatever the language; so does a choice or help text that is a plain str.
    plain = []
    for app in ("accounts", "billing", "modems", "orders"):
        for model in apps.get_app_config(app).get_models():
            for field in [*model._meta.fields, *model._meta.many_to_many]:
                where = f"{model.__name__}.{field.name}"
                if field.auto_created:
                    continue  # the id
                if not isinstance(field.verbose_name, Promise):
                    plain.append(f"{where} verbose_name {field.verbose_name!r}")
                if field.help_text and not isinstance(field.help_text, Promise):
                    plain.append(f"{where} help_text {field.help_text!r}")
                plain += [
                    f"{where} choice {label!r}"
                    for _value, label in field.flatchoices
                    if not isinstance(label, Promise)
                ]
    assert not plain, "\n".join(plain)
