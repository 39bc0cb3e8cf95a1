from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer"
    ANALYST = "analyst"
    INVESTIGATOR = "investigator"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    AGENCY_ADMIN = "agency_admin"


class Clearance(models.TextChoices):
    """Ordered: each level includes the ones before it."""

    UNCLASSIFIED = "unclassified"
    RESTRICTED = "restricted"
    CONFIDENTIAL = "confidential"
    SECRET = "secret"


CLEARANCE_ORDER = [c.value for c in Clearance]


def levels_up_to(clearance: str) -> list[str]:
    """The classifications a holder of `clearance` may read."""
    return CLEARANCE_ORDER[: CLEARANCE_ORDER.index(clearance) + 1]


def clears(clearance: str, classification: str) -> bool:
    return CLEARANCE_ORDER.index(clearance) >= CLEARANCE_ORDER.index(classification)
