from rest_framework.routers import SimpleRouter

from .views import LinkViewSet, OrganizationViewSet, PersonViewSet

router = SimpleRouter()
router.register("persons", PersonViewSet, basename="person")
router.register("organizations", OrganizationViewSet, basename="organization")
router.register("links", LinkViewSet, basename="link")

urlpatterns = router.urls
