from rest_framework.routers import SimpleRouter

from .views import DeconflictionHitViewSet, MatchViewSet, XrefRunViewSet

router = SimpleRouter()
router.register("xref/runs", XrefRunViewSet, basename="xref-run")
router.register("xref/matches", MatchViewSet, basename="xref-match")
router.register("xref/hits", DeconflictionHitViewSet, basename="xref-hit")

urlpatterns = router.urls
