# ruff: noqa: RUF001, RUF002  (Cyrillic letters are meant here: names in Cyrillic script)
"""The records of bench/xref_scale.py: generated persons and organisations with planted duplicates.

Every name is made up from syllable and word lists (never a real person's or company's); the same seed gives the
same rows on every machine. A share of the records (`DUPLICATE_SHARE`) are duplicates of others, each planted as one
pair with the variations it carries:

- `typo`: a letter of a name substituted, dropped, doubled, inserted or two letters swapped;
- `swap`: the name's parts in the other order ("Zhang Weiming" / "Weiming Zhang", "TAVISK, Marelo");
- `translit`: the other script: Hanzi ↔ pinyin, Cyrillic ↔ Latin (another romanisation than the folding one);
- `format`: upper case, joined or split syllables, "&" for "and", punctuation;
- `legal_form`: an organisation's legal form in another spelling or language ("Co., Ltd." / "有限公司" /
  "Company Limited", "ООО" / "OOO" / "LLC", "Sdn. Bhd." / "Sendirian Berhad");
- `missing`: some of the original's other fields left out (at least one of its contact points or identifiers
  is kept when it has any);
- `date`: a birth date with day and month swapped, or one digit wrong;
- `phone_format`: a phone written in international format with spaces instead of E.164.

Rows are as an import file takes them (API.md § Bulk import): list fields `;`-separated, identifiers as
`scheme:number:country`, one `address_country` for the row's addresses, phones in E.164.
"""

from __future__ import annotations

import csv
import datetime
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
from stdnum.cn import uscc

SEED = 20261130
DUPLICATE_SHARE = 0.1

PERSON_COLUMNS = ["source_id", "name", "names", "gender", "birth_date", "nationalities", "identifiers", "addresses",
                  "address_country", "phones", "emails"]
ORGANIZATION_COLUMNS = ["source_id", "name", "names", "kind", "jurisdiction", "registration_number",
                        "incorporated_on", "addresses", "address_country", "phones", "emails", "website"]
PERSON_EVIDENCE = ("birth_date", "identifiers", "phones", "emails")
ORGANIZATION_EVIDENCE = ("registration_number", "phones", "emails", "addresses", "website")

# --- word lists ---------------------------------------------------------------------------------------------------
# Hanzi with their pinyin (toneless). Characters with one common reading only, so that the pinyin here is the one
# any converter gives.
HAN_SURNAMES = [("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
                ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
                ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("高", "gao"), ("林", "lin"),
                ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"),
                ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"), ("彭", "peng"), ("田", "tian"),
                ("董", "dong"), ("潘", "pan"), ("袁", "yuan"), ("蔡", "cai"), ("蒋", "jiang"), ("杜", "du"),
                ("叶", "ye"), ("程", "cheng"), ("魏", "wei"), ("苏", "su"), ("卢", "lu"), ("丁", "ding"),
                ("任", "ren"), ("姚", "yao"), ("汪", "wang"), ("范", "fan"), ("方", "fang"), ("石", "shi")]
HAN_GIVEN = [("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("强", "qiang"),
             ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("涛", "tao"),
             ("明", "ming"), ("超", "chao"), ("秀", "xiu"), ("霞", "xia"), ("平", "ping"), ("刚", "gang"),
             ("桂", "gui"), ("英", "ying"), ("华", "hua"), ("玉", "yu"), ("萍", "ping"), ("红", "hong"),
             ("建", "jian"), ("文", "wen"), ("辉", "hui"), ("力", "li"), ("斌", "bin"), ("宇", "yu"), ("浩", "hao"),
             ("凯", "kai"), ("鹏", "peng"), ("婷", "ting"), ("雪", "xue"), ("琳", "lin"), ("晨", "chen"),
             ("欣", "xin"), ("博", "bo"), ("峰", "feng"), ("鑫", "xin"), ("亮", "liang"), ("海", "hai"),
             ("云", "yun"), ("志", "zhi"), ("春", "chun"), ("梅", "mei"), ("兰", "lan"), ("东", "dong"),
             ("国", "guo"), ("荣", "rong"), ("松", "song"), ("嘉", "jia"), ("瑞", "rui"), ("帆", "fan"),
             ("琪", "qi"), ("彬", "bin"), ("睿", "rui"), ("哲", "zhe"), ("航", "hang"), ("毅", "yi"), ("岩", "yan")]
HAN_BRAND = [("金", "jin"), ("桥", "qiao"), ("盛", "sheng"), ("泰", "tai"), ("恒", "heng"), ("达", "da"),
             ("宏", "hong"), ("源", "yuan"), ("丰", "feng"), ("隆", "long"), ("安", "an"), ("昌", "chang"),
             ("德", "de"), ("福", "fu"), ("光", "guang"), ("和", "he"), ("锦", "jin"), ("凯", "kai"), ("联", "lian"),
             ("龙", "long"), ("鹏", "peng"), ("润", "run"), ("胜", "sheng"), ("顺", "shun"), ("腾", "teng"),
             ("天", "tian"), ("通", "tong"), ("祥", "xiang"), ("兴", "xing"), ("旭", "xu"), ("亚", "ya"),
             ("扬", "yang"), ("益", "yi"), ("永", "yong"), ("宇", "yu"), ("远", "yuan"), ("振", "zhen"),
             ("中", "zhong"), ("卓", "zhuo"), ("鑫", "xin"), ("瑞", "rui"), ("嘉", "jia"), ("诚", "cheng"),
             ("信", "xin"), ("航", "hang"), ("峰", "feng"), ("烨", "ye"), ("赫", "he")]
HAN_INDUSTRY = [("矿业", "kuangye", "Mining"), ("贸易", "maoyi", "Trading"), ("金属", "jinshu", "Metals"),
                ("物流", "wuliu", "Logistics"), ("化工", "huagong", "Chemicals"), ("科技", "keji", "Technology"),
                ("实业", "shiye", "Industrial"), ("进出口", "jinchukou", "Import Export"),
                ("材料", "cailiao", "Materials"), ("资源", "ziyuan", "Resources"),
                ("冶炼", "yelian", "Smelting"), ("新材料", "xincailiao", "New Materials")]
HAN_PLACES = [("深圳", "shenzhen"), ("广州", "guangzhou"), ("上海", "shanghai"), ("湖南", "hunan"),
              ("广西", "guangxi"), ("云南", "yunnan"), ("宁波", "ningbo"), ("天津", "tianjin"), ("贵州", "guizhou"),
              ("江西", "jiangxi"), ("福建", "fujian"), ("浙江", "zhejiang")]
HAN_FORMS = [("有限公司", "Youxian Gongsi"), ("有限责任公司", "Youxian Zeren Gongsi")]

# Cyrillic syllables with two romanisations: (Cyrillic, the passport-style one, an older or looser one).
CYR_SYLLABLES = [("ва", "va", "va"), ("ле", "le", "le"), ("ри", "ri", "ri"), ("то", "to", "to"), ("на", "na", "na"),
                 ("ми", "mi", "mi"), ("ко", "ko", "ko"), ("са", "sa", "sa"), ("до", "do", "do"), ("бо", "bo", "bo"),
                 ("ге", "ge", "ghe"), ("ла", "la", "la"), ("ру", "ru", "ru"), ("зо", "zo", "zo"), ("пе", "pe", "pe"),
                 ("ти", "ti", "ti"), ("ше", "she", "che"), ("ю", "yu", "iu"), ("жа", "zha", "ja"),
                 ("ха", "kha", "ha"), ("щу", "shchu", "schu"), ("ця", "tsya", "tsia"), ("ви", "vi", "wi"),
                 ("ша", "sha", "cha"), ("ло", "lo", "lo"), ("ни", "ni", "ni"), ("го", "go", "go"), ("ку", "ku", "ku"),
                 ("ер", "er", "er"), ("ан", "an", "an"), ("ор", "or", "or"), ("ель", "el", "el"), ("ёр", "yor", "jor")]
CYR_SURNAME_END = [("ов", "ov", "off"), ("ев", "ev", "ew"), ("ин", "in", "in"), ("ский", "skiy", "sky"),
                   ("енко", "enko", "enko")]
CYR_GIVEN_END = [("ий", "iy", "y"), ("ан", "an", "an"), ("ей", "ey", "ei"), ("ия", "iya", "ia"), ("ина", "ina", "ina")]
CYR_FORMS = [("ООО", "OOO", "LLC"), ("АО", "AO", "JSC"), ("ТОО", "TOO", "LLP")]

LATIN_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "st", "tr",
                "h", "j", "w", "ch", "sh"]
LATIN_VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou", "ia"]
LATIN_CODAS = ["", "", "", "n", "r", "l", "s", "k", "m", "x", "th", "nd", "rt"]
VI_SURNAMES = ["Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu", "Vo", "Dang", "Bui", "Do", "Ho", "Ngo", "Duong", "Ly"]
VI_SYLLABLES = ["Anh", "Bao", "Binh", "Chau", "Cuong", "Dung", "Giang", "Ha", "Hai", "Hanh", "Hieu", "Hoa", "Hung",
                "Huong", "Khanh", "Khoa", "Lan", "Linh", "Long", "Mai", "Minh", "Nam", "Ngoc", "Nhung", "Phong",
                "Phuong", "Quan", "Quang", "Son", "Tam", "Thanh", "Thao", "Thu", "Trang", "Trung", "Tuan", "Van",
                "Viet", "Xuan", "Yen"]
INDUSTRY = ["Mining", "Metals", "Trading", "Logistics", "Minerals", "Resources", "Chemicals", "Industrial",
            "Import Export", "Shipping", "Technology", "Materials", "Holdings", "Commodities", "Alloys", "Freight"]
# Legal forms by jurisdiction: spellings of one form in the jurisdiction's language and in English, as a customs
# declaration, a registry and a bank would each write it. (prefix?, form)
FORMS: dict[str, list[tuple[bool, str]]] = {
    "HK": [(False, "Limited"), (False, "Ltd"), (False, "Company Limited"), (False, "Co., Limited")],
    "DE": [(False, "GmbH"), (False, "Ltd."), (False, "LLC"), (False, "G.m.b.H.")],
    "TR": [(False, "Ltd. Şti."), (False, "Limited Şirketi"), (False, "Co. Ltd."), (False, "Ltd. Sti.")],
    "MY": [(False, "Sdn. Bhd."), (False, "Sdn Bhd"), (False, "Sendirian Berhad")],
    "VN": [(True, "Công ty TNHH"), (True, "Cong ty TNHH"), (False, "Co., Ltd"), (False, "Company Limited")],
    "AE": [(False, "FZE"), (False, "FZCO"), (False, "L.L.C."), (False, "LLC")],
    "NL": [(False, "B.V."), (False, "BV"), (False, "Besloten Vennootschap")],
    "GB": [(False, "Ltd"), (False, "Limited"), (False, "Ltd.")],
    "US": [(False, "Inc."), (False, "Inc"), (False, "Incorporated")],
    "IT": [(False, "S.r.l."), (False, "SRL"), (False, "Srl")],
    "SG": [(False, "Pte. Ltd."), (False, "Pte Ltd"), (False, "Private Limited")],
    "KZ": [(False, "LLP"), (False, "TOO"), (False, "L.L.P.")],
}
# Registries whose numbers carry a check the import verifies, and this module does not compute: no number there.
CHECKED_REGISTRIES = frozenset({"SG", "VN"})
CN_LATIN_FORMS = ["Co., Ltd.", "Co. Ltd", "Company Limited", "Co., Limited", "Limited"]
STREET_TYPES = {"Road": "Rd", "Street": "St.", "Avenue": "Ave.", "Boulevard": "Blvd", "Lane": "Ln"}
CITIES = {"CN": ["Shenzhen", "Guangzhou", "Changsha", "Nanning", "Kunming", "Ningbo"], "HK": ["Kowloon", "Wan Chai"],
          "RU": ["Moscow", "Kazan", "Omsk"], "KZ": ["Almaty", "Astana"], "VN": ["Hanoi", "Hai Phong", "Da Nang"],
          "DE": ["Hamburg", "Bremen", "Duisburg"], "TR": ["Istanbul", "Mersin"], "MY": ["Port Klang", "Penang"],
          "AE": ["Dubai", "Sharjah"], "NL": ["Rotterdam", "Amsterdam"], "GB": ["London", "Felixstowe"],
          "US": ["Houston", "Newark"], "IT": ["Genoa", "Milan"], "SG": ["Singapore"], "BY": ["Minsk"],
          "UA": ["Odesa"], "FR": ["Le Havre", "Lyon"], "PL": ["Gdansk"], "TH": ["Bangkok"], "TW": ["Kaohsiung"]}
PERSON_COUNTRIES = {"zh": ["CN", "CN", "CN", "HK", "SG", "TW"], "ru": ["RU", "RU", "KZ", "BY", "UA"],
                    "vi": ["VN"], "latin": ["DE", "NL", "GB", "US", "FR", "IT", "PL", "TR", "AE", "TH"]}
MAIL_HOSTS = ["mail.example", "post.example", "inbox.example", "webmail.example", "letters.example"]
KINDS = ["company", "company", "trader", "trader", "producer", "freight_forwarder", "shell_company"]
KEYBOARD_NEAR = {"a": "sq", "e": "wr", "i": "uo", "o": "ip", "u": "yi", "n": "bm", "m": "n", "r": "et", "t": "ry",
                 "s": "ad", "l": "k", "k": "jl", "g": "fh", "h": "gj", "d": "sf", "v": "cb", "b": "vn"}


@dataclass
class Planted:
    kind: str  # persons | organizations
    left: str  # source_id of the original
    right: str  # source_id of the duplicate
    variations: tuple[str, ...]


@dataclass
class Generated:
    persons: list[dict[str, str]] = field(default_factory=list)
    organizations: list[dict[str, str]] = field(default_factory=list)
    planted: list[Planted] = field(default_factory=list)

    def write(self, directory: Path) -> tuple[Path, Path]:
        """The two import files (CSV, UTF-8, header row)."""
        paths = directory / "persons.csv", directory / "organizations.csv"
        for path, rows, columns in ((paths[0], self.persons, PERSON_COLUMNS),
                                    (paths[1], self.organizations, ORGANIZATION_COLUMNS)):
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, columns)
                writer.writeheader()
                writer.writerows(rows)
        return paths


def generate(persons: int, organizations: int, *, seed: int = SEED, share: float = DUPLICATE_SHARE) -> Generated:
    """`persons` person rows and `organizations` organisation rows, `share` of each a planted duplicate. Each kind
    has its own random stream: the persons of a seed are the same whatever the number of organisations."""
    out = Generated()
    out.persons, planted = _rows(persons, share, random.Random(f"{seed}-persons"), _person, _person_duplicate, "p")
    out.planted += [Planted("persons", *pair) for pair in planted]
    out.organizations, planted = _rows(organizations, share, random.Random(f"{seed}-organizations"), _organization,
                                       _organization_duplicate, "o")
    out.planted += [Planted("organizations", *pair) for pair in planted]
    return out


class _Record(dict[str, Any]):
    """A record while it is made: its fields, and how it was made (culture, name parts) under `_` keys."""


def _rows(total: int, share: float, rng: random.Random, make: Callable[[random.Random], _Record],
          duplicate: Callable[[random.Random, _Record], tuple[_Record, list[str]]],
          prefix: str) -> tuple[list[dict[str, str]], list[tuple[str, str, tuple[str, ...]]]]:
    copies = round(total * share)
    originals = total - copies
    records = [make(rng) for _ in range(originals)]
    _share_contacts(rng, records)
    planted: list[tuple[str, str, tuple[str, ...]]] = []
    for i, record in enumerate(records):
        record["source_id"] = f"{prefix}{i:06d}"
    for n, i in enumerate(sorted(rng.sample(range(originals), copies))):
        copy, variations = duplicate(rng, records[i])
        copy["source_id"] = f"{prefix}{originals + n:06d}"
        records.append(copy)
        planted.append((str(records[i]["source_id"]), str(copy["source_id"]), tuple(variations)))
    rng.shuffle(records)
    return [_row(r) for r in records], planted


def _row(record: _Record) -> dict[str, str]:
    row: dict[str, str] = {}
    for key, value in record.items():
        if key.startswith("_") or value in (None, "", []):
            continue
        if isinstance(value, list):
            row[key] = ";".join(str(v) for v in value)
        elif isinstance(value, datetime.date):
            row[key] = value.isoformat()
        else:
            row[key] = str(value)
    if not row.get("addresses"):
        row.pop("address_country", None)
    return row


def _share_contacts(rng: random.Random, records: list[_Record]) -> None:
    """Contact points that different records share, as real ones do: households share an address and a phone;
    companies registered at a formation agent's address (hundreds at one address, at a 100,000 records) share it."""
    if not records:
        return
    if "jurisdiction" in records[0]:
        agents = [(f"{rng.randrange(1, 300)} {_word(rng).title()} Business Centre, {city}", country)
                  for country, city in (("HK", "Wan Chai"), ("AE", "Dubai"), ("GB", "London"), ("SG", "Singapore"),
                                        ("MY", "Penang"), ("TR", "Istanbul"), ("KZ", "Almaty"), ("DE", "Hamburg"))]
        for record in records:
            if rng.random() < 0.04:
                text, country = rng.choice(agents)
                record["addresses"], record["address_country"] = [text], country
        return
    for record in rng.sample(records, len(records) // 50):
        other = rng.choice(records)
        if other is not record and other.get("addresses"):
            record["addresses"], record["address_country"] = list(other["addresses"]), other["address_country"]
            if other.get("phones") and rng.random() < 0.5:
                record["phones"] = list(other["phones"])


# --- persons ------------------------------------------------------------------------------------------------------


def _word(rng: random.Random, syllables: int | None = None) -> str:
    count = syllables or rng.choice((2, 2, 3))
    return "".join(rng.choice(LATIN_ONSETS) + rng.choice(LATIN_VOWELS) for _ in range(count - 1)) \
        + rng.choice(LATIN_ONSETS) + rng.choice(LATIN_VOWELS) + rng.choice(LATIN_CODAS)


def _person(rng: random.Random) -> _Record:
    culture = rng.choices(("zh", "ru", "vi", "latin"), (35, 15, 10, 40))[0]
    gender = rng.choice(("male", "female"))
    country = rng.choice(PERSON_COUNTRIES[culture])
    r = _Record(_culture=culture, gender=gender)
    if culture == "zh":
        family = rng.choice(HAN_SURNAMES)
        given = [rng.choice(HAN_GIVEN) for _ in range(rng.choice((1, 2, 2, 2)))]
        r["_han"], r["_pinyin"] = (family[0], "".join(g[0] for g in given)), (family[1], [g[1] for g in given])
        r["_script"] = "han" if rng.random() < 0.4 else "latin"
        r["name"] = _han_person(r) if r["_script"] == "han" else _pinyin_person(r, "family_first")
        if rng.random() < 0.1:  # a record that knows both spellings
            r["names"] = [_pinyin_person(r, "family_first") if r["_script"] == "han" else _han_person(r)]
    elif culture == "ru":
        r["_cyr"] = ([rng.choice(CYR_SYLLABLES) for _ in range(rng.choice((1, 2)))] + [rng.choice(CYR_SURNAME_END)],
                     [rng.choice(CYR_SYLLABLES) for _ in range(rng.choice((1, 2)))] + [rng.choice(CYR_GIVEN_END)])
        r["_script"] = "cyrillic" if rng.random() < 0.3 else "latin"
        r["name"] = _cyr_person(r, 0 if r["_script"] == "cyrillic" else 1)
    elif culture == "vi":
        parts = [rng.choice(VI_SURNAMES), rng.choice(VI_SYLLABLES), rng.choice(VI_SYLLABLES)]
        r["_parts"] = parts
        r["name"] = " ".join(parts)
    else:
        r["_parts"] = [_word(rng).title(), _word(rng, rng.choice((2, 3))).title()]
        r["name"] = " ".join(r["_parts"])
    r["birth_date"] = (datetime.date(1945, 1, 1) + datetime.timedelta(days=rng.randrange(60 * 365))
                       if rng.random() < 0.85 else None)
    r["nationalities"] = [country] + ([rng.choice(["CN", "RU", "TR", "AE", "SG", "CY"])] if rng.random() < 0.05 else [])
    r["identifiers"] = [f"passport:{rng.choice('EGKPX')}{rng.randrange(10**7, 10**8)}:{country}"] \
        if rng.random() < 0.5 else []
    home = rng.choice(list(CITIES)) if rng.random() < 0.2 else country
    r["addresses"], r["address_country"] = ([_address(rng, home)], home) if rng.random() < 0.6 else ([], "")
    r["phones"] = [_phone(rng, home)] if rng.random() < 0.6 else []
    latin = _latin_name(r).lower().replace(" ", ".").replace(",", "")
    r["emails"] = [f"{latin}{rng.randrange(100)}@{rng.choice(MAIL_HOSTS)}"] if rng.random() < 0.5 else []
    return r


def _han_person(r: _Record) -> str:
    family, given = r["_han"]
    return f"{family}{given}"


def _pinyin_person(r: _Record, style: str) -> str:
    family, given = r["_pinyin"]
    joined = "".join(given).title()
    if style == "given_first":
        return f"{joined} {family.title()}"
    if style == "upper_family":
        return f"{family.upper()} {' '.join(g.title() for g in given)}"
    if style == "hyphen":
        return f"{family.title()} {'-'.join(g.title() for g in given).capitalize()}"
    return f"{family.title()} {joined}"


def _cyr_person(r: _Record, column: int, *, family_first: bool = False) -> str:
    family, given = r["_cyr"]
    f = "".join(s[column] for s in family)
    g = "".join(s[column] for s in given)
    return f"{f.title()} {g.title()}" if family_first else f"{g.title()} {f.title()}"


def _latin_name(r: _Record) -> str:
    if r["_culture"] == "zh":
        return _pinyin_person(r, "given_first")
    if r["_culture"] == "ru":
        return _cyr_person(r, 1)
    return " ".join(r["_parts"])


def _person_duplicate(rng: random.Random, original: _Record) -> tuple[_Record, list[str]]:
    r = _Record(original)
    culture = r["_culture"]
    variations: list[str] = []
    roll = rng.random()
    if culture in ("zh", "ru") and roll < 0.4:
        variations.append("translit")
        if culture == "zh":
            if r["_script"] == "han":
                r["name"] = _pinyin_person(r, rng.choice(("family_first", "given_first", "upper_family", "hyphen")))
            else:
                r["name"] = _han_person(r)
        else:
            column = 1 if r["_script"] == "cyrillic" else rng.choice((0, 2))
            if column == 2 and _cyr_person(r, 2) == _cyr_person(r, 1):  # no letter romanised otherwise
                column = 0
            r["name"] = _cyr_person(r, column, family_first=rng.random() < 0.3)
    else:
        chosen = rng.choices(("typo", "swap", "format", "typo+swap"), (40, 30, 20, 10))[0]
        if culture == "zh" and r["_script"] == "han":
            chosen = "swap"  # a Hanzi name's variants are its romanisations (above) and the order of these
        for variation in chosen.split("+"):
            variations.append(variation)
            r["name"] = _vary_person_name(rng, r, variation)
        r["name"] = _changed(r["name"], original["name"])
    r["names"] = []
    variations += _drop_fields(rng, r, ("gender", "nationalities", "addresses", *PERSON_EVIDENCE), PERSON_EVIDENCE)
    birth = r.get("birth_date")
    if isinstance(birth, datetime.date) and rng.random() < 0.08:
        r["birth_date"] = _vary_date(rng, birth)
        variations.append("date")
    _vary_contacts(rng, r, variations)
    return r, variations


def _vary_contacts(rng: random.Random, r: _Record, variations: list[str]) -> None:
    """A duplicate's phones written with spaces (a `phone_format` variation) and its addresses reworded, at times."""
    if r.get("phones") and rng.random() < 0.3:
        r["phones"] = [_phone_spaced(p) for p in r["phones"]]
        variations.append("phone_format")
    if r.get("addresses") and rng.random() < 0.3:
        r["addresses"] = [_vary_address(rng, a) for a in r["addresses"]]


def _vary_person_name(rng: random.Random, r: _Record, variation: str) -> str:
    name = str(r["name"])
    culture = r["_culture"]
    if variation == "typo":
        return _typo(rng, name)
    if variation == "swap":
        if culture == "zh":
            if r["_script"] == "han":  # Hanzi have no order to swap: the pinyin in the other order
                return _pinyin_person(r, "given_first")
            return _pinyin_person(r, "given_first")
        if culture == "ru":
            return _cyr_person(r, 0 if r["_script"] == "cyrillic" else 1, family_first=True)
        parts = name.split()
        if rng.random() < 0.5:
            return f"{parts[-1].upper()}, {' '.join(parts[:-1])}"
        return " ".join([parts[-1], *parts[:-1]])
    # format
    if culture == "zh":
        return _pinyin_person(r, rng.choice(("upper_family", "hyphen")))
    return name.upper() if rng.random() < 0.5 else name.replace(" ", "  ").lower().title()


def _changed(name: str, original: str) -> str:
    """A variant that came out as the original (a format change of a name already so written): upper-cased."""
    if name != original:
        return name
    return name.upper() if name != name.upper() else name.title()


def _typo(rng: random.Random, name: str) -> str:
    """One slip of the keyboard in one of the name's longer words (a change, whatever the letters)."""
    words = name.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not candidates:
        return name + name[-1]
    i = rng.choice(candidates)
    for _ in range(20):
        changed = _slip(rng, words[i])
        if _letters(changed) != _letters(words[i]):
            break
    return " ".join([*words[:i], changed, *words[i + 1:]])


def _letters(word: str) -> str:
    return word.lower().replace("ь", "").replace("ъ", "")  # the signs no romanisation writes


def _slip(rng: random.Random, w: str) -> str:
    p = rng.randrange(1, len(w) - 1)
    kind = rng.choice(("substitute", "drop", "double", "insert", "transpose"))
    if kind == "substitute":
        near = KEYBOARD_NEAR.get(w[p].lower(), "aeiou") if w.isascii() else w.lower()
        return w[:p] + rng.choice(near) + w[p + 1:]
    if kind == "drop":
        return w[:p] + w[p + 1:]
    if kind == "double":
        return w[:p] + w[p] + w[p:]
    if kind == "insert":
        return w[:p] + rng.choice("aeinrst" if w.isascii() else w.lower()) + w[p:]
    return w[:p] + w[p + 1] + w[p] + w[p + 2:]


def _vary_date(rng: random.Random, day: datetime.date) -> datetime.date:
    if day.day <= 12 and day.day != day.month and rng.random() < 0.5:
        return day.replace(month=day.day, day=day.month)
    for _ in range(20):
        text = day.isoformat()
        pos = rng.choice([2, 3, 6, 9])  # a digit of the year's decade, the month or the day
        changed = text[:pos] + str(rng.randrange(10)) + text[pos + 1:]
        try:
            new = datetime.date.fromisoformat(changed)
        except ValueError:
            continue
        if new != day and new < datetime.date(2010, 1, 1):
            return new
    return day + datetime.timedelta(days=1)


def _drop_fields(rng: random.Random, r: _Record, optional: Sequence[str], evidence: Sequence[str]) -> list[str]:
    """Leave out some of the copy's fields; at least one of its evidence fields stays when it has any."""
    present = [f for f in optional if r.get(f) not in (None, "", [])]
    dropped = [f for f in present if rng.random() < 0.25]
    kept_evidence = [f for f in evidence if f in present and f not in dropped]
    having = [f for f in evidence if f in present]
    if having and not kept_evidence:
        dropped.remove(rng.choice(having))
    for f in dropped:
        r[f] = [] if isinstance(r[f], list) else None
        if f == "addresses":
            r["address_country"] = ""
    return ["missing"] if dropped else []


# --- organisations ------------------------------------------------------------------------------------------------


def _organization(rng: random.Random) -> _Record:
    jurisdiction = rng.choices(("CN", "RU", *FORMS), (30, 10, *([5] * len(FORMS))))[0]
    r = _Record(_jurisdiction=jurisdiction, kind=rng.choice(KINDS), jurisdiction=jurisdiction)
    if jurisdiction == "CN":
        place = rng.choice(HAN_PLACES) if rng.random() < 0.6 else None
        brand = [rng.choice(HAN_BRAND) for _ in range(2)]
        r["_han"] = (place, brand, rng.choice(HAN_INDUSTRY), rng.choice(HAN_FORMS))
        r["_latin_form"] = rng.choice(CN_LATIN_FORMS)
        r["_script"] = "han" if rng.random() < 0.4 else "latin"
        r["name"] = _han_org(r) if r["_script"] == "han" else _pinyin_org(r, english=rng.random() < 0.5)
        r["registration_number"] = _uscc(rng) if rng.random() < 0.7 else ""
    elif jurisdiction == "RU":
        r["_cyr"] = ([rng.choice(CYR_SYLLABLES) for _ in range(rng.choice((2, 3)))], rng.choice(CYR_FORMS))
        r["_script"] = "cyrillic" if rng.random() < 0.4 else "latin"
        r["name"] = _cyr_org(r, 0 if r["_script"] == "cyrillic" else 1)
        r["registration_number"] = _ogrn(rng) if rng.random() < 0.7 else ""
    else:
        words = [_word(rng).title()]
        if rng.random() < 0.3:
            words.append(_word(rng, 2).title())
        words += rng.sample(INDUSTRY, rng.choice((1, 1, 2)))
        r["_words"] = words
        r["_form"] = rng.randrange(len(FORMS[jurisdiction]))
        r["name"] = _latin_org(r)
        r["registration_number"] = (f"{rng.choice(['', 'HRB ', 'C', 'RC-'])}{rng.randrange(10**5, 10**8)}"
                                    if jurisdiction not in CHECKED_REGISTRIES and rng.random() < 0.6 else "")
    r["incorporated_on"] = (datetime.date(1990, 1, 1) + datetime.timedelta(days=rng.randrange(35 * 365))
                            if rng.random() < 0.6 else None)
    r["addresses"], r["address_country"] = ([_address(rng, jurisdiction)], jurisdiction) if rng.random() < 0.7 \
        else ([], "")
    r["phones"] = [_phone(rng, jurisdiction)] if rng.random() < 0.5 else []
    host = _host(r, rng)
    r["emails"] = [f"{rng.choice(['info', 'sales', 'office', 'trade'])}@{host}"] if rng.random() < 0.4 else []
    r["website"] = f"www.{host}" if rng.random() < 0.3 else ""
    return r


def _host(r: _Record, rng: random.Random) -> str:
    if r["_jurisdiction"] == "CN":
        _, brand, industry, _ = r["_han"]
        stem = "".join(b[1] for b in brand) + industry[1][:4]
    elif r["_jurisdiction"] == "RU":
        stem = "".join(s[1] for s in r["_cyr"][0])
    else:
        stem = "".join(r["_words"][:2]).lower().replace(" ", "")
    return f"{stem}{rng.randrange(10)}.example"


def _han_org(r: _Record) -> str:
    place, brand, industry, form = r["_han"]
    return (place[0] if place else "") + "".join(b[0] for b in brand) + industry[0] + form[0]


def _pinyin_org(r: _Record, *, english: bool = False, spaced: bool = False, pinyin_form: bool = False) -> str:
    place, brand, industry, form = r["_han"]
    sep = " " if spaced else ""
    parts = [place[1].title()] if place else []
    parts.append(sep.join(b[1].title() if spaced or i == 0 else b[1] for i, b in enumerate(brand)))
    parts.append(industry[2] if english else industry[1].title())
    parts.append(form[1] if pinyin_form else str(r["_latin_form"]))
    return " ".join(parts)


def _cyr_org(r: _Record, column: int) -> str:
    brand, form = r["_cyr"]
    name = "".join(s[min(column, 2)] for s in brand).title()
    if column == 0:
        return f"{form[0]} «{name}»"
    return f"{form[1]} {name}" if column == 1 else f"{name} {form[2]}"


def _latin_org(r: _Record, form: int | None = None) -> str:
    prefix, text = FORMS[str(r["_jurisdiction"])][r["_form"] if form is None else form]
    words = " ".join(r["_words"])
    return f"{text} {words}" if prefix else f"{words} {text}"


def _organization_duplicate(rng: random.Random, original: _Record) -> tuple[_Record, list[str]]:
    r = _Record(original)
    j = r["_jurisdiction"]
    variations: list[str] = []
    if j in ("CN", "RU") and rng.random() < 0.5:
        variations.append("translit")
        if j == "CN":
            if r["_script"] == "han":
                r["name"] = _pinyin_org(r, spaced=rng.random() < 0.3, pinyin_form=rng.random() < 0.3)
            else:
                r["name"] = _han_org(r)
        else:
            r["name"] = _cyr_org(r, rng.choice((1, 2)) if r["_script"] == "cyrillic" else 0)
    else:
        chosen = rng.choices(("legal_form", "typo", "format", "legal_form+typo"), (40, 30, 15, 15))[0]
        if j == "CN" and r["_script"] == "han":
            chosen = "legal_form"
        for variation in chosen.split("+"):
            variations.append(variation)
            r["name"] = _vary_org_name(rng, r, variation)
        r["name"] = _changed(r["name"], original["name"])
    r["names"] = []
    variations += _drop_fields(rng, r, ("kind", "incorporated_on", *ORGANIZATION_EVIDENCE), ORGANIZATION_EVIDENCE)
    _vary_contacts(rng, r, variations)
    return r, variations


def _vary_org_name(rng: random.Random, r: _Record, variation: str) -> str:
    j = str(r["_jurisdiction"])
    name = str(r["name"])
    if variation == "legal_form":
        if j == "CN":
            if r["_script"] == "han":
                form = r["_han"][3]
                other = next(f for f in HAN_FORMS if f != form)
                return name[: -len(form[0])] + other[0]
            others = [f for f in CN_LATIN_FORMS if f != r["_latin_form"]]
            return name[: -len(str(r["_latin_form"]))] + rng.choice(others)
        if j == "RU":
            syllables, form = r["_cyr"]
            column = 0 if r["_script"] == "cyrillic" else 1
            text = "".join(s[column] for s in syllables).title()
            return f"{text} {form[2]}" if column else f"{form[0]} {text}"
        return _latin_org(r, rng.choice([i for i in range(len(FORMS[j])) if i != r["_form"]]))
    if variation == "typo":
        if "«" in name:
            brand = name[name.index("«") + 1: name.index("»")]
            return name.replace(brand, _typo(rng, brand))
        words = [w for w in name.split(" ") if len(w) >= 4 and w.isalpha() and w not in INDUSTRY]
        if words:
            target = rng.choice(words)
            return name.replace(target, _typo(rng, target), 1)
        return _typo(rng, name)
    # format
    if "Import Export" in name and rng.random() < 0.5:
        return name.replace("Import Export", "Import & Export")
    plain = name.replace(",", "").replace(".", "")
    return plain if plain != name and rng.random() < 0.4 else name.upper()


# --- contact points and identifiers -------------------------------------------------------------------------------


def _address(rng: random.Random, country: str) -> str:
    street = f"{_word(rng).title()} {rng.choice(list(STREET_TYPES))}"
    city = rng.choice(CITIES.get(country, ["Central"]))
    return f"{rng.randrange(1, 400)} {street}, {city} {rng.randrange(10000, 99999)}"


def _vary_address(rng: random.Random, text: str) -> str:
    for long, short in STREET_TYPES.items():
        if f" {long}," in text:
            text = text.replace(f" {long},", f" {short},")
            break
    return text.upper() if rng.random() < 0.3 else text


def _phone(rng: random.Random, country: str) -> str:
    """A valid number of the country (phonenumbers' example mobile number with its last digits changed)."""
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE) \
        or phonenumbers.example_number(country)
    assert example is not None, country
    national = str(example.national_number)
    keep = max(len(national) - 8, 2)
    for _ in range(50):
        number = phonenumbers.PhoneNumber(country_code=example.country_code, national_number=int(
            national[:keep] + "".join(str(rng.randrange(10)) for _ in range(len(national) - keep))))
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def _phone_spaced(e164: str) -> str:
    return phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _uscc(rng: random.Random) -> str:
    """A made-up Unified Social Credit Code with a correct check character."""
    body = "91" + f"{rng.randrange(110000, 660000):06d}" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY")
                                                                   for _ in range(9))
    return body + uscc.calc_check_digit(body)


def _ogrn(rng: random.Random) -> str:
    """A made-up 13-digit OGRN with a correct check digit."""
    body = f"1{rng.randrange(10**10, 10**11)}"
    return body + str(int(body) % 11 % 10)
