from django.contrib.postgres.operations import TrigramExtension, UnaccentExtension
from django.db import migrations


class Migration(migrations.Migration):
    """Fuzzy, accent-insensitive name search needs pg_trgm and unaccent."""

    dependencies: list = []

    operations = [TrigramExtension(), UnaccentExtension()]
