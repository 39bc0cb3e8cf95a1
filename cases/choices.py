from django.db import models


class CaseStatus(models.TextChoices):
    OPEN = "open"
    INVESTIGATING = "investigating"
    REFERRED = "referred"
    CLOSED = "closed"


class Priority(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class PartyRole(models.TextChoices):
    RINGLEADER = "ringleader"
    FINANCIER = "financier"
    ORGANISER = "organiser"
    COURIER = "courier"
    FACILITATOR = "facilitator"
    PRODUCER = "producer"
    BUYER = "buyer"
    SUPPLIER = "supplier"
    SHELL_COMPANY = "shell_company"
    SUSPECT = "suspect"
    WITNESS = "witness"
    VICTIM = "victim"
    OTHER = "other"


class CustodyStatus(models.TextChoices):
    AT_LARGE = "at_large"
    WANTED = "wanted"
    DETAINED = "detained"
    ARRESTED = "arrested"
    CHARGED = "charged"
    RELEASED = "released"
    CONVICTED = "convicted"
    NOT_APPLICABLE = "not_applicable"


class ShareAccess(models.TextChoices):
    READ = "read"
    WRITE = "write"
