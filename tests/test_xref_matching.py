"""The matching engine against the real database: blocking keys and caps, candidates by index, each feature's
levels, the explanation, EM and decisions, relationship evidence."""

from __future__ import annotations

import datetime
from collections import Counter

import pytest

from entities.models import Entity
from tests import factories
from xref import matching
from xref.matching import explain, features, keys, model, records, score
from xref.models import BlockKey, Match, XrefModel

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_caches():
    score.forget_caches()
    yield
    score.forget_caches()


@pytest.fixture
def agency():
    return factories.agency("XRA")


def _index(*entities: Entity) -> None:
    matching.index([e.pk for e in entities])


def _pair(a: Entity, b: Entity) -> tuple:
    return (a.pk, b.pk) if a.pk < b.pk else (b.pk, a.pk)


def _profile(**fields) -> records.Profile:
    row = {"id": fields.pop("id", "x"), "agency_id": 1, "type": fields.pop("type", "person"), "names": [],
           "birth_date": None, "nationalities": [], "jurisdiction": "", "registration_number": "",
           "identifiers": [], "identifier_numbers": [], "addresses": [], "phones": [], "emails": []}
    row.update(fields)
    return records.profile(row)


# --- keys and candidates --------------------------------------------------------------------------


def test_hanzi_pinyin_and_swapped_order_share_a_block(agency):
    hanzi = factories.person(agency, "张伟")
    latin = factories.person(agency, "Zhang Wei")
    swapped = factories.person(agency, "Wei Zhang")
    other = factories.person(agency, "Li Na")
    _index(hanzi, latin, swapped, other)
    assert "p:s:wei zhang" in set(BlockKey.objects.filter(entity=hanzi).values_list("key", flat=True))
    found = set(matching.candidates([hanzi.pk]))
    assert found == {_pair(hanzi, latin), _pair(hanzi, swapped)}


def test_legal_forms_are_dropped_and_types_block_apart(agency):
    chinese = factories.organization(agency, "Antimony Trading Co., Ltd.")
    american = factories.organization(agency, "ANTIMONY TRADING LLC")
    german = factories.organization(agency, "Antimony Trading GmbH")
    person = factories.person(agency, "Antimony Trading")
    _index(chinese, american, german, person)
    for org in (chinese, american, german):
        assert "o:s:antimony trading" in set(BlockKey.objects.filter(entity=org).values_list("key", flat=True))
    found = set(matching.candidates([chinese.pk]))
    assert found == {_pair(chinese, american), _pair(chinese, german)}  # never the person


@pytest.mark.parametrize(("a", "b"), [
    ("Jinqiao Mining Co., Ltd.", "Jinqiao Mining Youxian Gongsi"),
    ("金桥矿业有限公司", "JINQIAO KUANGYE CO LTD"),
    ("Uralsk Metals TOO", "Uralsk Metals LLP"),
    ("Bukit Timah Resources Sendirian Berhad", "Bukit Timah Resources Sdn. Bhd."),
    ("Akzo Nobel Naamloze Vennootschap", "AKZO NOBEL N.V."),
])
def test_legal_forms_in_many_languages(a, b):
    left, right = _profile(type="organization", name=a), _profile(type="organization", name=b)
    assert features.compare_name(left, right, features.Context())[0] == 6  # the same name once the form is gone
    assert keys.keys(left) & keys.keys(right)


def test_contact_points_identifiers_address_and_birth_year_are_keys(agency):
    p = factories.person(agency, "Wang Jie", birth_date=datetime.date(1980, 5, 6), phones=["+8613800138000"],
                         emails=["Wang.Jie@Example.com"], identifiers=[{"scheme": "passport", "number": "E1234567"}],
                         addresses=[{"text": "12 Jinqiao Road, Shenzhen 518000", "country": "CN"}])
    _index(p)
    got = set(BlockKey.objects.filter(entity=p).values_list("key", flat=True))
    assert any(k.startswith("p:m:") for k in got)
    assert {"p:t:+8613800138000", "p:e:wang.jie@example.com", "p:i:E1234567", "p:y:1980:wang",
            "p:a:518000:jinqiao", "p:a:12:jinqiao", "p:n:wang", "p:s:jie wang"} <= got


def test_a_key_over_the_cap_is_no_block(agency, settings):
    settings.XREF_BLOCK_MAX_SIZE = 5
    namesakes = [factories.person(agency, f"{given} Okonkwo") for given in
                 ("Ada", "Bola", "Chidi", "Dayo", "Emeka", "Femi")]
    twin = factories.person(agency, "Ada Okonkwo", phones=["+2348031234567"])
    _index(*namesakes, twin)
    keys.forget_caps(agency.pk)
    found = set(matching.candidates([namesakes[1].pk]))
    assert found == set()  # "okonkwo" is held by 7 > 5 records: not a block, nothing else shared
    assert set(matching.candidates([twin.pk])) == {_pair(namesakes[0], twin)}  # the rarer keys still are
    settings.XREF_BLOCK_MAX_SIZE = 10
    keys.forget_caps(agency.pk)
    assert len(matching.candidates([namesakes[1].pk])) == 6


def test_the_pair_budget_caps_blocks(agency, settings):
    people = [factories.person(agency, f"Person{i} Common") for i in range(12)]
    _index(*people)
    settings.XREF_PAIR_BUDGET = 10  # 66 pairs in the "common" block: over budget
    assert keys.compute_block_cap(agency.pk) < 12
    settings.XREF_PAIR_BUDGET = 1000
    assert keys.compute_block_cap(agency.pk) >= 12


def test_candidates_are_index_lookups_across_agencies(agency, django_assert_max_num_queries):
    other_agency = factories.agency("XRB")
    mine = factories.person(agency, "Viktor Bout", birth_date=datetime.date(1967, 1, 13))
    theirs = factories.person(other_agency, "Victor But", birth_date=datetime.date(1967, 1, 13))
    _index(mine, theirs)
    keys.block_cap(agency.pk)
    keys.block_cap(other_agency.pk)
    with django_assert_max_num_queries(4):
        found = matching.candidates([mine.pk])
    assert found == [_pair(mine, theirs)]


def test_full_candidates_split_into_disjoint_parts(agency):
    other_agency = factories.agency("XRB")
    people = [factories.person(agency, f"Lena {s}") for s in ("Moroz", "Morozova", "Moros", "Frost")]
    outsider = factories.person(other_agency, "Lena Moroz")
    unrelated = factories.person(other_agency, "Lena Moroz Jr")
    _index(*people, outsider, unrelated)
    whole = list(matching.full_candidates(agency.pk, 0, 1))
    parts = [p for part in range(3) for p in matching.full_candidates(agency.pk, part, 3)]
    assert sorted(parts) == sorted(whole) and len(parts) == len(set(parts))
    assert _pair(people[0], outsider) in whole
    assert _pair(outsider, unrelated) not in whole  # neither side is the agency's


def test_indexing_again_writes_only_the_keys_that_changed(agency):
    p = factories.person(agency, "Lena Moroz", phones=["+74951234567"])
    _index(p)
    before = dict(BlockKey.objects.filter(entity=p).values_list("key", "id"))
    _index(p)
    assert dict(BlockKey.objects.filter(entity=p).values_list("key", "id")) == before  # the same rows, unwritten
    Entity.objects.filter(pk=p.pk).update(phones=["+74957654321"])
    _index(p)
    after = dict(BlockKey.objects.filter(entity=p).values_list("key", "id"))
    assert set(after) == (set(before) - {"p:t:+74951234567"}) | {"p:t:+74957654321"}
    assert {k: v for k, v in after.items() if k in before} == {k: v for k, v in before.items() if k in after}


def test_training_takes_whole_parts_until_it_has_enough_pairs(agency, monkeypatch):
    people = [factories.person(agency, f"Lena {s} {n}") for s in ("Moroz", "Morozova") for n in range(12)]
    _index(*people)
    whole = set(matching.full_candidates(agency.pk, 0, 1))
    groups = score._training_pairs(agency.pk)
    assert sorted(p for g in groups for p in g) == sorted(whole)  # few pairs: all of them
    monkeypatch.setattr(score, "TRAIN_PAIRS", len(whole) // 3)
    groups = score._training_pairs(agency.pk)
    taken = [p for g in groups for p in g]
    assert len(taken) == len(set(taken)) == len(whole) // 3 and set(taken) <= whole
    assert score._training_pairs(agency.pk) == groups  # deterministic


def test_pinned_records_score_as_loaded_ones(agency):
    a = factories.person(agency, "Wei Zhang", birth_date=datetime.date(1975, 3, 2), phones=["+8613800138000"])
    b = factories.person(agency, "张伟", birth_date=datetime.date(1975, 3, 2), phones=["+8613800138000"])
    c = factories.person(agency, "Wei Zhang", birth_date=datetime.date(1990, 8, 9))
    gone = factories.person(agency, "Wei Zhang")
    _index(a, b, c, gone)
    Entity.objects.filter(pk=gone.pk).update(archived=True)
    pairs = [_pair(a, b), _pair(a, c), _pair(b, c), _pair(a, gone)]
    loaded = matching.score_pairs(pairs)
    with matching.pinned({pk for pair in pairs for pk in pair}):
        assert set(matching.profiles([a.pk, gone.pk])) == {a.pk}  # the live ones
        assert matching.score_pairs(pairs) == loaded
    assert len(loaded) == 3


def test_an_archived_record_has_no_keys(agency):
    p = factories.person(agency, "Gone Away")
    _index(p)
    assert BlockKey.objects.filter(entity=p).exists()
    Entity.objects.filter(pk=p.pk).update(archived=True)
    _index(p)
    assert not BlockKey.objects.filter(entity=p).exists()


# --- features ------------------------------------------------------------------------------------


CTX = features.Context()


@pytest.mark.parametrize(("a", "b", "level"), [
    ("Wei Zhang", "张伟", 6),
    ("Robert Smith", "Smith Robert", 6),
    ("Gist Brocades", "GISTBROCADES", 6),
    ("Jonathan Smith", "Jonathon Smith", 5),
    ("Akzo Nobel", "Akzo Nobel Arnhem", 4),
    ("B Smith", "Bob Smith", 5),
    ("Maria Sentosa", "Maria Luis Sentosa", 4),
    ("Anna Petrova", "Boris Ivanov", 0),
    ("Faisal Siddiqui", "فيصل صديقي", 5),  # Arabic script writes few vowels: compared by consonants
    ("Aleksandr Vasilev", "ВАСИЛЬЕВ Александр", 6),  # the soft sign joins, never splits
])
def test_name_levels(a, b, level):
    got = features.compare_name(_profile(name=a), _profile(name=b), CTX)
    assert got[0] == level, got


def test_name_similarity_is_order_insensitive_and_quotes_the_names():
    got = features.compare_name(_profile(name="Wei Zhang", names=["Zhang Wei"]), _profile(name="张伟"), CTX)
    assert got[1] == 1.0 and "张伟" in got[2]


@pytest.mark.parametrize(("a", "b", "level"), [
    ("1978-12-11", "1978-12-11", 3),
    ("1978-12-11", "1978-11-12", 2),  # day and month swapped
    ("1978-12-11", "1979-12-11", 2),  # one digit
    ("1978-12-11", "1978-03-30", 1),  # same year
    ("1978-12-11", "1954-03-31", 0),
    ("1978-12-11", None, None),
])
def test_birth_date_levels(a, b, level):
    day = datetime.date.fromisoformat
    got = features.compare_birth_date(_profile(name="x", birth_date=day(a)),
                                      _profile(name="x", birth_date=day(b) if b else None), CTX)
    assert got[0] == level


def test_contact_and_identifier_levels():
    a = _profile(name="x", phones=["+8613800138000"], emails=["a@x.cn"], identifier_numbers=["E1234567"],
                 identifiers=[{"scheme": "passport", "number": "E1234567"}], nationalities=["CN"])
    same = _profile(name="x", phones=["+8613800138000"], emails=["a@x.cn"], identifier_numbers=["E1234567"],
                    identifiers=[{"scheme": "passport", "number": "E1234567"}], nationalities=["CN", "HK"])
    near = _profile(name="x", phones=["+85213800138000"], emails=["a@y.cn"], identifier_numbers=["E1234568"],
                    identifiers=[{"scheme": "passport", "number": "E1234568"}], nationalities=["RU"])
    other = _profile(name="x", phones=["+79161234567"], emails=["b@y.cn"], identifier_numbers=["K7654321"],
                     identifiers=[{"scheme": "passport", "number": "K7654321"}])
    assert [features.compare_phone(a, x, CTX)[0] for x in (same, near, other)] == [2, 1, 0]
    assert [features.compare_email(a, x, CTX)[0] for x in (same, near, other)] == [2, 1, 0]
    assert [features.compare_identifier(a, x, CTX)[0] for x in (same, near, other)] == [3, 2, 0]
    assert [features.compare_country(a, x, CTX)[0] for x in (same, near, other)] == [1, 0, None]


def test_address_and_postcode_levels():
    def at(text):
        return _profile(name="x", addresses=[{"text": text, "country": "US"}])

    home = at("1515 Adela Lane, Las Vegas, NV 89111")
    assert features.compare_address(home, at("1515 Adela Ln, Las Vegas, NV 89111"), CTX)[0] == 4
    assert features.compare_address(home, at("1515 Adela Ln, Las Vegas NV"), CTX)[0] == 4  # postcode left out
    assert features.compare_address(home, at("1515 Adela Ln"), CTX)[0] == 3  # one within the other
    assert features.compare_address(home, at("1515 Adelia Ln, Las Vegas"), CTX)[0] in (2, 3)  # a typo
    assert features.compare_address(home, at("123 Main Street, Las Vegas NV 89111"), CTX)[0] == 0
    assert features.compare_postcode(home, at("123 Main Street, Las Vegas NV 89111"), CTX)[0] == 2
    assert features.compare_postcode(home, at("9 Elm St, Reno, NV 89501"), CTX)[0] == 0


def test_one_house_number_on_two_streets_of_one_city_is_no_agreement():
    """The street type and the city are shared by many streets: only the street's own name makes two addresses
    agree (the city is the postcode feature's evidence, not the address's as well)."""
    def at(text):
        return _profile(name="x", type="organization", addresses=[{"text": text, "country": "CN"}])

    kichok = at("88 Kichok Boulevard, Changsha 49993")
    assert features.compare_address(kichok, at("88 Jakri Boulevard, Changsha 34825"), CTX)[0] == 0
    assert features.compare_address(kichok, at("88 Kichok Blvd, Changsha"), CTX)[0] == 4
    assert features.compare_address(kichok, at("88 Kichock Boulevard, Changsha"), CTX)[0] == 3  # a typo
    assert features.compare_address(at("2900 W Polk St 60612"), at("2900 Polk 60612"), CTX)[0] == 3


def test_different_names_need_evidence_of_one_party():
    """However much a model trusts a shared address and city, two companies whose names clearly differ are not
    proposed unless an identifier, phone, email or rare relation says they are one."""
    trusting = model.Params.from_json({"prior": 0.3, "m": {"address": [0.01, 0.01, 0.01, 0.17, 0.8],
                                                           "postcode": [0.01, 0.09, 0.9]},
                                       "u": {"address": [0.98, 0.005, 0.005, 0.005, 0.005],
                                             "postcode": [0.9, 0.09, 0.01]}})
    place: dict[str, features.Compared] = {"name": (0, 0.3, None), "address": (4, 1.0, None),
                                           "postcode": (2, 1.0, "410000"), "country": (1, 1.0, ["CN"])}
    assert trusting.posterior(place)[0] < 0.5
    assert trusting.posterior({**place, "name": (3, 0.85, None)})[0] > 0.5
    assert trusting.posterior({**place, "phone": (2, 1.0, ("+8673112345678", 0.0))})[0] > 0.5


def _household(first: str, second: str, **more) -> float:
    """The default model's score of two persons at one address."""
    def member(name, **fields):
        return _profile(name=name, addresses=[{"text": "3212 W. 32nd St, Palm Harbor, FL 60527", "country": "US"}],
                        **fields)

    a, b = member(first, **more.get("a", {})), member(second, **more.get("b", {}))
    return model.Params.from_json(None, "person").posterior(features.compare(a, b, CTX))[0]


@pytest.mark.parametrize(("a", "b", "relation"), [
    ("Andy Anderson", "Anna Anderson", features.RELATIVES),
    ("John Smith", "Patricia Smith", features.RELATIVES),
    ("Wang Jie", "Wang Wei", features.RELATIVES),
    ("David Dobbins Jr", "David Dobbins Senior", features.GENERATIONS),
    ("Morris I Klein", "Morris II Klein", features.GENERATIONS),
    ("Robert E Smith Sr", "Robert Smith", None),  # one generation named, the other not: no contradiction
    ("Bob J Smith", "B Smith", None),  # an initial
    ("Kristen Salinger", "Salenger, Kristin", None),  # spellings
    ("Anastassia Alexopoulos", "Alexopoulos, Nastassia", None),
    ("Aliaksandr Vasilieu", "Aleksandr Vasilev", None),  # transliterations
    ("Anna Petrova", "Boris Ivanov", None),  # no family name shared: merely different names (level 0)
])
def test_person_names_of_two_relatives(a, b, relation):
    assert features.compare_name(_profile(name=a), _profile(name=b), CTX)[2][2] == relation


def test_household_members_are_not_one_person():
    """Relatives share a family name and an address: their names, alike letter by letter ("Andy Anderson",
    "Anna Anderson"), are not one person's unless what points at one person agrees: a birth date, an identity
    document, a phone. Two generations of one name ("Jr", "Sr") need an identity document."""
    assert _household("Andy Anderson", "Anna Anderson") < 0.5
    assert _household("David Dobbins Jr", "David Dobbins Senior") < 0.5
    born = {"birth_date": datetime.date(1980, 1, 7)}
    assert _household("Andy Anderson", "Anna Anderson", a=born, b=born) > 0.5
    phone = {"phones": ["+17279491300"]}
    assert _household("Keeley Jones", "Kaylee Jones", a=phone, b=phone) > 0.5
    passport = {"identifier_numbers": ["10251111"], "identifiers": [{"scheme": "passport", "number": "10251111"}]}
    assert _household("David Dobbins Jr", "David Dobbins Senior", a=born, b=born) < 0.5
    assert _household("David Dobbins Jr", "David Dobbins Senior", a=passport, b=passport) > 0.5
    # Names that differ altogether: the household's phone is no evidence; an identity document is.
    assert _household("Miruiiya Doin", "Shi Jia", a=phone, b=phone) < 0.5
    assert _household("Miruiiya Doin", "Shi Jia", a={**phone, **passport}, b={**phone, **passport}) > 0.5
    assert _household("Andy Anderson", "Andy Anderson") > 0.5  # one person's two records
    assert "given names differ" in matching_explanation("Andy Anderson", "Anna Anderson")


def matching_explanation(first: str, second: str) -> str:
    a, b = _profile(name=first), _profile(name=second)
    compared = features.compare(a, b, CTX)
    return explain.explain(compared, model.Params.from_json(None, "person").posterior(compared)[1], a, b, {})


# --- scoring, explanation, model -----------------------------------------------------------------


def test_score_and_explanation_name_the_features(agency):
    a = factories.person(agency, "Wei Zhang", birth_date=datetime.date(1975, 3, 2), phones=["+8613800138000"])
    b = factories.person(agency, "张伟", birth_date=datetime.date(1975, 3, 2), phones=["+8613800138000"])
    c = factories.person(agency, "Wei Zhang", birth_date=datetime.date(1990, 8, 9), phones=["+8613911112222"])
    _index(a, b, c)
    by_pair = {(s.left, s.right): s for s in matching.score_pairs([_pair(a, b), _pair(a, c)])}
    same, other = by_pair[_pair(a, b)], by_pair[_pair(a, c)]
    assert 0 <= other.score < 0.5 < same.score <= 1
    assert same.features["name"] == 1.0 and same.features["birth_date"] == 1.0 and same.features["phone"] == 1.0
    for words in ("same birth date 1975-03-02", "same phone +8613800138000", "张伟"):
        assert words in same.explanation
    assert "different birth dates" in other.explanation


def _planted(agency, n: int = 24):
    """n duplicate pairs (same person, varied name, same birth date and phone) and n namesake pairs (same
    surname, other given name, other birth date and phone)."""
    given = ["Alina", "Boris", "Cyril", "Darya", "Elena", "Fedor", "Galina", "Igor", "Kira", "Lev", "Mila", "Nikita",
             "Oleg", "Pavel", "Raisa", "Sergei", "Taras", "Ulyana", "Vera", "Yuri", "Zoya", "Artem", "Bogdan", "Dina"]
    family = ["Kuznetsov", "Smirnov", "Popov", "Vasiliev", "Petrov", "Sokolov", "Mikhailov", "Novikov", "Fedorov",
              "Morozov", "Volkov", "Alekseev", "Lebedev", "Semenov", "Egorov", "Pavlov", "Kozlov", "Stepanov",
              "Nikolaev", "Orlov", "Andreev", "Makarov", "Nikitin", "Zakharov"]
    dups, namesakes = [], []
    for i in range(n):
        born = datetime.date(1960 + i, 1 + i % 12, 1 + i % 27)
        phone = f"+7916{1000000 + i:07d}"
        a = factories.person(agency, f"{given[i]} {family[i]}", birth_date=born, phones=[phone])
        b = factories.person(agency, f"{family[i]} {given[i][:-1]}", birth_date=born, phones=[phone])
        c = factories.person(agency, f"{given[(i + 7) % n]} {family[i]}", birth_date=datetime.date(1930 + i, 6, 6),
                             phones=[f"+7925{2000000 + i:07d}"])
        dups.append((a, b))
        namesakes.append((a, c))
    _index(*[e for pair in dups + namesakes for e in pair])
    return dups, namesakes


def test_em_learns_the_name_feature(agency):
    dups, namesakes = _planted(agency)
    result = matching.train(agency.pk)
    assert result["person"][0] >= 48
    params = XrefModel.objects.get(agency=agency, entity_type="person").params
    assert params["block_cap"] >= 2
    m, u = params["m"]["name"], params["u"]["name"]
    assert m[5] + m[6] > u[5] + u[6]  # near and exact names are matches' far more than non-matches'
    assert u[0] + u[1] + u[2] > m[0] + m[1] + m[2]
    scored = {(s.left, s.right): s.score for s in matching.score_pairs([_pair(*p) for p in dups + namesakes])}
    assert min(scored[_pair(*p)] for p in dups) > 0.5 > max(scored[_pair(*p)] for p in namesakes)


def test_an_organisations_place_and_jurisdiction_count_once():
    """A company's city lies in its jurisdiction: the same place is one agreement, not two (a person's nationality
    is no consequence of where they live, and still counts)."""
    def company(text, kind="organization", **fields):
        return _profile(name="x", type=kind, addresses=[{"text": text, "country": "RU"}], **fields)

    kazan = company("12 Lenina Street, Kazan", jurisdiction="RU")
    assert "country" not in features.compare(kazan, company("80 Pushkina Street, Kazan", jurisdiction="RU"), CTX)
    assert "country" not in features.compare(kazan, company("12 Lenina St, Kazan", jurisdiction="RU"), CTX)
    assert features.compare(kazan, company("5 Mira Street, Omsk", jurisdiction="RU"), CTX)["country"][0] == 1
    person = company("12 Lenina Street, Kazan", "person", nationalities=["RU"])
    assert features.compare(person, company("80 Pushkina Street, Kazan", "person", nationalities=["RU"]),
                            CTX)["country"][0] == 1


def test_em_never_learns_a_closer_name_as_less_evidence():
    """Candidate pairs hold clusters of one place (a formation agent's address shared by companies of every
    name): EM must not take such a cluster for the matches, learning a different name as a match's mark."""
    def pat(**levels) -> model.Pattern:
        return model.pattern("organization", {f: (level, 0.0, None) for f, level in levels.items()})

    patterns = Counter({pat(name=0, address=4, postcode=2): 600, pat(name=1, address=0, postcode=1): 3000,
                        pat(name=1, country=0): 4000, pat(name=2, country=1, address=0): 800,
                        pat(name=6, country=1, phone=2): 30, pat(name=5, country=1, address=4): 30})
    params = model.em("organization", patterns)
    ratios = [m / u for m, u in zip(params.m["name"], params.u["name"], strict=True)]
    assert ratios == sorted(ratios)
    assert params.posterior({"name": (0, 0.2, None), "address": (4, 1.0, None), "postcode": (2, 1.0, None)}
                            )[0] < 0.5
    assert model.monotone([0.5, 0.1, 0.4], [0.4, 0.4, 0.2]) == pytest.approx([0.3, 0.3, 0.4])


def test_decisions_move_the_model(agency):
    _dups, namesakes = _planted(agency)
    matching.train(agency.pk)
    before = XrefModel.objects.get(agency=agency, entity_type="person").params
    # An analyst confirmed the namesakes as one person each (unlikely, but theirs to decide).
    for a, b in namesakes:
        left, right = sorted((a, b), key=lambda e: e.pk)
        Match.objects.create(left=left, right=right, left_agency=agency, right_agency=agency,
                             entity_type="person", score=0.2, status="confirmed")
    result = matching.train(agency.pk)
    after = XrefModel.objects.get(agency=agency, entity_type="person").params
    assert result["person"][1] == len(namesakes)
    assert XrefModel.objects.get(agency=agency, entity_type="person").decisions == len(namesakes)
    assert after["m"]["birth_date"][0] > before["m"]["birth_date"][0]  # different birth dates, yet matches


def test_default_model_without_training(agency):
    assert model.params_for(agency.pk, "person").m["name"] == model.DEFAULTS["m"]["name"]


def test_relationship_evidence_raises_the_score(agency):
    a = factories.organization(agency, "Golden Bridge Metals Ltd")
    b = factories.organization(agency, "Golden Bridge Metal Trading Co")
    director = factories.person(agency, "Chen Hao")
    _index(a, b, director)
    before = matching.score_pairs([_pair(a, b)])[0]
    factories.link(agency, director, a, kind="directorship")
    factories.link(agency, director, b, kind="directorship")
    after = matching.score_pairs([_pair(a, b)])[0]
    assert after.score > before.score
    assert "related" in after.features and "shared director Chen Hao" in after.explanation


def test_shipment_counterparties_are_evidence(agency):
    a = factories.organization(agency, "Nanning Star Minerals")
    b = factories.organization(agency, "Nanning Star Mineral Co")
    buyer = factories.organization(agency, "Rotterdam Antimony BV")
    _index(a, b, buyer)
    before = matching.score_pairs([_pair(a, b)])[0]
    factories.shipment(agency, consignor=a, consignee=buyer)
    factories.shipment(agency, consignor=b, consignee=buyer)
    after = matching.score_pairs([_pair(a, b)])[0]
    assert after.score > before.score and "shipment counterparty Rotterdam Antimony BV" in after.explanation


def test_a_level_its_training_never_saw_weighs_finitely():
    """EM can drive a level's m or u towards 0 (a level no candidate pair of that class showed): stored, it must
    stay above 0, and a model that holds a 0 still scores (the scale bench's ZeroDivisionError in weight())."""
    from xref.matching.model import DEFAULTS, Params

    params = Params.from_json(None)
    params.u["name"][6], params.m["name"][0] = 4e-9, 3e-9
    stored = Params.from_json(params.to_json())
    assert stored.u["name"][6] > 0 and stored.m["name"][0] > 0
    broken = Params.from_json({"m": {**DEFAULTS["m"], "name": [0.0, *DEFAULTS["m"]["name"][1:]]},
                               "u": {**DEFAULTS["u"], "name": [*DEFAULTS["u"]["name"][:6], 0.0]}})
    same, different = broken.posterior({"name": (6, 1.0, None)}), broken.posterior({"name": (0, 0.1, None)})
    assert 0.99 < same[0] <= 1.0 and 0.0 <= different[0] < 0.01
