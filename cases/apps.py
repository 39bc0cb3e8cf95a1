from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = "Cases"

    def ready(self) -> None:
        from core import policy

        from .models import Case, CaseCounter, CaseParty, CaseShare, Evidence, Note, Prosecution

        policy.register(Case, view=policy.cases_visible, change=lambda user: policy.cases_writable(user, "case.change"))
        for model, action in ((CaseParty, "case.party"), (Note, "case.note"), (Prosecution, "case.party"),
                              (Evidence, "case.party")):
            policy.register_case_records(model, action=action)
        # Shares are the sharers' to read and write: the owning agency's supervisors.
        policy.register(CaseShare,
                        view=lambda user: CaseShare.objects.filter(
                            case__in=policy.cases_writable(user, "case.share").values("pk")),
                        change=lambda user: CaseShare.objects.filter(
                            case__in=policy.cases_writable(user, "case.share").values("pk")))
        policy.register_internal(CaseCounter)
