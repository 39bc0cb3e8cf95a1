from django.apps import AppConfig


class WatchlistsConfig(AppConfig):
    name = "watchlists"
    verbose_name = "Watchlists"

    def ready(self) -> None:
        from core import policy

        from .models import Watchlist, WatchlistEntry

        # An agency's lists are reference data of its own: seen by its users, written only by imports.
        policy.register_agency_records(Watchlist, action=None)
        policy.register(WatchlistEntry,
                        view=lambda user: WatchlistEntry.objects.filter(
                            watchlist__in=policy.visible(user, Watchlist).values("pk")),
                        change=lambda user: WatchlistEntry.objects.none())
