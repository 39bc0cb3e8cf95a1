from django.urls import path

from .graph import CaseGraphView, GraphPathView, GraphView
from .search import SearchView

urlpatterns = [
    path("search/", SearchView.as_view(), name="search"),
    path("graph/", GraphView.as_view(), name="graph"),
    path("graph/path/", GraphPathView.as_view(), name="graph-path"),
    path("cases/<uuid:case_id>/graph/", CaseGraphView.as_view(), name="case-graph"),
]
