"""The admin's POST bodies of a case and of a prosecution, as a browser sends them (empty inline formsets)."""

from __future__ import annotations

from cases.models import Case


def management(*prefixes, initial=None):
    data = {}
    for prefix in prefixes:
        data[f"{prefix}-TOTAL_FORMS"] = "0"
        data[f"{prefix}-INITIAL_FORMS"] = str((initial or {}).get(prefix, 0))
    return data


def case_form(case=None, **overrides):
    case = case or Case(title="", status="open", priority="medium", classification="restricted", tags=[])
    data = {
        "title": case.title, "summary": case.summary, "status": case.status, "priority": case.priority,
        "classification": case.classification, "unit": case.unit_id or "", "lead": case.lead_id or "",
        "opened_on": case.opened_on or "", "tags": ",".join(case.tags),
        **management("parties", "notes", "shares"),
    }
    data.update(overrides)
    return data


def prosecution_form(prosecution, **overrides):
    data = {"defendant": str(prosecution.defendant_id), "court": prosecution.court,
            "prosecutor_office": prosecution.prosecutor_office, "stage": prosecution.stage,
            "filed_on": prosecution.filed_on or "", "verdict": prosecution.verdict,
            "verdict_on": prosecution.verdict_on or "", "custody_months": "", "fine_amount": "", "fine_currency": "",
            "confiscation": "", **management("charges", initial={"charges": prosecution.charges.count()})}
    data.update(overrides)
    return data
