from django.core.management.base import BaseCommand, CommandError

from accounts.models import Agency
from audit.models import GLOBAL_CHAIN, ChainHead
from audit.services import verify_chain


class Command(BaseCommand):
    help = ("Verify the audit hash chains against their signed checkpoints; exit 0 when intact, non-zero with the "
            "first bad event otherwise. By default from each chain's latest signed checkpoint to its head.")

    def add_arguments(self, parser):
        parser.add_argument("--agency", default=None, help="agency code; default: every chain")
        parser.add_argument("--full", action="store_true",
                            help="rehash every event from the first and check every checkpoint's signature")

    def handle(self, agency, full, **options):
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
            result = verify_chain(chain, full=full)
            label = names.get(chain, chain)
            if result.ok:
                start = (f"from the signed checkpoint at seq {result.checkpoint.seq}" if result.checkpoint
                         else "from seq 1")
                signed = "" if result.signed else " (unsigned: no checkpoint key configured)"
                self.stdout.write(f"{label}: intact, {result.checked} events {start} to seq {result.head_seq}{signed}")
            else:
                self.stdout.write(f"{label}: BROKEN at seq {result.first_bad_seq} ({result.reason})")
                broken.append(f"{label} seq {result.first_bad_seq}")
        if broken:
            raise CommandError("audit chain broken: " + ", ".join(broken))
