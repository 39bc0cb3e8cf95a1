from rest_framework.routers import SimpleRouter

from .views import WatchlistViewSet

router = SimpleRouter()
router.register("watchlists", WatchlistViewSet, basename="watchlist")

urlpatterns = router.urls
