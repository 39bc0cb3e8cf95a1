"""Shipments with their route legs and parties, and export licences."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models.functions import Upper

from core.models import AgencyOwnedModel


class Unaccented(models.Func):
    """unaccent() through the immutable wrapper the shipments' migration 0003 creates: an index expression may only
    call immutable functions, and unaccent() is only stable (its dictionary could change)."""

    function = "shipments_unaccent"
    output_field = models.TextField()


def searched_reference() -> Upper:
    """The reference as search matches it (`icontains` is UPPER(…) LIKE UPPER(…)); trigram-indexed."""
    return Upper("reference")


def searched_description() -> Upper:
    """The declared description as search matches it, accents removed; trigram-indexed (pg_trgm ignores case,
    so the one index serves both `LIKE` and word similarity)."""
    return Upper(Unaccented("declared_description"))


class ShipmentStatus(models.TextChoices):
    DECLARED = "declared"
    IN_TRANSIT = "in_transit"
    INTERCEPTED = "intercepted"
    SEIZED = "seized"
    DELIVERED = "delivered"
    RELEASED = "released"


class TransportMode(models.TextChoices):
    SEA = "sea"
    AIR = "air"
    ROAD = "road"
    RAIL = "rail"
    POST = "post"


class LicenceStatus(models.TextChoices):
    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    SUSPECTED_FORGERY = "suspected_forgery"


PARTY_ROLES = ("consignor", "consignee", "notify_party", "ordering_party")


class Licence(AgencyOwnedModel):
    number = models.CharField(max_length=100)
    holder = models.ForeignKey("entities.Entity", on_delete=models.PROTECT, related_name="licences_held")
    commodity = models.ForeignKey("cases.Commodity", on_delete=models.PROTECT, related_name="licences")
    max_quantity_kg = models.DecimalField(max_digits=16, decimal_places=3, null=True, blank=True)
    destination_country = models.CharField(max_length=2, blank=True)
    end_user = models.ForeignKey("entities.Entity", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="licences_as_end_user")
    valid_from = models.DateField(null=True, blank=True)
    valid_to = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=LicenceStatus.choices, default=LicenceStatus.VALID, db_index=True)

    class Meta:
        ordering = ["-valid_from", "number"]
        constraints = [models.UniqueConstraint(fields=["agency", "number"], name="licence_number_per_agency")]

    def __str__(self) -> str:
        return self.number


class Shipment(AgencyOwnedModel):
    snapshot_children = ("legs",)  # the legs are part of the shipment: core.snapshots audits them with it
    # Derived from the legs by `derive_from_legs` when the shipment has legs: a bulk writer writes them with any
    # change (an origin or destination moved changes which leg ends are transit countries).
    DERIVED_FIELDS = ("transit_countries", "departed_on")

    reference = models.CharField(max_length=100)
    commodity = models.ForeignKey("cases.Commodity", on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="shipments")
    hs_code = models.CharField(max_length=10, blank=True, help_text="What was actually carried")
    declared_hs_code = models.CharField(max_length=10, blank=True)
    declared_description = models.TextField(blank=True)
    quantity_kg = models.DecimalField(max_digits=16, decimal_places=3, null=True, blank=True, db_index=True)
    purity_pct = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    declared_value = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    origin_country = models.CharField(max_length=2, blank=True)
    destination_country = models.CharField(max_length=2, blank=True)
    transit_countries = ArrayField(models.CharField(max_length=2), default=list, blank=True,
                                   help_text="Derived from the legs: countries between origin and destination")
    departed_on = models.DateField(null=True, blank=True, db_index=True, help_text="Derived: the first leg's departure")
    consignor = models.ForeignKey("entities.Entity", on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="shipments_as_consignor")
    consignee = models.ForeignKey("entities.Entity", on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="shipments_as_consignee")
    notify_party = models.ForeignKey("entities.Entity", on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="shipments_as_notify_party")
    ordering_party = models.ForeignKey("entities.Entity", on_delete=models.PROTECT, null=True, blank=True,
                                       related_name="shipments_as_ordering_party")
    licence = models.ForeignKey(Licence, on_delete=models.PROTECT, null=True, blank=True, related_name="shipments")
    status = models.CharField(max_length=16, choices=ShipmentStatus.choices, default=ShipmentStatus.DECLARED)
    seized_on = models.DateField(null=True, blank=True)
    seized_quantity_kg = models.DecimalField(max_digits=16, decimal_places=3, null=True, blank=True)
    seizure_location = models.CharField(max_length=200, blank=True)
    cases = models.ManyToManyField("cases.Case", blank=True, related_name="shipments")
    source = models.CharField(max_length=100, blank=True)
    source_id = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-departed_on", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "source", "source_id"], condition=~models.Q(source_id=""),
                                    name="shipment_source_id_per_agency"),
        ]
        # Plain b-trees for the exact-match filters: `db_index` on a text column would add a second,
        # pattern-ops index that no query here uses and every insert (a bulk import's above all) pays for.
        indexes = [
            *(models.Index(fields=[name], name=f"shipment_{name}") for name in (
                "reference", "hs_code", "declared_hs_code", "origin_country", "destination_country", "status",
                "source")),
            GinIndex(fields=["transit_countries"], name="shipment_transit_countries"),
            models.Index(fields=["agency", "archived", "-departed_on"], name="shipment_agency_departed"),
            # Search (explore.search): the reference by substring, the description by substring and word similarity.
            GinIndex(OpClass(searched_reference(), name="gin_trgm_ops"), name="shipment_reference_trgm"),
            GinIndex(OpClass(searched_description(), name="gin_trgm_ops"), name="shipment_description_trgm"),
        ]

    def __str__(self) -> str:
        return self.reference

    def derive_from_legs(self, legs: list[ShipmentLeg] | list[dict]) -> None:
        """Transit countries (every leg end between origin and destination) and the departure date."""
        def get(leg, key):
            return leg.get(key) if isinstance(leg, dict) else getattr(leg, key)

        countries: list[str] = []
        for leg in legs:
            for key in ("from_country", "to_country"):
                country = get(leg, key)
                if country and country not in countries:
                    countries.append(country)
        ends = {self.origin_country, self.destination_country}
        self.transit_countries = [c for c in countries if c not in ends]
        departures = [get(leg, "departed_on") for leg in legs if get(leg, "departed_on")]
        self.departed_on = departures[0] if departures else None


class ShipmentLeg(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="legs")
    seq = models.PositiveSmallIntegerField()
    from_country = models.CharField(max_length=2, blank=True)
    from_port = models.CharField(max_length=100, blank=True)
    to_country = models.CharField(max_length=2, blank=True)
    to_port = models.CharField(max_length=100, blank=True)
    mode = models.CharField(max_length=8, choices=TransportMode.choices, blank=True)
    carrier = models.CharField(max_length=200, blank=True)
    vessel = models.CharField(max_length=200, blank=True)
    container = models.CharField(max_length=50, blank=True)
    departed_on = models.DateField(null=True, blank=True)
    arrived_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["shipment", "seq"]
        constraints = [models.UniqueConstraint(fields=["shipment", "seq"], name="leg_order_per_shipment")]

    def __str__(self) -> str:
        return f"{self.from_country}→{self.to_country}"
