import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.db import migrations

import shipments.models

# unaccent() is only stable (its dictionary could change), and an index expression may call immutable functions
# only: this wrapper names the dictionary and vouches for it, so that the description's index can unaccent.
UNACCENT_FUNCTION = """
CREATE OR REPLACE FUNCTION shipments_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$
"""


class Migration(migrations.Migration):
    """Search finds shipments through trigram indexes on their reference and declared description (and their
    parties through the parties' own index), not by reading every shipment."""

    dependencies = [
        ('core', '0001_extensions'),
        ('shipments', '0002_plain_indexes'),
    ]

    operations = [
        migrations.RunSQL(UNACCENT_FUNCTION, "DROP FUNCTION IF EXISTS shipments_unaccent(text)"),
        migrations.AddIndex(
            model_name='shipment',
            index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper('reference'), name='gin_trgm_ops'), name='shipment_reference_trgm'),
        ),
        migrations.AddIndex(
            model_name='shipment',
            index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper(shipments.models.Unaccented('declared_description')), name='gin_trgm_ops'), name='shipment_description_trgm'),
        ),
    ]
