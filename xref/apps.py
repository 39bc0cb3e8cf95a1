from django.apps import AppConfig


class XrefConfig(AppConfig):
    name = "xref"
    verbose_name = "Cross-referencing"

    def ready(self) -> None:
        from core import policy

        from .models import BlockKey, DeconflictionHit, IdentityMember, Match, XrefModel, XrefRun

        # A match is seen by whoever sees both of its records (so another agency's record never shows);
        # decided by the roles of `xref.decide`. A run is its agency's.
        policy.register(Match, view=policy.matches_visible, change=policy.matches_decidable)
        policy.register_agency_records(XrefRun, action="xref.run")
        # A deconfliction hit is its agency's alone (never through a shared case), and only workers write it.
        policy.register_agency_records(DeconflictionHit, action=None)
        for model in (BlockKey, IdentityMember, XrefModel):
            policy.register_internal(model)
