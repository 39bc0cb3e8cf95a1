from rest_framework.routers import SimpleRouter

from .evidence import EvidenceViewSet
from .prosecutions import ProsecutionViewSet
from .views import CaseViewSet, NoteViewSet, PartyViewSet, ShareViewSet

CASE = r"cases/(?P<case_pk>[0-9a-fA-F-]{36})"

router = SimpleRouter()
router.register("cases", CaseViewSet, basename="case")
router.register(rf"{CASE}/parties", PartyViewSet, basename="case-party")
router.register(rf"{CASE}/notes", NoteViewSet, basename="case-note")
router.register(rf"{CASE}/shares", ShareViewSet, basename="case-share")
router.register(rf"{CASE}/evidence", EvidenceViewSet, basename="case-evidence")
router.register("prosecutions", ProsecutionViewSet, basename="prosecution")

urlpatterns = router.urls
