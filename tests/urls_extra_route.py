"""The project's URLs and one route more, that no access matrix knows: tests/test_access_matrix_routes.py shows the
coverage check names it."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as project_urlpatterns


class ExtraView(APIView):
    def get(self, request):
        return Response({})

    def post(self, request):
        return Response({}, status=201)


urlpatterns = [*project_urlpatterns, path("api/v1/extra/", ExtraView.as_view(), name="extra-route")]
