"""The records bench/xref_scale.py generates: the same for a seed, duplicates planted as they are labelled, and
rows the import takes whole."""

from __future__ import annotations

import csv
import datetime
import importlib.util
import re
import sys
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from pypinyin import lazy_pinyin
from rapidfuzz.distance import Levenshtein

from entities.models import Entity
from entities.normalize import fold
from entities.validators import normalize_phone
from imports.models import ImportJob
from imports.services import run_job

from . import factories

_PATH = Path(__file__).resolve().parent.parent / "bench" / "_xref_scale_data.py"
_spec = importlib.util.spec_from_file_location("_xref_scale_data", _PATH)
assert _spec and _spec.loader
gen = importlib.util.module_from_spec(_spec)
sys.modules["_xref_scale_data"] = gen  # dataclasses look their module up
_spec.loader.exec_module(gen)

HAN = re.compile(r"[\u4e00-\u9fff]")
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
NAME_VARIATIONS = {"typo", "swap", "translit", "format", "legal_form"}


@pytest.fixture(scope="module")
def data():
    return gen.generate(3000, 3000)


def rows_by_id(data) -> dict[str, dict[str, str]]:
    return {row["source_id"]: row for row in data.persons + data.organizations}


def letters(name: str) -> list[str]:
    return sorted(fold(name).replace(" ", ""))


def test_the_same_seed_gives_the_same_rows_and_another_seed_others(data):
    again = gen.generate(3000, 3000)
    assert again.persons == data.persons and again.organizations == data.organizations
    assert again.planted == data.planted
    other = gen.generate(3000, 3000, seed=gen.SEED + 1)
    assert other.persons != data.persons and other.organizations != data.organizations
    # each kind has its own stream: the persons do not depend on how many organisations there are
    assert gen.generate(3000, 10).persons == data.persons


def test_a_tenth_of_each_kind_is_planted_once_with_its_original(data):
    for kind, rows in (("persons", data.persons), ("organizations", data.organizations)):
        pairs = [p for p in data.planted if p.kind == kind]
        assert len(pairs) == round(len(rows) * gen.DUPLICATE_SHARE) == 300
        ids = {row["source_id"] for row in rows}
        assert len(ids) == len(rows)
        assert {p.left for p in pairs} <= ids and {p.right for p in pairs} <= ids
        assert len({p.right for p in pairs}) == len(pairs)  # each duplicate copies one original
        assert not {p.left for p in pairs} & {p.right for p in pairs}
        assert all(p.variations for p in pairs)


def test_every_variation_is_planted(data):
    seen = {v for p in data.planted for v in p.variations}
    assert seen == NAME_VARIATIONS | {"missing", "date", "phone_format"}
    kinds = {(p.kind, v) for p in data.planted for v in p.variations}
    assert ("persons", "translit") in kinds and ("organizations", "translit") in kinds
    assert ("organizations", "legal_form") in kinds and ("persons", "swap") in kinds


def test_a_typo_pair_is_one_or_two_edits_apart(data):
    rows = rows_by_id(data)
    typos = [(rows[p.left]["name"], rows[p.right]["name"]) for p in data.planted
             if set(p.variations) & NAME_VARIATIONS == {"typo"}]
    distances = [Levenshtein.distance(fold(left), fold(right)) for left, right in typos]
    assert len(distances) >= 10
    assert [d for d in distances if not 1 <= d <= 2] == [], typos


def test_the_pairs_carry_the_variations_they_are_labelled_with(data):
    rows = rows_by_id(data)
    checked: dict[str, int] = dict.fromkeys(NAME_VARIATIONS | {"missing", "date", "phone_format"}, 0)
    for pair in data.planted:
        left, right = rows[pair.left], rows[pair.right]
        variations = set(pair.variations)
        if variations & NAME_VARIATIONS:
            assert left["name"] != right["name"], pair
        if variations & NAME_VARIATIONS == {"swap"}:
            assert letters(left["name"]) == letters(right["name"]), pair  # the same parts in another order
            checked["swap"] += 1
        if "translit" in variations:
            for script in (HAN, CYRILLIC):  # one side in the script, the other in Latin letters
                found = [bool(script.search(r["name"])) for r in (left, right)]
                assert found != [True, True], pair
            # (or both Latin: a Cyrillic name in two romanisations)
            if pair.kind == "persons" and HAN.search(left["name"] + right["name"]):
                assert letters(left["name"]) == letters(right["name"]), pair  # pinyin of the same Hanzi
            checked["translit"] += 1
        if "missing" in variations:
            assert any(left.get(f) and not right.get(f) for f in left if f not in ("source_id", "name")), pair
            checked["missing"] += 1
        if "date" in variations:
            assert left["birth_date"] != right["birth_date"], pair
            checked["date"] += 1
        if "phone_format" in variations:
            assert right["phones"] != left["phones"]
            assert [normalize_phone(p) for p in right["phones"].split(";")] == left["phones"].split(";"), pair
            checked["phone_format"] += 1
        evidence = gen.PERSON_EVIDENCE if pair.kind == "persons" else gen.ORGANIZATION_EVIDENCE
        if any(left.get(f) for f in evidence):  # a duplicate keeps something beyond its name to be found by
            assert any(right.get(f) for f in evidence), pair
    assert all(checked[v] >= 10 for v in ("swap", "translit", "missing", "phone_format")), checked
    assert checked["date"] >= 1


def test_the_pinyin_is_the_pinyin_of_the_hanzi():
    for table in (gen.HAN_SURNAMES, gen.HAN_GIVEN, gen.HAN_BRAND, gen.HAN_PLACES):
        for han, pinyin in table:
            assert "".join(lazy_pinyin(han)) == pinyin, han
    for han, pinyin, _english in gen.HAN_INDUSTRY:
        assert "".join(lazy_pinyin(han)) == pinyin, han


def test_contact_points_are_shared_as_real_ones_are(data):
    """Households share addresses, formation agents' addresses hold hundreds of companies (at full size): blocks
    that a frequency cap must stop."""
    addresses: dict[str, int] = {}
    for row in data.organizations:
        for text in filter(None, row.get("addresses", "").split(";")):
            addresses[text] = addresses.get(text, 0) + 1
    assert max(addresses.values()) >= 10


def test_no_birth_date_in_the_future(data):
    today = datetime.date.today().isoformat()
    assert all(row.get("birth_date", "") <= today for row in data.persons)


@pytest.mark.django_db
def test_the_rows_import_whole(tmp_path):
    small = gen.generate(400, 400)
    persons, organizations = small.write(tmp_path)
    with persons.open(encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == gen.PERSON_COLUMNS
    agency = factories.agency("GEN", "Generated")
    for path, kind, count in ((persons, "persons", 400), (organizations, "organizations", 400)):
        job = ImportJob(agency=agency, kind=kind, source="gen")
        job.file.save(path.name, ContentFile(path.read_bytes()), save=False)
        job.save()
        job = run_job(job.pk)
        assert (job.status, job.created, job.failed_rows) == ("succeeded", count, 0), job.error
    assert Entity.objects.filter(agency=agency).count() == 800
    han = Entity.objects.filter(agency=agency, name__regex=r"[\u4e00-\u9fff]")
    assert han.exists() and all(" " in e.search_text or "\n" in e.search_text for e in han)
    assert Entity.objects.filter(agency=agency, type="organization").exclude(registration_number="").exists()
    assert Entity.objects.filter(agency=agency, type="person").exclude(phones=[]).exists()
