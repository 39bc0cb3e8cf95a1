from rest_framework.routers import SimpleRouter

from .views import MatchViewSet, XrefRunViewSet

router = SimpleRouter()
router.register("xref/runs", XrefRunViewSet, basename="xref-run")
router.register("xref/matches", MatchViewSet, basename="xref-match")

urlpatterns = router.urls
