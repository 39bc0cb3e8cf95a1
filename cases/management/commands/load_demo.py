"""`python manage.py load_demo`: the demo data set.

Everything here is FICTIONAL. The people, companies, registration numbers, phone numbers,
cases and events are invented for demonstration; any resemblance to real persons or
companies is coincidental. Only place names, countries and commodities are real.

What it loads:

- two agencies, SSB (State Security Bureau) and ASB (Customs Anti-Smuggling Bureau), with
  their units; one user of every role in each (``demo-<role>`` in SSB/econ, ``asb-<role>``
  in ASB/ports), all staff so they can use the admin, and one ``admin`` superuser without an
  agency; every demo account has the password ``DEMO_PASSWORD``;
- SSB's case "Operation Grey Ore": a family-run antimony smuggling ring led from abroad,
  with its persons (identifiers, addresses, E.164 phones, emails) and companies in SSB's
  master index, its parties (eight arrested, the ringleader wanted), the investigator's
  notes; the links between them (family: sibling, spouse, cousin, in-law; ownership with
  shares and directorships, nominees included, of the shell companies; the financier's
  payments); two export licences (one valid, one expired); its shipments through Vietnam and
  Thailand (mis-declared as lead or zinc, unlicensed or under the expired licence, one
  seized at the border) and the prosecutions of the eight arrested, at every stage from
  investigation to final judgment, with their charges and sentences;
- ASB's small case about a gallium shipment intercepted at Qinzhou port, shared read-only with
  SSB. Its consignee and forwarder are ASB's own records of two companies SSB also holds
  (same registration numbers), so cross-referencing has something to find across agencies;
- ASB's case "Operation Dark Crystal": another group, smuggling germanium through Mong Cai
  (VN), with its parties, links, seized shipment and prosecutions;
- a few hundred background shipments in both agencies (generated from a fixed seed, with
  their own small pool of organisations and licences), so lists and filters have something
  to show.

Idempotent: records are looked up by stable keys (username, agency code, unit code, case
title and agency, ``source="demo"`` + ``source_id`` for persons, organisations and shipments,
the case and entity for a party, case + author + body for a note, case + agency + unit for a
share, ``provenance_source="demo"`` + ``provenance_id`` for a link, agency + number for a
licence, case + defendant for a prosecution, ``source="demo-background"`` + ``source_id`` for
the background records).
Accounts are brought to the state described here (through ``accounts.services``, which audits
each change); case content that already exists is left as it is, so edits made while
demonstrating survive a reload. Every record created gets its audit event
(``core.services.audit_create``; a shipment's legs and a prosecution's charges are part of
it), all in one transaction; the background shipments, bulk-inserted, get one ``import``
event per agency instead. A second run writes nothing.

To extend: add a module-level constant holding the data and a ``load_<part>`` method on
``DemoLoader``, then name it in ``DemoLoader.STEPS``.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction

from accounts.choices import Clearance, Role
from accounts.models import Agency, Unit, User
from accounts.services import agency_ensure, unit_ensure, user_ensure
from audit.services import record
from cases.choices import CaseStatus, CustodyStatus, PartyRole, Priority, ShareAccess
from cases.commodities import COMMODITIES
from cases.models import Case, CaseParty, CaseShare, Commodity, Note, Prosecution
from cases.services import case_next_reference, prosecution_set_charges
from core.services import audit_create
from entities.models import Link, Organization, OrganizationKind, Person
from shipments.models import Licence, Shipment, ShipmentLeg

DEMO_PASSWORD = "demo-password-2026"
SOURCE = "demo"

# --- accounts ------------------------------------------------------------------------------

AGENCIES: list[dict[str, Any]] = [
    {
        "code": "SSB",
        "name": "State Security Bureau",
        "contact": "Economic Security Duty Desk, +86 10 5550 0110",
        "units": [("econ", "Economic security"), ("cyber", "Cyber")],
    },
    {
        "code": "ASB",
        "name": "Customs Anti-Smuggling Bureau",
        "contact": "Anti-Smuggling Liaison Desk, +86 20 5550 0220",
        "units": [("ports", "Port enforcement"), ("intel", "Intelligence")],
    },
]

ROLE_CLEARANCE: dict[str, str] = {
    Role.VIEWER: Clearance.RESTRICTED,
    Role.ANALYST: Clearance.CONFIDENTIAL,
    Role.INVESTIGATOR: Clearance.SECRET,
    Role.SUPERVISOR: Clearance.SECRET,
    Role.AUDITOR: Clearance.SECRET,
    Role.AGENCY_ADMIN: Clearance.SECRET,
}

# One user of every role per agency: `<prefix>-<role>`, all in the agency's `unit`.
USER_GROUPS: list[dict[str, str]] = [
    {"agency": "SSB", "prefix": "demo", "unit": "econ"},
    {"agency": "ASB", "prefix": "asb", "unit": "ports"},
]

SUPERUSER = "admin"

# --- the agencies' master indexes ------------------------------------------------------------
# Keyed by agency code; each entry is the model's fields plus `source_id` (source is "demo").
# Values are stored as the API would store them: phones in E.164, identifier numbers compacted and
# valid where python-stdnum checks them (CN resident ids, USCC, SG UEN, VN MST, TH MOA numbers).


def _id(scheme: str, number: str, country: str = "CN") -> dict[str, str]:
    return {"scheme": scheme, "number": number, "country": country}


def _addr(text: str, country: str) -> dict[str, str]:
    return {"text": text, "country": country}


PERSONS: dict[str, list[dict[str, Any]]] = {
    "SSB": [
        {
            "source_id": "luo-jianguo",
            "name": "Luo Jianguo",
            "names": ["罗建国", "LUO Jian Guo"],
            "gender": "male",
            "birth_date": date(1969, 3, 18),
            "birth_place": "Lengshuijiang, Hunan",
            "nationalities": ["CN"],
            "identifiers": [_id("national_id", "432502196903183135"), _id("passport", "EJ4172093")],
            "addresses": [_addr("Villa 14, Street 7, Al Barsha 2, Dubai", "AE"),
                          _addr("Luo family house, Xikuangshan Village, Lengshuijiang, Hunan", "CN")],
            "phones": ["+971504817263", "+8613107350218"],
            "emails": ["jg.luo@gulf-meridian.example", "luojianguo69@mail.example"],
            "notes": "Ringleader. Lives in Dubai (AE) since 2019. Finances the operation and orders antimony "
                     "from domestic producers through Grand Harvest (HK), Silver Peak (SG) and Gulf Meridian (AE).",
        },
        {
            "source_id": "luo-jianhua",
            "name": "Luo Jianhua",
            "names": ["罗建华"],
            "gender": "male",
            "birth_date": date(1972, 11, 2),
            "birth_place": "Lengshuijiang, Hunan",
            "nationalities": ["CN"],
            "identifiers": [_id("national_id", "432502197211024533")],
            "addresses": [_addr("Building 3, Unit 2, Room 601, Jinzhu Road, Lengshuijiang, Hunan", "CN")],
            "phones": ["+8615877104629"],
            "emails": ["luo.jianhua@mail.example"],
            "notes": "Younger brother of Luo Jianguo. Runs the domestic side: places the orders with the "
                     "producers on the shell companies' letterhead and arranges pick-up.",
        },
        {
            "source_id": "luo-meiling",
            "name": "Luo Meiling",
            "names": ["罗美玲"],
            "gender": "female",
            "birth_date": date(1975, 6, 27),
            "birth_place": "Lengshuijiang, Hunan",
            "nationalities": ["CN"],
            "identifiers": [_id("national_id", "432502197506276244")],
            "addresses": [_addr("Room 1802, Tower B, Yongjiang Garden, Qingxiu District, Nanning, Guangxi", "CN")],
            "phones": ["+8618977120354"],
            "emails": ["meiling.luo@mail.example"],
            "notes": "Sister of Luo Jianguo. Prepares the export paperwork declaring antimony ingots as lead "
                     "alloy and zinc concentrate, filed through the freight forwarder.",
        },
        {
            "source_id": "chen-xiuying",
            "name": "Chen Xiuying",
            "names": ["陈秀英"],
            "gender": "female",
            "birth_date": date(1971, 9, 9),
            "birth_place": "Changsha, Hunan",
            "nationalities": ["CN"],
            "identifiers": [_id("national_id", "430100197109092445"), _id("passport", "EH6620817")],
            "addresses": [_addr("Villa 14, Street 7, Al Barsha 2, Dubai", "AE"),
                          _addr("Flat 9C, Block 2, Lotus Terrace, Yau Ma Tei, Kowloon", "HK")],
            "phones": ["+85291837264", "+8613977213586"],
            "emails": ["xiuying.chen@grandharvest.example"],
            "notes": "Wife of Luo Jianguo. Nominee director of Grand Harvest Trading (HK); receives the "
                     "proceeds in domestic accounts.",
        },
        {
            "source_id": "luo-zhiyong",
            "name": "Luo Zhiyong",
            "names": ["罗志勇"],
            "gender": "male",
            "birth_date": date(1983, 1, 15),
            "birth_place": "Lengshuijiang, Hunan",
            "nationalities": ["CN"],
            "identifiers": [_id("national_id", "432502198301151733")],
            "addresses": [_addr("Group 5, Xikuangshan Village, Lengshuijiang, Hunan", "CN")],
            "phones": ["+8613607742158"],
            "notes": "Cousin of Luo Jianguo. Drives consignments from Hunan to the Pingxiang border crossing "
                     "(Guangxi) into Vietnam.",
        },
        {
            "source_id": "wu-haifeng",
            "name": "Wu Haifeng",
            "names": ["吴海峰"],
            "gender": "male",
            "birth_date": date(1974, 4, 30),
            "birth_place": "Nanning, Guangxi",
            "nationalities": ["CN"],
            "identifiers": [_id("national_id", "450100197404305339"), _id("passport", "EK3098126")],
            "addresses": [_addr("Room 1802, Tower B, Yongjiang Garden, Qingxiu District, Nanning, Guangxi", "CN"),
                          _addr("Lot 45, Dinh Vu Industrial Zone, Hai Phong", "VN")],
            "phones": ["+8613317318096", "+84912837465"],
            "emails": ["haifeng.wu@mail.example"],
            "notes": "Husband of Luo Meiling (brother-in-law of the ringleader). Organises the transit leg: "
                     "relabelling in Hai Phong (VN) and re-export by sea via Laem Chabang (TH).",
        },
        {
            "source_id": "huang-guoqiang",
            "name": "Huang Guoqiang",
            "names": ["黄国强"],
            "gender": "male",
            "birth_date": date(1966, 12, 5),
            "birth_place": "Shenzhen, Guangdong",
            "nationalities": ["CN"],
            "identifiers": [_id("national_id", "440300196612057135")],
            "addresses": [_addr("Suite 2306, Jinhui Trade Centre, Luohu District, Shenzhen, Guangdong", "CN")],
            "phones": ["+8613707731542", "+85261728394"],
            "emails": ["hgq.exchange@mail.example"],
            "notes": "Underground banker in Shenzhen. Settles the USD paid to Gulf Meridian Metals (AE) into "
                     "RMB for the producers and the family.",
        },
        {
            "source_id": "zhou-peng",
            "name": "Zhou Peng",
            "names": ["周鹏"],
            "gender": "male",
            "birth_date": date(1988, 7, 21),
            "birth_place": "Hechi, Guangxi",
            "nationalities": ["CN"],
            "identifiers": [_id("national_id", "452701198807213936")],
            "addresses": [_addr("Unit 4, Xinjian Estate, Jinchengjiang District, Hechi, Guangxi", "CN")],
            "phones": ["+8618607718263"],
            "notes": "Truck driver; second courier on the Hechi-Pingxiang route.",
        },
        {
            "source_id": "sun-li",
            "name": "Sun Li",
            "names": ["孙丽"],
            "gender": "female",
            "birth_date": date(1990, 2, 14),
            "birth_place": "Nanning, Guangxi",
            "nationalities": ["CN"],
            "identifiers": [_id("national_id", "450103199002148244")],
            "addresses": [_addr("Room 305, Block 9, Youai Logistics Park, Xixiangtang, Nanning, Guangxi", "CN")],
            "phones": ["+8613978024716"],
            "emails": ["sun.li@jiayuan-freight.example"],
            "notes": "Customs declaration clerk at Nanning Jiayuan International Freight Forwarding; filed the "
                     "mis-declared export declarations.",
        },
    ],
    "ASB": [
        {
            "source_id": "deng-kaiwen",
            "name": "Deng Kaiwen",
            "names": ["邓凯文"],
            "gender": "male",
            "birth_date": date(1985, 8, 3),
            "birth_place": "Beihai, Guangxi",
            "nationalities": ["CN"],
            "identifiers": [_id("national_id", "450502198508031933")],
            "addresses": [_addr("Room 702, Haijing Mansion, Haicheng District, Beihai, Guangxi", "CN")],
            "phones": ["+8613507711249"],
            "emails": ["deng.kaiwen@xinrui-metal.example"],
            "notes": "General manager of Beihai Xinrui Metal Materials Trading; signed the export declaration.",
        },
        # Operation Dark Crystal: a separate group smuggling germanium through Mong Cai (VN).
        {
            "source_id": "guo-wenbin",
            "name": "Guo Wenbin",
            "names": ["郭文斌"],
            "gender": "male",
            "birth_date": date(1979, 5, 12),
            "birth_place": "Nanning, Guangxi",
            "nationalities": ["CN"],
            "identifiers": [_id("national_id", "452100197905125733"), _id("passport", "EG2281740")],
            "addresses": [_addr("Villa 6, Binhai Garden, Dongxing, Guangxi", "CN")],
            "phones": ["+8613877082531", "+84903718264"],
            "emails": ["guo.wenbin@huatai-trading.example"],
            "notes": "Leader of the Dongxing group; owns Dongxing Huatai Trading and sells germanium ingots to a "
                     "buyer in Malaysia through a Vietnamese importer.",
        },
        {
            "source_id": "li-na",
            "name": "Li Na",
            "names": ["李娜"],
            "gender": "female",
            "birth_date": date(1986, 10, 25),
            "birth_place": "Nanning, Guangxi",
            "nationalities": ["CN"],
            "identifiers": [_id("national_id", "452100198610252641")],
            "addresses": [_addr("Villa 6, Binhai Garden, Dongxing, Guangxi", "CN")],
            "phones": ["+8618677080412"],
            "notes": "Guo Wenbin's wife; carries the goods across the Beilun river bridge in her car.",
        },
        {
            "source_id": "tran-van-minh",
            "name": "Tran Van Minh",
            "names": ["Trần Văn Minh"],
            "gender": "male",
            "birth_date": date(1981, 2, 3),
            "birth_place": "Mong Cai, Quang Ninh",
            "nationalities": ["VN"],
            "identifiers": [_id("passport", "C4827316", "VN")],
            "addresses": [_addr("Lot 12, Ka Long Ward, Mong Cai, Quang Ninh", "VN")],
            "phones": ["+84912837466"],
            "notes": "Director of Minh Phat Import Export; receives the goods in Mong Cai and re-exports them.",
        },
    ],
}

ORGANIZATIONS: dict[str, list[dict[str, Any]]] = {
    "SSB": [
        {
            "source_id": "grand-harvest-hk",
            "name": "Grand Harvest Trading Limited",
            "names": ["宏丰贸易有限公司"],
            "kind": OrganizationKind.SHELL_COMPANY,
            "jurisdiction": "HK",
            "registration_number": "3187452",
            "incorporated_on": date(2022, 5, 10),
            "addresses": [_addr("Flat 9C, Block 2, Lotus Terrace, Yau Ma Tei, Kowloon", "HK")],
            "phones": ["+85291837264"],  # Chen Xiuying's mobile: the company shares a contact point with a suspect
            "emails": ["trade@grandharvest.example"],
            "notes": "Shell company; buyer of record on the producers' export contracts. Nominee director: "
                     "Chen Xiuying.",
        },
        {
            "source_id": "silver-peak-sg",
            "name": "Silver Peak Resources Pte. Ltd.",
            "kind": OrganizationKind.SHELL_COMPANY,
            "jurisdiction": "SG",
            "registration_number": "202437715C",
            "incorporated_on": date(2024, 9, 23),
            "addresses": [_addr("#07-03, 18 Harbour Lane, Singapore", "SG")],
            "phones": ["+6581736452"],
            "notes": "Shell company incorporated a week after antimony export licensing took effect "
                     "(2024-09-15); consignee of the re-exported goods.",
        },
        {
            "source_id": "gulf-meridian-ae",
            "name": "Gulf Meridian Metals FZE",
            "kind": OrganizationKind.SHELL_COMPANY,
            "jurisdiction": "AE",
            "registration_number": "FZE214387",
            "incorporated_on": date(2021, 11, 3),
            "addresses": [_addr("Warehouse LB-07, Jebel Ali Free Zone South, Dubai", "AE")],
            "phones": ["+971529183746"],
            "emails": ["accounts@gulf-meridian.example"],
            "notes": "Free-zone company in Jebel Ali; receives the final buyers' payments.",
        },
        {
            "source_id": "hunan-yuanfeng",
            "name": "Hunan Yuanfeng Antimony Smelting Co., Ltd.",
            "names": ["湖南源丰锑冶炼有限公司"],
            "kind": OrganizationKind.PRODUCER,
            "jurisdiction": "CN",
            "registration_number": "91431381MA4T2Y7K53",
            "incorporated_on": date(2008, 4, 22),
            "addresses": [_addr("Xikuangshan Industrial Park, Lengshuijiang, Hunan", "CN")],
            "phones": ["+8673189216653"],
            "emails": ["sales@yuanfeng-antimony.example"],
            "notes": "Antimony smelter in Lengshuijiang; sold ingots to Grand Harvest (HK).",
        },
        {
            "source_id": "guangxi-jinshan",
            "name": "Guangxi Hechi Jinshan Nonferrous Metals Co., Ltd.",
            "names": ["广西河池金山有色金属有限公司"],
            "kind": OrganizationKind.PRODUCER,
            "jurisdiction": "CN",
            "registration_number": "91451200MA5N8Q3L2U",
            "incorporated_on": date(2012, 10, 8),
            "addresses": [_addr("Jinchengjiang Industrial Zone, Hechi, Guangxi", "CN")],
            "notes": "Producer of antimony trioxide in Hechi; sold to Silver Peak (SG).",
        },
        {
            "source_id": "nanning-jiayuan",
            "name": "Nanning Jiayuan International Freight Forwarding Co., Ltd.",
            "names": ["南宁嘉远国际货运代理有限公司"],
            "kind": OrganizationKind.FREIGHT_FORWARDER,
            "jurisdiction": "CN",
            "registration_number": "91450100MA5P6W4R9T",
            "incorporated_on": date(2016, 3, 14),
            "addresses": [_addr("Room 305, Block 9, Youai Logistics Park, Xixiangtang, Nanning, Guangxi", "CN")],
            "phones": ["+867712871034"],
            "emails": ["customs@jiayuan-freight.example"],
            "notes": "Freight forwarder that filed the export declarations and booked the border trucks.",
        },
        {
            "source_id": "thanh-dat-vn",
            "name": "Thanh Dat Logistics Co., Ltd.",
            "names": ["Công ty TNHH Logistics Thành Đạt"],
            "kind": OrganizationKind.FREIGHT_FORWARDER,
            "jurisdiction": "VN",
            "registration_number": "0201587349",
            "incorporated_on": date(2019, 7, 1),
            "addresses": [_addr("Lot 45, Dinh Vu Industrial Zone, Hai Phong", "VN")],
            "phones": ["+84912837465"],  # Wu Haifeng's Vietnamese mobile
            "notes": "Relabels the cargo in Hai Phong and books the sea leg to Laem Chabang.",
        },
        {
            "source_id": "siam-coastal-th",
            "name": "Siam Coastal Shipping Co., Ltd.",
            "kind": OrganizationKind.FREIGHT_FORWARDER,
            "jurisdiction": "TH",
            "registration_number": "0105558034121",
            "incorporated_on": date(2015, 3, 2),
            "addresses": [_addr("Laem Chabang Port Zone, Si Racha, Chonburi", "TH")],
            "phones": ["+66812837465"],
            "notes": "Agent at Laem Chabang for the transhipment to Jebel Ali and Singapore.",
        },
        {
            "source_id": "nordwerk-de",
            "name": "Nordwerk Flammschutz GmbH",
            "kind": OrganizationKind.COMPANY,
            "jurisdiction": "DE",
            "registration_number": "HRB204518",
            "incorporated_on": date(1998, 6, 15),
            "addresses": [_addr("Industriestrasse 12, 21107 Hamburg", "DE")],
            "website": "nordwerk.example",
            "notes": "Flame-retardant maker; the licensed end user of Hunan Yuanfeng's legitimate exports.",
        },
        {
            "source_id": "hanseong-kr",
            "name": "Hanseong Chemical Co., Ltd.",
            "names": ["한성화학 주식회사"],
            "kind": OrganizationKind.COMPANY,
            "jurisdiction": "KR",
            "incorporated_on": date(2004, 9, 1),
            "notes": "End user named on Guangxi Jinshan's (now expired) licence for antimony trioxide.",
        },
    ],
    "ASB": [
        {
            "source_id": "beihai-xinrui",
            "name": "Beihai Xinrui Metal Materials Trading Co., Ltd.",
            "names": ["北海鑫瑞金属材料贸易有限公司"],
            "kind": OrganizationKind.TRADER,
            "jurisdiction": "CN",
            "registration_number": "91450500MA5R2D8J49",
            "incorporated_on": date(2024, 1, 9),
            "notes": "Exporter of record (consignor) of the intercepted shipment.",
        },
        # ASB's own records of two companies SSB also holds (same registration numbers).
        {
            "source_id": "silver-peak-sg",
            "name": "Silver Peak Resources Pte Ltd",
            "kind": OrganizationKind.TRADER,
            "jurisdiction": "SG",
            "registration_number": "202437715C",
            "notes": "Consignee of the intercepted shipment.",
        },
        {
            "source_id": "nanning-jiayuan",
            "name": "Nanning Jiayuan Intl Freight Forwarding Co Ltd",
            "names": ["南宁嘉远国际货运代理有限公司"],
            "kind": OrganizationKind.FREIGHT_FORWARDER,
            "jurisdiction": "CN",
            "registration_number": "91450100MA5P6W4R9T",
            "notes": "Forwarder that filed the export declaration.",
        },
        {
            "source_id": "dongxing-huatai",
            "name": "Dongxing Huatai Trading Co., Ltd.",
            "names": ["东兴华泰贸易有限公司"],
            "kind": OrganizationKind.TRADER,
            "jurisdiction": "CN",
            "registration_number": "91450681MA5K7R3H23",
            "incorporated_on": date(2023, 9, 4),
            "addresses": [_addr("Border Trade Zone, Dongxing, Guangxi", "CN")],
            "phones": ["+8613877082531"],  # Guo Wenbin's mobile
            "notes": "Exporter of record; declares germanium ingots as zinc alloy.",
        },
        {
            "source_id": "minh-phat-vn",
            "name": "Minh Phat Import Export Co., Ltd.",
            "names": ["Công ty TNHH Xuất nhập khẩu Minh Phát"],
            "kind": OrganizationKind.TRADER,
            "jurisdiction": "VN",
            "registration_number": "5701943629",
            "incorporated_on": date(2022, 12, 12),
            "addresses": [_addr("Lot 12, Ka Long Ward, Mong Cai, Quang Ninh", "VN")],
            "notes": "Consignee in Mong Cai; re-exports to Malaysia.",
        },
        {
            "source_id": "klang-meridian-my",
            "name": "Klang Meridian Metals Sdn. Bhd.",
            "kind": OrganizationKind.TRADER,
            "jurisdiction": "MY",
            "incorporated_on": date(2021, 4, 20),
            "notes": "Final buyer; orders through Minh Phat.",
        },
    ],
}

# --- cases ---------------------------------------------------------------------------------
# Keyed by a demo-internal key; looked up in the database by (agency, title).

GREY_ORE = "grey-ore"
GALLIUM_PORT = "gallium-port"
DARK_CRYSTAL = "dark-crystal"

CASES: dict[str, dict[str, Any]] = {
    GREY_ORE: {
        "agency": "SSB",
        "title": "Operation Grey Ore: family-run antimony smuggling ring",
        "summary": (
            "A family-run network led from abroad by Luo Jianguo (resident in Dubai) bought antimony ingots "
            "and trioxide from two domestic producers through shell companies in Hong Kong, Singapore and the "
            "UAE, without export licences. His brother, sister, wife, cousin and brother-in-law moved the goods "
            "overland to Hai Phong (VN) and by sea via Laem Chabang (TH), declared as lead alloy and zinc "
            "concentrate, before final delivery to buyers abroad; an underground banker in Shenzhen settled "
            "the payments. Eight suspects were arrested on 2026-09-09; the ringleader is wanted."
        ),
        "unit": "econ",
        "lead": "demo-investigator",
        "members": ["demo-analyst"],
        "classification": Clearance.CONFIDENTIAL,
        "priority": Priority.HIGH,
        "status": CaseStatus.INVESTIGATING,
        "commodities": ["antimony"],
        "tags": ["antimony", "family-ring", "third-country-transit", "shell-companies", "mis-declaration"],
        "opened_on": date(2026, 2, 16),
    },
    GALLIUM_PORT: {
        "agency": "ASB",
        "title": "Gallium shipment intercepted at Qinzhou port",
        "summary": (
            "1.2 t of 4N gallium metal declared as aluminium alloy scrap (HS 760200), consigned by Beihai Xinrui "
            "Metal Materials Trading to Silver Peak Resources (SG) via Hai Phong (VN); intercepted on container "
            "inspection at Qinzhou port on 2026-10-20. Shared read-only with SSB: the consignee is a shell "
            "company in SSB's Operation Grey Ore."
        ),
        "unit": "ports",
        "lead": "asb-investigator",
        "members": ["asb-analyst"],
        "classification": Clearance.RESTRICTED,
        "priority": Priority.MEDIUM,
        "status": CaseStatus.INVESTIGATING,
        "commodities": ["gallium"],
        "tags": ["gallium", "port-interception", "mis-declaration"],
        "opened_on": date(2026, 10, 21),
    },
    DARK_CRYSTAL: {
        "agency": "ASB",
        "title": "Operation Dark Crystal: germanium smuggled through Mong Cai",
        "summary": (
            "A group led by Guo Wenbin (Dongxing, Guangxi) exports germanium ingots declared as zinc alloy through "
            "his company Dongxing Huatai Trading to Minh Phat Import Export in Mong Cai (VN), which re-exports them "
            "by sea from Hai Phong to Klang Meridian Metals (MY). 850 kg were seized at the Dongxing border "
            "crossing on 2026-08-14; Guo Wenbin and his wife Li Na were arrested, the Vietnamese director is wanted."
        ),
        "unit": "intel",
        "lead": "asb-investigator",
        "members": ["asb-analyst"],
        "classification": Clearance.CONFIDENTIAL,
        "priority": Priority.HIGH,
        "status": CaseStatus.INVESTIGATING,
        "commodities": ["germanium"],
        "tags": ["germanium", "border-crossing", "third-country-transit", "mis-declaration"],
        "opened_on": date(2026, 6, 2),
    },
}

_P, _O = "person", "organization"
_NA = CustodyStatus.NOT_APPLICABLE

# Case key -> (entity kind, source_id, role, custody status, notes). Entities are the case agency's.
PARTIES: dict[str, list[tuple[str, str, str, str, str]]] = {
    GREY_ORE: [
        (_P, "luo-jianguo", PartyRole.RINGLEADER, CustodyStatus.WANTED,
         "Abroad (Dubai); finances the ring and orders through the shell companies."),
        (_P, "luo-jianhua", PartyRole.ORGANISER, CustodyStatus.ARRESTED, "Brother; domestic procurement."),
        (_P, "luo-meiling", PartyRole.FACILITATOR, CustodyStatus.ARRESTED, "Sister; mis-declared export papers."),
        (_P, "chen-xiuying", PartyRole.FACILITATOR, CustodyStatus.ARRESTED,
         "Wife; nominee director, receives proceeds."),
        (_P, "luo-zhiyong", PartyRole.COURIER, CustodyStatus.ARRESTED, "Cousin; border runs to Vietnam."),
        (_P, "wu-haifeng", PartyRole.ORGANISER, CustodyStatus.ARRESTED,
         "Brother-in-law; transit via Hai Phong (VN) and Laem Chabang (TH)."),
        (_P, "huang-guoqiang", PartyRole.FINANCIER, CustodyStatus.ARRESTED, "Underground banker, Shenzhen."),
        (_P, "zhou-peng", PartyRole.COURIER, CustodyStatus.ARRESTED, "Truck driver."),
        (_P, "sun-li", PartyRole.FACILITATOR, CustodyStatus.ARRESTED, "Declaration clerk at the forwarder."),
        (_O, "grand-harvest-hk", PartyRole.SHELL_COMPANY, _NA, "Buyer of record on the export contracts."),
        (_O, "silver-peak-sg", PartyRole.SHELL_COMPANY, _NA, "Consignee of the re-exports."),
        (_O, "gulf-meridian-ae", PartyRole.SHELL_COMPANY, _NA, "Receives the final buyers' payments."),
        (_O, "hunan-yuanfeng", PartyRole.PRODUCER, _NA, "Antimony ingots."),
        (_O, "guangxi-jinshan", PartyRole.PRODUCER, _NA, "Antimony trioxide."),
        (_O, "nanning-jiayuan", PartyRole.FACILITATOR, _NA, "Freight forwarder."),
        (_O, "thanh-dat-vn", PartyRole.FACILITATOR, _NA, "Relabelling and re-export in Hai Phong (VN)."),
    ],
    GALLIUM_PORT: [
        (_P, "deng-kaiwen", PartyRole.SUSPECT, CustodyStatus.DETAINED, "Signed the export declaration."),
        (_O, "beihai-xinrui", PartyRole.SUSPECT, _NA, "Consignor."),
        (_O, "silver-peak-sg", PartyRole.BUYER, _NA, "Consignee; see SSB's Operation Grey Ore."),
        (_O, "nanning-jiayuan", PartyRole.FACILITATOR, _NA, "Forwarder."),
    ],
    DARK_CRYSTAL: [
        (_P, "guo-wenbin", PartyRole.RINGLEADER, CustodyStatus.ARRESTED, "Owner of Dongxing Huatai; organises sales."),
        (_P, "li-na", PartyRole.COURIER, CustodyStatus.ARRESTED, "Wife; drives the goods across the border."),
        (_P, "tran-van-minh", PartyRole.FACILITATOR, CustodyStatus.WANTED, "Importer of record in Mong Cai."),
        (_O, "dongxing-huatai", PartyRole.SUSPECT, _NA, "Exporter of record."),
        (_O, "minh-phat-vn", PartyRole.FACILITATOR, _NA, "Consignee; re-exports to Malaysia."),
        (_O, "klang-meridian-my", PartyRole.BUYER, _NA, "Final buyer."),
    ],
}

# Case key -> (author username, body).
NOTES: dict[str, list[tuple[str, str]]] = {
    GREY_ORE: [
        ("demo-investigator",
         "Hunan Yuanfeng's sales ledger shows 212 t of antimony ingots invoiced to Grand Harvest Trading (HK) "
         "between 2024-10 and 2026-06. No export licence application on file for any of them."),
        ("demo-investigator",
         "Extraction of Luo Jianhua's phone: a family chat group with the ringleader, his sister, cousin and "
         "brother-in-law. Orders are placed by Luo Jianguo from Dubai and confirmed by Jianhua with the "
         "producers. Translation filed as evidence."),
        ("demo-investigator",
         "Coordinated arrests on 2026-09-09 in Lengshuijiang, Nanning, Hechi and Pingxiang: eight suspects. "
         "Wanted notice for Luo Jianguo drafted for supervisor review."),
    ],
    DARK_CRYSTAL: [
        ("asb-investigator",
         "Seizure at the Dongxing border crossing: 850 kg of germanium ingots (99.999 %) in drums labelled "
         "zinc alloy, in Li Na's car. Phone of Guo Wenbin shows orders from Klang Meridian via Minh Phat."),
    ],
    GALLIUM_PORT: [
        ("asb-investigator",
         "X-ray anomaly on container inspection; 48 drums of gallium ingots under a layer of aluminium scrap. "
         "Consignee matches a shell company in an SSB case: case shared with SSB read-only."),
    ],
}

# Case key -> shares: {agency, unit (None: the whole agency), access, shared_by}.
SHARES: dict[str, list[dict[str, Any]]] = {
    GALLIUM_PORT: [
        {"agency": "SSB", "unit": None, "access": ShareAccess.READ, "shared_by": "asb-supervisor"},
    ],
}

# --- links between the entities --------------------------------------------------------------
# Agency code -> (key, kind, subtype, source, target, values, case key). `key` is the link's stable
# provenance id (provenance_source "demo"); source and target are (entity kind, source_id) of the agency.

_L = tuple[str, str, str, tuple[str, str], tuple[str, str], dict[str, Any], str | None]
LINKS: dict[str, list[_L]] = {
    "SSB": [
        # the family
        ("jianguo-jianhua-sibling", "family", "sibling", (_P, "luo-jianguo"), (_P, "luo-jianhua"),
         {"confidence": "confirmed"}, GREY_ORE),
        ("jianguo-meiling-sibling", "family", "sibling", (_P, "luo-jianguo"), (_P, "luo-meiling"),
         {"confidence": "confirmed"}, GREY_ORE),
        ("jianhua-meiling-sibling", "family", "sibling", (_P, "luo-jianhua"), (_P, "luo-meiling"),
         {"confidence": "confirmed"}, GREY_ORE),
        ("jianguo-xiuying-spouse", "family", "spouse", (_P, "luo-jianguo"), (_P, "chen-xiuying"),
         {"confidence": "confirmed", "start_date": date(1994, 10, 1)}, GREY_ORE),
        ("jianguo-zhiyong-cousin", "family", "cousin", (_P, "luo-jianguo"), (_P, "luo-zhiyong"),
         {"confidence": "confirmed"}, GREY_ORE),
        ("meiling-haifeng-spouse", "family", "spouse", (_P, "luo-meiling"), (_P, "wu-haifeng"),
         {"confidence": "confirmed", "start_date": date(1999, 5, 1)}, GREY_ORE),
        ("haifeng-jianguo-in-law", "family", "in_law", (_P, "wu-haifeng"), (_P, "luo-jianguo"),
         {"confidence": "confirmed", "description": "Brother-in-law (husband of Luo Meiling)."}, GREY_ORE),
        # the helpers
        ("zhiyong-zhoupeng-associate", "associate", "", (_P, "luo-zhiyong"), (_P, "zhou-peng"),
         {"confidence": "probable", "description": "Drive the Hechi-Pingxiang route together."}, GREY_ORE),
        ("sunli-jiayuan-employment", "employment", "declaration_clerk", (_P, "sun-li"), (_O, "nanning-jiayuan"),
         {"confidence": "confirmed", "start_date": date(2018, 3, 1)}, GREY_ORE),
        ("haifeng-thanhdat-representation", "representation", "agent", (_P, "wu-haifeng"), (_O, "thanh-dat-vn"),
         {"confidence": "probable", "description": "Gives Thanh Dat its instructions in Hai Phong."}, GREY_ORE),
        # who owns and runs the shell companies
        ("xiuying-grandharvest-owner", "ownership", "shareholder", (_P, "chen-xiuying"), (_O, "grand-harvest-hk"),
         {"share_pct": "100", "confidence": "confirmed", "start_date": date(2022, 5, 10),
          "description": "Nominee shareholder of record (HK Companies Registry)."}, GREY_ORE),
        ("jianguo-grandharvest-beneficial", "ownership", "beneficial_owner", (_P, "luo-jianguo"),
         (_O, "grand-harvest-hk"), {"share_pct": "100", "confidence": "probable"}, GREY_ORE),
        ("xiuying-grandharvest-director", "directorship", "nominee_director", (_P, "chen-xiuying"),
         (_O, "grand-harvest-hk"), {"confidence": "confirmed", "start_date": date(2022, 5, 10)}, GREY_ORE),
        ("jianguo-gulfmeridian-owner", "ownership", "shareholder", (_P, "luo-jianguo"), (_O, "gulf-meridian-ae"),
         {"share_pct": "100", "confidence": "confirmed", "start_date": date(2021, 11, 3)}, GREY_ORE),
        ("jianguo-gulfmeridian-director", "directorship", "director", (_P, "luo-jianguo"),
         (_O, "gulf-meridian-ae"), {"confidence": "confirmed", "start_date": date(2021, 11, 3)}, GREY_ORE),
        ("gulfmeridian-silverpeak-owner", "ownership", "shareholder", (_O, "gulf-meridian-ae"),
         (_O, "silver-peak-sg"), {"share_pct": "70", "confidence": "confirmed"}, GREY_ORE),
        ("jianhua-silverpeak-owner", "ownership", "shareholder", (_P, "luo-jianhua"), (_O, "silver-peak-sg"),
         {"share_pct": "30", "confidence": "confirmed"}, GREY_ORE),
        ("meiling-silverpeak-director", "directorship", "nominee_director", (_P, "luo-meiling"),
         (_O, "silver-peak-sg"), {"confidence": "confirmed", "start_date": date(2024, 9, 23)}, GREY_ORE),
        # the money
        ("gulfmeridian-huang-financing", "financing", "settlement", (_O, "gulf-meridian-ae"),
         (_P, "huang-guoqiang"), {"amount": "3400000", "currency": "USD", "start_date": date(2025, 1, 6),
                                  "end_date": date(2026, 8, 28), "confidence": "confirmed",
                                  "description": "Buyers' USD, paid to Huang's offshore accounts."}, GREY_ORE),
        ("huang-yuanfeng-financing", "financing", "payment", (_P, "huang-guoqiang"), (_O, "hunan-yuanfeng"),
         {"amount": "18500000", "currency": "CNY", "start_date": date(2024, 10, 15), "end_date": date(2026, 6, 30),
          "confidence": "confirmed", "description": "RMB settlement of the ingot invoices."}, GREY_ORE),
        ("huang-jinshan-financing", "financing", "payment", (_P, "huang-guoqiang"), (_O, "guangxi-jinshan"),
         {"amount": "6200000", "currency": "CNY", "start_date": date(2025, 2, 3), "end_date": date(2026, 3, 20),
          "confidence": "confirmed", "description": "RMB settlement of the trioxide invoices."}, GREY_ORE),
        ("huang-jianhua-financing", "financing", "payment", (_P, "huang-guoqiang"), (_P, "luo-jianhua"),
         {"amount": "1250000", "currency": "CNY", "confidence": "probable",
          "description": "The family's share, paid out in cash and to Chen Xiuying's accounts."}, GREY_ORE),
    ],
    "ASB": [
        ("guo-lina-spouse", "family", "spouse", (_P, "guo-wenbin"), (_P, "li-na"), {"confidence": "confirmed"},
         DARK_CRYSTAL),
        ("guo-huatai-owner", "ownership", "shareholder", (_P, "guo-wenbin"), (_O, "dongxing-huatai"),
         {"share_pct": "80", "confidence": "confirmed"}, DARK_CRYSTAL),
        ("lina-huatai-owner", "ownership", "shareholder", (_P, "li-na"), (_O, "dongxing-huatai"),
         {"share_pct": "20", "confidence": "confirmed"}, DARK_CRYSTAL),
        ("guo-huatai-director", "directorship", "director", (_P, "guo-wenbin"), (_O, "dongxing-huatai"),
         {"confidence": "confirmed"}, DARK_CRYSTAL),
        ("tran-minhphat-director", "directorship", "director", (_P, "tran-van-minh"), (_O, "minh-phat-vn"),
         {"confidence": "probable"}, DARK_CRYSTAL),
        ("guo-tran-associate", "associate", "", (_P, "guo-wenbin"), (_P, "tran-van-minh"),
         {"confidence": "confirmed"}, DARK_CRYSTAL),
        ("klang-huatai-financing", "financing", "prepayment", (_O, "klang-meridian-my"), (_O, "dongxing-huatai"),
         {"amount": "640000", "currency": "USD", "start_date": date(2026, 7, 1), "confidence": "probable"},
         DARK_CRYSTAL),
    ],
}

# --- export licences -------------------------------------------------------------------------
# Agency code -> licences (looked up by agency and number); holder and end user are (kind, source_id).

LICENCES: dict[str, list[dict[str, Any]]] = {
    "SSB": [
        {"number": "MOFCOM-EXP-2025-SB-00417", "holder": (_O, "hunan-yuanfeng"), "commodity": "antimony",
         "max_quantity_kg": "50000", "destination_country": "DE", "end_user": (_O, "nordwerk-de"),
         "valid_from": date(2025, 1, 10), "valid_to": date(2026, 12, 31), "status": "valid"},
        {"number": "MOFCOM-EXP-2024-SB-00152", "holder": (_O, "guangxi-jinshan"), "commodity": "antimony",
         "max_quantity_kg": "20000", "destination_country": "KR", "end_user": (_O, "hanseong-kr"),
         "valid_from": date(2024, 10, 8), "valid_to": date(2025, 10, 7), "status": "expired"},
    ],
}

# --- shipments -------------------------------------------------------------------------------
# Agency code -> shipments (source "demo" + source_id). `parties` maps a party field to (kind, source_id),
# `licence` is a licence number of the agency, `legs` the route in order, `cases` case keys.
# Transit countries and the departure date are derived from the legs (Shipment.derive_from_legs).


def _leg(from_country: str, from_port: str, to_country: str, to_port: str, mode: str, departed: date | None,
         arrived: date | None = None, **extra: str) -> dict[str, Any]:
    return {"from_country": from_country, "from_port": from_port, "to_country": to_country, "to_port": to_port,
            "mode": mode, "departed_on": departed, "arrived_on": arrived, **extra}


SHIPMENTS: dict[str, list[dict[str, Any]]] = {
    "SSB": [
        {
            "source_id": "go-2025-04-yuanfeng",
            "reference": "PXG-HPH-250408-01",
            "commodity": "antimony", "hs_code": "811010", "declared_hs_code": "7801",
            "declared_description": "Unwrought lead alloy ingots",
            "quantity_kg": "24000", "purity_pct": "99.650", "declared_value": "31200", "currency": "USD",
            "origin_country": "CN", "destination_country": "AE", "status": "delivered",
            "parties": {"consignor": (_O, "hunan-yuanfeng"), "consignee": (_O, "gulf-meridian-ae"),
                        "notify_party": (_O, "nanning-jiayuan"), "ordering_party": (_O, "grand-harvest-hk")},
            "legs": [
                _leg("CN", "Pingxiang", "VN", "Hai Phong", "road", date(2025, 4, 8), date(2025, 4, 10),
                     carrier="Guangxi border trucking (hired by Nanning Jiayuan)", container="TGHU4172093"),
                _leg("VN", "Hai Phong", "TH", "Laem Chabang", "sea", date(2025, 4, 14), date(2025, 4, 19),
                     carrier="Thanh Dat Logistics", vessel="HAIAN STAR", container="TGHU4172093"),
                _leg("TH", "Laem Chabang", "AE", "Jebel Ali", "sea", date(2025, 4, 22), date(2025, 5, 6),
                     carrier="Siam Coastal Shipping", vessel="ANDAMAN TRADER", container="SCSU2281746"),
            ],
            "cases": [GREY_ORE],
        },
        {
            "source_id": "go-2025-11-jinshan",
            "reference": "PXG-HPH-251103-02",
            "commodity": "antimony", "hs_code": "282580", "declared_hs_code": "7901",
            "declared_description": "Unwrought zinc, alloyed",
            "quantity_kg": "18500", "purity_pct": "99.500", "declared_value": "42550", "currency": "USD",
            "origin_country": "CN", "destination_country": "SG", "status": "delivered",
            "licence": "MOFCOM-EXP-2024-SB-00152",  # expired on 2025-10-07, and issued for Korea
            "parties": {"consignor": (_O, "guangxi-jinshan"), "consignee": (_O, "silver-peak-sg"),
                        "notify_party": (_O, "thanh-dat-vn"), "ordering_party": (_O, "grand-harvest-hk")},
            "legs": [
                _leg("CN", "Pingxiang", "VN", "Hai Phong", "road", date(2025, 11, 3), date(2025, 11, 5),
                     carrier="Guangxi border trucking (hired by Nanning Jiayuan)"),
                _leg("VN", "Hai Phong", "SG", "Singapore", "sea", date(2025, 11, 9), date(2025, 11, 15),
                     carrier="Thanh Dat Logistics", vessel="LOTUS BRIDGE", container="TDLU8830215"),
            ],
            "cases": [GREY_ORE],
        },
        {
            "source_id": "go-2026-03-jinshan",
            "reference": "QZH-LCB-260312-07",
            "commodity": "antimony", "hs_code": "282580", "declared_hs_code": "7801",
            "declared_description": "Lead alloy, unwrought",
            "quantity_kg": "16000", "purity_pct": "99.500", "declared_value": "27200", "currency": "USD",
            "origin_country": "CN", "destination_country": "AE", "status": "delivered",
            "parties": {"consignor": (_O, "guangxi-jinshan"), "consignee": (_O, "gulf-meridian-ae"),
                        "ordering_party": (_O, "grand-harvest-hk")},
            "legs": [
                _leg("CN", "Qinzhou", "TH", "Laem Chabang", "sea", date(2026, 3, 12), date(2026, 3, 18),
                     carrier="Siam Coastal Shipping", vessel="GULF PEARL", container="SCSU5512906"),
                _leg("TH", "Laem Chabang", "AE", "Jebel Ali", "sea", date(2026, 3, 21), date(2026, 4, 4),
                     carrier="Siam Coastal Shipping", vessel="ANDAMAN TRADER", container="SCSU5512906"),
            ],
            "cases": [GREY_ORE],
        },
        {
            "source_id": "go-2026-09-seized",
            "reference": "PXG-HPH-260907-03",
            "commodity": "antimony", "hs_code": "811010", "declared_hs_code": "7801",
            "declared_description": "Unwrought lead alloy ingots",
            "quantity_kg": "21000", "purity_pct": "99.650", "declared_value": "27300", "currency": "USD",
            "origin_country": "CN", "destination_country": "SG", "status": "seized",
            "seized_on": date(2026, 9, 9), "seized_quantity_kg": "21000",
            "seizure_location": "Youyiguan border crossing, Pingxiang, Guangxi",
            "parties": {"consignor": (_O, "hunan-yuanfeng"), "consignee": (_O, "silver-peak-sg"),
                        "notify_party": (_O, "nanning-jiayuan"), "ordering_party": (_O, "grand-harvest-hk")},
            "legs": [
                _leg("CN", "Pingxiang", "VN", "Hai Phong", "road", date(2026, 9, 9),
                     carrier="Truck GUI-K 36871 (Zhou Peng, Luo Zhiyong)"),
                _leg("VN", "Hai Phong", "TH", "Laem Chabang", "sea", None, carrier="Thanh Dat Logistics"),
                _leg("TH", "Laem Chabang", "SG", "Singapore", "sea", None, carrier="Siam Coastal Shipping"),
            ],
            "cases": [GREY_ORE],
        },
        {
            "source_id": "yuanfeng-2025-06-licensed",
            "reference": "SHA-HAM-250617-11",
            "commodity": "antimony", "hs_code": "811010", "declared_hs_code": "811010",
            "declared_description": "Antimony ingots, 99.65 %",
            "quantity_kg": "12000", "purity_pct": "99.650", "declared_value": "468000", "currency": "USD",
            "origin_country": "CN", "destination_country": "DE", "status": "delivered",
            "licence": "MOFCOM-EXP-2025-SB-00417",
            "parties": {"consignor": (_O, "hunan-yuanfeng"), "consignee": (_O, "nordwerk-de")},
            "legs": [
                _leg("CN", "Shanghai", "DE", "Hamburg", "sea", date(2025, 6, 17), date(2025, 7, 24),
                     vessel="CMA CGM TAGE", container="CMAU7719302"),
            ],
            "cases": [],  # the producer's licensed trade, for comparison
        },
    ],
    "ASB": [
        {
            "source_id": "qinzhou-2026-10-gallium",
            "reference": "QZH-HPH-261020-05",
            "commodity": "gallium", "hs_code": "811292", "declared_hs_code": "760200",
            "declared_description": "Aluminium waste and scrap",
            "quantity_kg": "1200", "purity_pct": "99.990", "declared_value": "2400", "currency": "USD",
            "origin_country": "CN", "destination_country": "SG", "status": "intercepted",
            "parties": {"consignor": (_O, "beihai-xinrui"), "consignee": (_O, "silver-peak-sg"),
                        "notify_party": (_O, "nanning-jiayuan")},
            "legs": [
                _leg("CN", "Qinzhou", "VN", "Hai Phong", "sea", None, container="BXRU3308127"),
                _leg("VN", "Hai Phong", "SG", "Singapore", "sea", None, container="BXRU3308127"),
            ],
            "cases": [GALLIUM_PORT],
        },
        {
            "source_id": "dongxing-2026-08-germanium",
            "reference": "DXG-MCI-260814-01",
            "commodity": "germanium", "hs_code": "811292", "declared_hs_code": "7901",
            "declared_description": "Zinc alloy ingots",
            "quantity_kg": "850", "purity_pct": "99.999", "declared_value": "2975", "currency": "USD",
            "origin_country": "CN", "destination_country": "MY", "status": "seized",
            "seized_on": date(2026, 8, 14), "seized_quantity_kg": "850",
            "seizure_location": "Dongxing border crossing (Beilun river bridge), Guangxi",
            "parties": {"consignor": (_O, "dongxing-huatai"), "consignee": (_O, "minh-phat-vn"),
                        "ordering_party": (_O, "klang-meridian-my")},
            "legs": [
                _leg("CN", "Dongxing", "VN", "Mong Cai", "road", date(2026, 8, 14), carrier="Private car (Li Na)"),
                _leg("VN", "Hai Phong", "MY", "Port Klang", "sea", None, carrier="Minh Phat Import Export"),
            ],
            "cases": [DARK_CRYSTAL],
        },
    ],
}

# --- prosecutions ----------------------------------------------------------------------------
# Case key -> prosecutions (looked up by case and defendant); `defendant` is (kind, source_id) of the
# case's agency, `charges` (statute, description) in order. Stages as they stand after the arrests.

_ECL_34 = ("Export Control Law Art. 34", "Export of controlled items without a licence.")
_CUSTOMS_82 = ("Customs Law Art. 82", "Smuggling: evading customs control by false declaration.")
_CL_151 = ("Criminal Law Art. 151", "Smuggling of goods whose export the state prohibits or restricts.")
_CL_191 = ("Criminal Law Art. 191", "Money laundering of the proceeds of smuggling.")
_CL_225 = ("Criminal Law Art. 225", "Illegal business operation: unlicensed cross-border payments.")
_LOUDI = {"court": "Loudi Intermediate People's Court", "prosecutor_office": "Loudi Municipal People's Procuratorate"}
_FCG = {"court": "Fangchenggang Intermediate People's Court",
        "prosecutor_office": "Fangchenggang Municipal People's Procuratorate"}

PROSECUTIONS: dict[str, list[dict[str, Any]]] = {
    GREY_ORE: [
        {"defendant": (_P, "luo-jianhua"), **_LOUDI, "stage": "final", "filed_on": date(2026, 10, 12),
         "verdict": "convicted", "verdict_on": date(2026, 11, 6), "custody_months": 132,
         "fine_amount": "5000000", "fine_currency": "CNY",
         "confiscation": "Illegal gains of CNY 8.4 million; two trucks.", "charges": [_ECL_34, _CUSTOMS_82, _CL_151]},
        {"defendant": (_P, "luo-meiling"), **_LOUDI, "stage": "appeal", "filed_on": date(2026, 10, 12),
         "verdict": "convicted", "verdict_on": date(2026, 11, 6), "custody_months": 96,
         "fine_amount": "2000000", "fine_currency": "CNY", "charges": [_ECL_34, _CUSTOMS_82]},
        {"defendant": (_P, "wu-haifeng"), **_LOUDI, "stage": "verdict", "filed_on": date(2026, 10, 12),
         "verdict": "convicted", "verdict_on": date(2026, 11, 6), "custody_months": 84,
         "fine_amount": "1500000", "fine_currency": "CNY", "charges": [_ECL_34, _CUSTOMS_82]},
        {"defendant": (_P, "huang-guoqiang"), **_LOUDI, "stage": "trial", "filed_on": date(2026, 10, 20),
         "charges": [_CL_225, _CL_191]},
        {"defendant": (_P, "chen-xiuying"), **_LOUDI, "stage": "trial", "filed_on": date(2026, 10, 20),
         "charges": [_ECL_34, _CL_191]},
        {"defendant": (_P, "luo-zhiyong"), **_LOUDI, "stage": "indicted", "filed_on": date(2026, 11, 2),
         "charges": [_CUSTOMS_82]},
        {"defendant": (_P, "zhou-peng"), **_LOUDI, "stage": "indicted", "filed_on": date(2026, 11, 2),
         "charges": [_CUSTOMS_82]},
        {"defendant": (_P, "sun-li"), "prosecutor_office": _LOUDI["prosecutor_office"], "stage": "investigation",
         "charges": [("Customs Law Art. 82", "Smuggling: filing false export declarations.")]},
    ],
    DARK_CRYSTAL: [
        {"defendant": (_P, "guo-wenbin"), **_FCG, "stage": "indicted", "filed_on": date(2026, 10, 28),
         "charges": [_ECL_34, _CL_151]},
        {"defendant": (_P, "li-na"), "prosecutor_office": _FCG["prosecutor_office"], "stage": "investigation",
         "charges": [_CL_151]},
    ],
}

# --- background shipments --------------------------------------------------------------------
# A few hundred ordinary-looking shipments so that lists, filters and red-flag rules have something to
# show. Generated from a fixed seed (the same records every run), keyed by source "demo-background" and
# `<agency>-<NNNN>`; only missing ones are created, with bulk inserts. Their parties come from a small
# pool of background organisations and licences (created one by one, each audited).

BACKGROUND_SOURCE = "demo-background"
BACKGROUND_SEED = "operation-grey-ore"
BACKGROUND_SHIPMENTS: dict[str, int] = {"SSB": 160, "ASB": 140}

# Agency code -> (source_id, name, kind, jurisdiction): exporters at home, buyers and forwarders abroad.
BACKGROUND_ORGANIZATIONS: dict[str, list[tuple[str, str, str, str]]] = {
    "SSB": [
        ("hengxin-nonferrous", "Hengxin Nonferrous Trading Co., Ltd.", "trader", "CN"),
        ("xiangjiang-antimony", "Xiangjiang Antimony Products Co., Ltd.", "producer", "CN"),
        ("ganzhou-ruifeng", "Ganzhou Ruifeng Tungsten Co., Ltd.", "producer", "CN"),
        ("lanxing-rare-earth", "Lanxing Rare Earth Materials Co., Ltd.", "producer", "CN"),
        ("jixi-black-stone", "Jixi Black Stone Graphite Co., Ltd.", "producer", "CN"),
        ("ningbo-oceanlink", "Ningbo Oceanlink Freight Forwarding Co., Ltd.", "freight_forwarder", "CN"),
        ("rhein-ruhr-metall", "Rhein-Ruhr Metallhandel GmbH", "trader", "DE"),
        ("osaka-kinzoku", "Osaka Kinzoku Shoji K.K.", "trader", "JP"),
        ("anatolia-metal", "Anatolia Metal Ticaret A.S.", "trader", "TR"),
        ("mumbai-alloys", "Mumbai Alloys Pvt. Ltd.", "company", "IN"),
        ("rotterdam-minerals", "Rotterdam Minerals B.V.", "trader", "NL"),
        ("great-lakes-metals", "Great Lakes Specialty Metals Inc.", "company", "US"),
    ],
    "ASB": [
        ("beibu-gulf-metals", "Beibu Gulf Metals Trading Co., Ltd.", "trader", "CN"),
        ("yunnan-lincang-germanium", "Lincang Germanium Materials Co., Ltd.", "producer", "CN"),
        ("shanxi-gallium", "Taiyuan Gallium Technology Co., Ltd.", "producer", "CN"),
        ("qinzhou-haitong", "Qinzhou Haitong Freight Forwarding Co., Ltd.", "freight_forwarder", "CN"),
        ("saigon-lotus", "Saigon Lotus Logistics Co., Ltd.", "freight_forwarder", "VN"),
        ("busan-advanced", "Busan Advanced Materials Co., Ltd.", "company", "KR"),
        ("penang-semicon", "Penang Semiconductor Materials Sdn. Bhd.", "company", "MY"),
        ("antwerp-metals", "Antwerp Rare Metals N.V.", "trader", "BE"),
        ("vladivostok-trade", "Vladivostok Pacific Trade LLC", "trader", "RU"),
        ("istanbul-metal", "Istanbul Metal Ithalat Ltd. Sti.", "trader", "TR"),
    ],
}

# Agency code -> (number, holder source_id, commodity, max kg, destination).
BACKGROUND_LICENCES: dict[str, list[tuple[str, str, str, str, str]]] = {
    "SSB": [
        ("MOFCOM-EXP-2025-SB-01021", "xiangjiang-antimony", "antimony", "80000", "NL"),
        ("MOFCOM-EXP-2025-W-00388", "ganzhou-ruifeng", "tungsten", "120000", "JP"),
        ("MOFCOM-EXP-2025-RE-00071", "lanxing-rare-earth", "rare_earths", "30000", "DE"),
        ("MOFCOM-EXP-2024-GR-00913", "jixi-black-stone", "graphite", "500000", "US"),
    ],
    "ASB": [
        ("MOFCOM-EXP-2025-GE-00046", "yunnan-lincang-germanium", "germanium", "2000", "KR"),
        ("MOFCOM-EXP-2025-GA-00112", "shanxi-gallium", "gallium", "5000", "MY"),
    ],
}

BACKGROUND_PORTS: dict[str, list[str]] = {
    "CN": ["Shanghai", "Ningbo", "Qinzhou", "Tianjin", "Shenzhen", "Xiamen"], "VN": ["Hai Phong", "Ho Chi Minh City"],
    "TH": ["Laem Chabang"], "MY": ["Port Klang", "Penang"], "SG": ["Singapore"], "KR": ["Busan"], "AE": ["Jebel Ali"],
    "TR": ["Mersin", "Istanbul"], "DE": ["Hamburg"], "NL": ["Rotterdam"], "US": ["Los Angeles", "Houston"],
    "JP": ["Osaka", "Yokohama"], "IN": ["Nhava Sheva"], "BE": ["Antwerp"], "RU": ["Vladivostok"],
    "HK": ["Hong Kong"], "KZ": ["Khorgos"],
}
BACKGROUND_TRANSITS = ["VN", "TH", "MY", "SG", "KR", "AE", "TR", "HK", "KZ"]
BACKGROUND_DECOYS = {"7801": "Unwrought lead", "7901": "Unwrought zinc", "760200": "Aluminium waste and scrap",
                     "720299": "Ferro-alloys", "260800": "Zinc ores and concentrates"}
BACKGROUND_STATUSES = [("delivered", 50), ("in_transit", 14), ("declared", 14), ("intercepted", 8), ("seized", 8),
                       ("released", 6)]
BACKGROUND_VESSELS = ["EVER LUCID", "COSCO HARMONY", "MSC AURORA", "ONE TRUST", "HMM PRIDE", "YM WELLNESS",
                      "KOTA MEGAH", "WAN HAI 316"]
BACKGROUND_SEIZURE_PLACES = ["Qinzhou port", "Shanghai Yangshan port", "Pingxiang border crossing",
                             "Dongxing border crossing", "Ningbo-Zhoushan port", "Tianjin port"]


# --- the loader ----------------------------------------------------------------------------


class DemoLoader:
    """Loads the parts in STEPS order; each step may use what earlier steps loaded."""

    STEPS = (
        "load_agencies",
        "load_users",
        "load_persons",
        "load_organizations",
        "load_cases",
        "load_parties",
        "load_notes",
        "load_shares",
        "load_links",
        "load_licences",
        "load_shipments",
        "load_prosecutions",
        "load_background",
    )

    def __init__(self) -> None:
        self.created: Counter[str] = Counter()
        self.updated: Counter[str] = Counter()
        self.agencies: dict[str, Agency] = {}
        self.units: dict[tuple[str, str], Unit] = {}
        self.users: dict[str, User] = {}
        self.entities: dict[tuple[str, str, str], Person | Organization] = {}
        self.cases: dict[str, Case] = {}
        self.licences: dict[tuple[str, str], Licence] = {}

    def run(self) -> None:
        with transaction.atomic():
            for step in self.STEPS:
                getattr(self, step)()

    # --- helpers -------------------------------------------------------------------------

    def _ensure(
        self,
        model: type[models.Model],
        lookup: dict[str, Any],
        values: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
        *,
        m2m: dict[str, list[Any]] | None = None,
        audit_action: str = "create",
        prepare: Callable[[Any], None] | None = None,
        parts: Callable[[Any], None] | None = None,
    ) -> Any:
        """The record matching `lookup`, else a new one (validated, audited); existing ones are left alone.

        `prepare` derives fields of the new record before it is checked; `parts` writes the rows it owns
        (a shipment's legs, a prosecution's charges) before the audit event, which records them with it.
        """
        obj = model._default_manager.filter(**lookup).order_by("created_at").first()
        if obj is not None:
            return obj
        fields = values() if callable(values) else (values or {})
        obj = model(**lookup, **fields)
        if prepare is not None:
            prepare(obj)
        try:
            obj.full_clean()
        except ValidationError as exc:
            raise CommandError(f"demo data for {model._meta.verbose_name} {lookup}: {exc}") from exc
        obj.save()
        for name, items in (m2m or {}).items():
            getattr(obj, name).set(items)
        if parts is not None:
            parts(obj)
        audit_create(obj, action=audit_action)
        self.created[str(model._meta.verbose_name_plural)] += 1
        return obj

    def _user(self, username: str) -> User:
        if username not in self.users:
            raise CommandError(f"demo data names an unknown demo user {username!r}")
        return self.users[username]

    def _ensure_user(self, username: str, *, agency: Agency | None, unit: Unit | None, role: str,
                     clearance: str, superuser: bool = False) -> User:
        wanted = {"agency_id": agency.pk if agency else None, "unit_id": unit.pk if unit else None,
                  "role": role, "clearance": clearance, "is_staff": True, "is_superuser": superuser,
                  "is_active": True}
        user = User.objects.filter(username=username).first()
        if user is not None and all(getattr(user, k) == v for k, v in wanted.items()) \
                and user.check_password(DEMO_PASSWORD):
            return user  # already as described: no write, no audit event
        try:
            user, created = user_ensure(username=username, agency=agency, unit=unit, role=role,
                                        clearance=clearance, password=DEMO_PASSWORD, is_staff=True,
                                        is_superuser=superuser, is_active=True)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        (self.created if created else self.updated)["users"] += 1
        return user

    # --- steps ---------------------------------------------------------------------------

    def load_agencies(self) -> None:
        for spec in AGENCIES:
            existing = Agency.objects.filter(code=spec["code"]).first()
            agency, created = agency_ensure(code=spec["code"], name=spec["name"], contact=spec["contact"])
            if created:
                self.created["agencies"] += 1
            elif existing is not None and (existing.name, existing.contact) != (agency.name, agency.contact):
                self.updated["agencies"] += 1
            self.agencies[agency.code] = agency
            for code, name in spec["units"]:
                before = Unit.objects.filter(agency=agency, code=code).values_list("name", flat=True).first()
                unit, created = unit_ensure(agency=agency, code=code, name=name)
                if created:
                    self.created["units"] += 1
                elif before != name:
                    self.updated["units"] += 1
                self.units[agency.code, code] = unit

    def load_users(self) -> None:
        for group in USER_GROUPS:
            agency = self.agencies[group["agency"]]
            unit = self.units[agency.code, group["unit"]]
            for role in Role.values:
                username = f"{group['prefix']}-{role}"
                self.users[username] = self._ensure_user(
                    username, agency=agency, unit=unit, role=role, clearance=ROLE_CLEARANCE[role]
                )
        self.users[SUPERUSER] = self._ensure_user(
            SUPERUSER, agency=None, unit=None, role=Role.AGENCY_ADMIN, clearance=Clearance.SECRET,
            superuser=True,
        )

    def _load_entities(self, model: type[Person | Organization], kind: str,
                       data: dict[str, list[dict[str, Any]]]) -> None:
        for code, specs in data.items():
            agency = self.agencies[code]
            for spec in specs:
                fields = dict(spec)
                source_id = fields.pop("source_id")
                self.entities[code, kind, source_id] = self._ensure(
                    model, {"agency": agency, "source": SOURCE, "source_id": source_id}, fields
                )

    def load_persons(self) -> None:
        self._load_entities(Person, _P, PERSONS)

    def load_organizations(self) -> None:
        self._load_entities(Organization, _O, ORGANIZATIONS)

    def load_cases(self) -> None:
        for key, spec in CASES.items():
            agency = self.agencies[spec["agency"]]
            codes = spec["commodities"]
            commodities = list(Commodity.objects.filter(code__in=codes))
            if len(commodities) != len(codes):
                raise CommandError(f"commodities {codes} are not all seeded; run migrate first")

            def values(spec: dict[str, Any] = spec, agency: Agency = agency) -> dict[str, Any]:
                # Only called for a new case, so a reference number is never used up for nothing.
                return {
                    "reference": case_next_reference(agency=agency, year=spec["opened_on"].year),
                    "summary": spec["summary"],
                    "status": spec["status"],
                    "priority": spec["priority"],
                    "classification": spec["classification"],
                    "unit": self.units[agency.code, spec["unit"]],
                    "lead": self._user(spec["lead"]),
                    "opened_on": spec["opened_on"],
                    "tags": spec["tags"],
                }

            self.cases[key] = self._ensure(
                Case, {"agency": agency, "title": spec["title"]}, values,
                m2m={"members": [self._user(u) for u in spec["members"]], "commodities": commodities},
            )

    def load_parties(self) -> None:
        for key, parties in PARTIES.items():
            case = self.cases[key]
            for kind, source_id, role, custody, notes in parties:
                entity = self.entities.get((case.agency.code, kind, source_id))
                if entity is None:
                    raise CommandError(f"party {kind} {source_id!r} of {key} is not in the demo data")
                self._ensure(CaseParty, {"case": case, "entity": entity},
                             {"role": role, "custody_status": custody, "notes": notes})

    def load_notes(self) -> None:
        for key, notes in NOTES.items():
            for author, body in notes:
                self._ensure(Note, {"case": self.cases[key], "author": self._user(author), "body": body})

    def load_shares(self) -> None:
        for key, shares in SHARES.items():
            case = self.cases[key]
            for spec in shares:
                agency = self.agencies[spec["agency"]]
                unit = self.units[agency.code, spec["unit"]] if spec["unit"] else None
                self._ensure(CaseShare, {"case": case, "agency": agency, "unit": unit},
                             {"access": spec["access"], "shared_by": self._user(spec["shared_by"])},
                             audit_action="share")

    def _entity(self, code: str, ref: tuple[str, str]) -> Person | Organization:
        entity = self.entities.get((code, *ref))
        if entity is None:
            raise CommandError(f"demo data names {ref[0]} {ref[1]!r}, which {code}'s master index does not hold")
        return entity

    def load_links(self) -> None:
        for code, links in LINKS.items():
            agency = self.agencies[code]
            for key, kind, subtype, source, target, values, case_key in links:
                self._ensure(Link, {"agency": agency, "provenance_source": SOURCE, "provenance_id": key}, {
                    "kind": kind, "subtype": subtype, "source": self._entity(code, source),
                    "target": self._entity(code, target), "case": self.cases[case_key] if case_key else None,
                    **values,
                })

    def load_licences(self) -> None:
        for code, specs in LICENCES.items():
            agency = self.agencies[code]
            for spec in specs:
                fields = dict(spec)
                number, holder, end_user = fields.pop("number"), fields.pop("holder"), fields.pop("end_user", None)
                fields.update(holder=self._entity(code, holder), commodity_id=fields.pop("commodity"),
                              end_user=self._entity(code, end_user) if end_user else None)
                self.licences[code, number] = self._ensure(Licence, {"agency": agency, "number": number}, fields)

    def _licence(self, code: str, number: str) -> Licence:
        if (code, number) not in self.licences:
            raise CommandError(f"demo data names licence {number!r}, which {code} does not hold")
        return self.licences[code, number]

    def load_shipments(self) -> None:
        for code, specs in SHIPMENTS.items():
            agency = self.agencies[code]
            for spec in specs:
                fields = dict(spec)
                source_id, legs, parties = fields.pop("source_id"), fields.pop("legs"), fields.pop("parties")
                licence, case_keys = fields.pop("licence", None), fields.pop("cases")
                fields.update({role: self._entity(code, ref) for role, ref in parties.items()})
                fields.update(commodity_id=fields.pop("commodity"),
                              licence=self._licence(code, licence) if licence else None)
                self._ensure(
                    Shipment, {"agency": agency, "source": SOURCE, "source_id": source_id}, fields,
                    m2m={"cases": [self.cases[key] for key in case_keys]},
                    prepare=partial(Shipment.derive_from_legs, legs=legs), parts=partial(_write_legs, legs=legs),
                )

    def load_prosecutions(self) -> None:
        for key, specs in PROSECUTIONS.items():
            case = self.cases[key]
            for spec in specs:
                fields = dict(spec)
                defendant = self._entity(case.agency.code, fields.pop("defendant"))
                charges = [{"statute": statute, "description": text} for statute, text in fields.pop("charges")]
                self._ensure(Prosecution, {"case": case, "defendant": defendant}, fields,
                             parts=partial(_write_charges, charges=charges))

    def load_background(self) -> None:
        for code, count in BACKGROUND_SHIPMENTS.items():
            agency = self.agencies[code]
            pool = {
                source_id: self._ensure(Organization, {"agency": agency, "source": BACKGROUND_SOURCE,
                                                       "source_id": source_id},
                                        {"name": name, "kind": kind, "jurisdiction": jurisdiction})
                for source_id, name, kind, jurisdiction in BACKGROUND_ORGANIZATIONS[code]
            }
            licences = [
                self._ensure(Licence, {"agency": agency, "number": number},
                             {"holder": pool[holder], "commodity_id": commodity, "max_quantity_kg": max_kg,
                              "destination_country": destination, "valid_from": date(2025, 1, 1),
                              "valid_to": date(2026, 12, 31)})
                for number, holder, commodity, max_kg, destination in BACKGROUND_LICENCES[code]
            ]
            have = set(Shipment.objects.filter(agency=agency, source=BACKGROUND_SOURCE)
                       .values_list("source_id", flat=True))
            shipments: list[Shipment] = []
            legs: list[ShipmentLeg] = []
            for number in range(1, count + 1):
                source_id = f"{code}-{number:04d}"
                if source_id in have:
                    continue
                shipment, route = background_shipment(agency, source_id, list(pool.values()), licences)
                shipments.append(shipment)
                legs += [ShipmentLeg(shipment=shipment, seq=seq, **leg) for seq, leg in enumerate(route, start=1)]
            if not shipments:
                continue
            Shipment.objects.bulk_create(shipments, batch_size=500)
            ShipmentLeg.objects.bulk_create(legs, batch_size=1000)
            # One audit event for the whole bulk insert, as an import records its batch: a few hundred
            # generated rows would otherwise swamp the chain. Each background shipment carries its key.
            record(action="import", agency=agency, object_type="shipment",
                   changes={"source": [None, BACKGROUND_SOURCE], "created": [0, len(shipments)],
                            "source_ids": [None, [s.source_id for s in shipments]]})
            self.created["background shipments"] += len(shipments)


def _write_legs(shipment: Shipment, legs: list[dict[str, Any]]) -> None:
    ShipmentLeg.objects.bulk_create(ShipmentLeg(shipment=shipment, seq=seq, **leg) for seq, leg in enumerate(legs, 1))


def _write_charges(prosecution: Prosecution, charges: list[dict[str, str]]) -> None:
    prosecution_set_charges(prosecution=prosecution, charges=charges)


def background_shipment(agency: Agency, source_id: str, pool: list[Organization],
                        licences: list[Licence]) -> tuple[Shipment, list[dict[str, Any]]]:
    """The shipment `source_id` and its legs, the same on every run (its own seeded generator)."""
    rng = random.Random(f"{BACKGROUND_SEED}:{source_id}")
    exporters = [o for o in pool if o.jurisdiction == "CN" and o.kind != OrganizationKind.FREIGHT_FORWARDER]
    forwarders = [o for o in pool if o.kind == OrganizationKind.FREIGHT_FORWARDER]
    buyers = [o for o in pool if o.jurisdiction != "CN" and o.kind != OrganizationKind.FREIGHT_FORWARDER]
    commodity, name, hs_codes, _, _, unit_value = rng.choice(COMMODITIES)
    licence = next((lic for lic in licences if lic.commodity_id == commodity and rng.random() < 0.6), None)
    consignee = rng.choice(buyers)
    if licence is not None:
        consignor, destination = licence.holder, licence.destination_country
        consignee = next((b for b in buyers if b.jurisdiction == destination), consignee)
    else:
        consignor, destination = rng.choice(exporters), consignee.jurisdiction
    origin = "CN" if rng.random() < 0.9 else "HK"
    hs_code = rng.choice(hs_codes)
    declared = hs_code if rng.random() < 0.85 else rng.choice(sorted(BACKGROUND_DECOYS))
    quantity = Decimal(rng.randrange(200, 30000, 50))
    value = (quantity * Decimal(unit_value) * Decimal(rng.choice(["0.3", "0.8", "0.95", "1.0", "1.1"]))).quantize(
        Decimal("1"))
    transit = rng.sample([c for c in BACKGROUND_TRANSITS if c not in (origin, destination)],
                         rng.choices([0, 1, 2], weights=[55, 35, 10])[0])
    status = rng.choices([s for s, _ in BACKGROUND_STATUSES], weights=[w for _, w in BACKGROUND_STATUSES])[0]
    departed = date(2025, 1, 2) + timedelta(days=rng.randrange(0, 680))
    route: list[dict[str, Any]] = []
    stops = [origin, *transit, destination]
    when = departed
    for here, there in itertools.pairwise(stops):
        mode = "road" if {here, there} <= {"CN", "VN", "KZ"} else "rail" if there in ("KZ", "RU") else "sea"
        arrived = when + timedelta(days=rng.randrange(2, 25))
        route.append({"from_country": here, "from_port": rng.choice(BACKGROUND_PORTS[here]), "to_country": there,
                      "to_port": rng.choice(BACKGROUND_PORTS[there]), "mode": mode,
                      "vessel": rng.choice(BACKGROUND_VESSELS) if mode == "sea" else "",
                      "container": f"BGCU{rng.randrange(1000000, 9999999)}" if mode != "road" else "",
                      "departed_on": when, "arrived_on": arrived})
        when = arrived + timedelta(days=rng.randrange(1, 5))
    if status in ("declared", "in_transit", "intercepted", "seized"):
        route[-1]["arrived_on"] = None  # not there yet
    seized = status == "seized"
    shipment = Shipment(
        agency=agency, source=BACKGROUND_SOURCE, source_id=source_id,
        reference=f"BG{departed:%y%m%d}-{source_id}", commodity_id=commodity, hs_code=hs_code,
        declared_hs_code=declared, declared_description=BACKGROUND_DECOYS.get(declared, name),
        quantity_kg=quantity, purity_pct=Decimal(rng.choice(["95.000", "99.000", "99.500", "99.990"])),
        declared_value=value, currency="USD", origin_country=origin, destination_country=destination,
        consignor=consignor, consignee=consignee,
        notify_party=rng.choice(forwarders) if rng.random() < 0.5 else None,
        ordering_party=rng.choice(buyers) if rng.random() < 0.2 else None,
        licence=licence, status=status,
        seized_on=departed + timedelta(days=rng.randrange(0, 3)) if seized else None,
        seized_quantity_kg=quantity if seized else None,
        seizure_location=rng.choice(BACKGROUND_SEIZURE_PLACES) if seized else "",
    )
    shipment.derive_from_legs(route)
    return shipment, route


# --- the command ---------------------------------------------------------------------------


class Command(BaseCommand):
    help = ("Load the demo data set (fictional): two agencies, their users, three cases, background shipments. "
            "Idempotent.")

    def handle(self, *args: Any, **options: Any) -> None:
        loader = DemoLoader()
        loader.run()
        self.summary(loader)

    def summary(self, loader: DemoLoader) -> None:
        out = self.stdout
        if loader.created or loader.updated:
            done = []
            for verb, counts in (("created", loader.created), ("updated", loader.updated)):
                if counts:
                    done.append(f"{verb} " + ", ".join(f"{n} {label}" for label, n in counts.items()))
            out.write(self.style.SUCCESS("Demo data loaded (all names fictional): " + "; ".join(done) + "."))
        else:
            out.write(self.style.SUCCESS("Demo data already loaded: nothing changed (all names fictional)."))
        out.write("\nAgencies:")
        for code, agency in loader.agencies.items():
            units = ", ".join(u for (a, u) in loader.units if a == code)
            out.write(f"  {code}  {agency.name} (units: {units}; contact: {agency.contact})")
        out.write(f"\nUsers (password for all: {DEMO_PASSWORD}):")
        for group in USER_GROUPS:
            names = ", ".join(f"{group['prefix']}-{role}" for role in Role.values)
            out.write(f"  {group['agency']}/{group['unit']}: {names}")
        out.write(f"  {SUPERUSER}: superuser, no agency")
        out.write("\nCases:")
        for case in loader.cases.values():
            arrested = case.parties.filter(custody_status=CustodyStatus.ARRESTED).count()
            shared = ", ".join(f"{s.agency.code} ({s.access})" for s in case.shares.filter(archived=False))
            extra = f"; {arrested} arrested" if arrested else ""
            extra += f"; shared with {shared}" if shared else ""
            out.write(f"  {case.reference}  {case.title} [{case.classification}, {case.status}{extra}]")
            out.write(f"      {case.shipments.count()} shipments, {case.prosecutions.count()} prosecutions, "
                      f"{case.links.count()} links")
        background = Shipment.objects.filter(source=BACKGROUND_SOURCE).count()
        out.write(f"\nBackground: {background} shipments (source {BACKGROUND_SOURCE!r}) in "
                  f"{', '.join(BACKGROUND_SHIPMENTS)}.")
        out.write("\nAn API token:")
        out.write("  python manage.py issue_token demo-investigator")
        out.write('  curl -H "Authorization: Token <key>" http://127.0.0.1:8000/api/v1/cases/')
