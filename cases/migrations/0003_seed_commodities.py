"""Seed the controlled commodities (the data lives in cases/commodities.py)."""

from django.db import migrations

from cases.commodities import COMMODITIES, seed_commodities


def seed(apps, schema_editor):
    seed_commodities(apps.get_model("cases", "Commodity"))


def unseed(apps, schema_editor):
    apps.get_model("cases", "Commodity").objects.filter(code__in=[c[0] for c in COMMODITIES]).delete()


class Migration(migrations.Migration):
    dependencies = [("cases", "0002_initial")]

    operations = [migrations.RunPython(seed, unseed)]
