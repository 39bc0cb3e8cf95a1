"""Shipment parties to the agency's organisations, as a shipments import names them."""

from __future__ import annotations

from typing import Any

from django.db import models

from entities.models import Entity, EntityType
from entities.normalize import company_core

from .models import ImportJob


class Parties:
    """Shipment parties to the agency's organisations: registration number + country, else normalised name
    (company_core) + country, else a new organisation. Remembered for the whole job."""

    def __init__(self, job: ImportJob) -> None:
        self.job = job
        self.by_number: dict[tuple[str, str], Any] = {}
        self.by_name: dict[tuple[str, str], Any] = {}
        self.created = 0

    def resolve(self, batch: list[dict[str, Any]]) -> list[Entity]:
        """Sets each row's party ids; returns the organisations it made for them, to be written (unsaved, for
        entities.bulk.entities_create)."""
        specs = list(dict.fromkeys(spec for values in batch for spec in values["__parties__"].values()))
        self._load(specs)
        new: list[Entity] = []
        ids: dict[tuple[str, str, str], Any] = {}
        for name, country, number in specs:
            core = company_core(name)
            pk = self._find(core, country, number)
            if pk is None:
                # Its kind and derived fields are made by the service that writes it (entities_create).
                entity = Entity(agency_id=self.job.agency_id, type=EntityType.ORGANIZATION, name=name,
                                jurisdiction=country, registration_number=number, source=self.job.source)
                new.append(entity)
                pk = self._remember(entity.pk, core, country, number)
            ids[(name, country, number)] = pk
        self.created += len(new)
        for values in batch:
            for role, spec in values.pop("__parties__").items():
                values[f"{role}_id"] = ids[spec]
        return new

    def _find(self, core: str, country: str, number: str) -> Any:
        if number and (number, country) in self.by_number:
            return self.by_number[(number, country)]
        return self.by_name.get((core, country))

    def _remember(self, pk: Any, core: str, country: str, number: str) -> Any:
        if number:
            self.by_number.setdefault((number, country), pk)
        return self.by_name.setdefault((core, country), pk)

    def _load(self, specs: list[tuple[str, str, str]]) -> None:
        """Remember the agency's organisations the specs may name (ids only: memory grows with the distinct
        parties of a job, not with its rows)."""
        numbers = {(n, c) for _, c, n in specs if n and (n, c) not in self.by_number}
        names = {(core, c) for name, c, _ in specs if (core := company_core(name), c) not in self.by_name}
        orgs = Entity.objects.filter(agency_id=self.job.agency_id, type=EntityType.ORGANIZATION, archived=False)
        if numbers:
            q = models.Q()
            for number, country in numbers:
                q |= models.Q(registration_number=number, jurisdiction=country)
            for pk, number, country in orgs.filter(q).order_by("created_at").values_list(
                    "pk", "registration_number", "jurisdiction"):
                self.by_number.setdefault((number, country), pk)
        cores = sorted({core for core, _ in names if core})
        if cores:
            found = orgs.filter(name_keys__overlap=cores, jurisdiction__in={c for _, c in names})
            for pk, country, keys in found.order_by("created_at").values_list("pk", "jurisdiction", "name_keys"):
                for core in keys:
                    if (core, country) in names:
                        self.by_name.setdefault((core, country), pk)
