"""Controlled strategic minerals, from the public export-control announcements.

HS codes are the six-digit international codes named (or headed) by each announcement.
`reference_value_per_kg` is an indicative market price in USD used by the value-anomaly
red flag; it is a seed to be maintained, not an official valuation.
"""

import datetime
from typing import Any

COMMODITIES = [
    ("antimony", "Antimony", ["261710", "811010", "811020", "811090", "282580", "283090"],
     "MOFCOM/GAC announcement 2024 No. 33", datetime.date(2024, 9, 15), "40.00"),
    ("gallium", "Gallium", ["811292", "811299", "285000", "282590", "285390"],
     "MOFCOM/GAC announcement 2023 No. 23", datetime.date(2023, 8, 1), "600.00"),
    ("germanium", "Germanium", ["811292", "811299", "282560"],
     "MOFCOM/GAC announcement 2023 No. 23", datetime.date(2023, 8, 1), "2500.00"),
    ("graphite", "Graphite", ["250410", "250490", "380110", "380120", "380190"],
     "MOFCOM/GAC announcement 2023 No. 39 (headings 2504, 3801; ten-digit codes not checked)",
     datetime.date(2023, 12, 1), "1.50"),
    ("rare_earths", "Rare earths (Sm, Gd, Tb, Dy, Lu, Sc, Y)", ["280530", "284610", "284690"],
     "MOFCOM/GAC announcement 2025 No. 18 (headings 2805.30, 2846; ten-digit codes not checked)",
     datetime.date(2025, 4, 4), "300.00"),
    ("tungsten", "Tungsten", ["810110", "810194", "810196", "810197", "810199"],
     "MOFCOM/GAC announcement 2025 No. 10 (heading 8101; ten-digit codes not checked)",
     datetime.date(2025, 2, 4), "50.00"),
]


def seed_commodities(Commodity: Any) -> None:
    """Create or refresh the controlled commodities (idempotent)."""
    for code, name, hs_codes, regime, since, value in COMMODITIES:
        Commodity.objects.update_or_create(
            code=code,
            defaults={"name": name, "hs_codes": hs_codes, "control_regime": regime, "controlled_since": since,
                      "licence_required": True, "reference_value_per_kg": value, "currency": "USD"},
        )
