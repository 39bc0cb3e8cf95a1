from rest_framework.routers import SimpleRouter

from .views import CommodityViewSet, LicenceViewSet, ShipmentViewSet

router = SimpleRouter()
router.register("shipments", ShipmentViewSet, basename="shipment")
router.register("licences", LicenceViewSet, basename="licence")
router.register("commodities", CommodityViewSet, basename="commodity")

urlpatterns = router.urls
