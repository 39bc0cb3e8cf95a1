from django.core.management.base import BaseCommand, CommandError

from accounts.models import Agency
from audit.models import GLOBAL_CHAIN, ChainHead
from audit.services import verify_chain


class Command(BaseCommand):
    help = "Verify the audit hash chains; exit 0 when intact, non-zero with the first bad event otherwise."

    def add_arguments(self, parser):
        parser.add_argument("--agency", default=None, help="agency code; default: every chain")

    def handle(self, agency, **options):
        names = {str(a.pk): a.code for a in Agency.objects.all()}
        names[GLOBAL_CHAIN] = GLOBAL_CHAIN
        if agency:
            match = Agency.objects.filter(code=agency).first()
            if match is None:
                raise CommandError(f"no agency with code {agency!r}")
            chains = [str(match.pk)]
        else:
            chains = list(ChainHead.objects.order_by("chain").values_list("chain", flat=True))
        broken = []
        for chain in chains:
            result = verify_chain(chain)
            label = names.get(chain, chain)
            if result.ok:
                self.stdout.write(f"{label}: intact, {result.checked} events")
            else:
                self.stdout.write(f"{label}: BROKEN at seq {result.first_bad_seq} ({result.reason})")
                broken.append(f"{label} seq {result.first_bad_seq}")
        if broken:
            raise CommandError("audit chain broken: " + ", ".join(broken))
