from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import token_issue


class Command(BaseCommand):
    help = "Issue an API token for a user; prints the key alone on stdout (it is not stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--days", type=int, default=None)

    def handle(self, username, days, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive")
        if days is not None and not 1 <= days <= 3650:
            raise CommandError("--days must be between 1 and 3650")
        _, key = token_issue(user=user, days=days)
        self.stdout.write(key)
