from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from rooms.api import urls as api_urls
from rooms.api.docs import asset as api_docs_asset

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    # The server HTTP API for integrators' backends (docs/http-api.md).
    path("api/v1/docs/assets/<str:name>", api_docs_asset, name="api-docs-asset"),
    path("api/v1/", api_urls()),
    path("", include("rooms.urls")),
]
