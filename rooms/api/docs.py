"""The interactive API docs (Swagger UI) from the assets installed with django-ninja: the page
loads nothing from any other server."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

import ninja
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.template import Context, Engine
from django.urls import reverse
from django.views.decorators.http import require_GET
from ninja.openapi.docs import DocsBase

ASSETS = Path(ninja.__file__).parent / "static" / "ninja"
ASSET_NAMES = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-init.js", "favicon.svg", "favicon.png"}
)

# Autoescaped like any template; the settings go through json_script.
_PAGE = Engine().from_string(
    """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{{ title }}</title>
  <link rel="stylesheet" href="{{ assets }}swagger-ui.css">
  <link rel="icon" href="{{ assets }}favicon.svg" type="image/svg+xml">
</head>
<body data-csrf-token="" data-api-csrf="">
  {{ settings|json_script:"swagger-settings" }}
  <div id="swagger-ui"></div>
  <script src="{{ assets }}swagger-ui-bundle.js"></script>
  <script src="{{ assets }}swagger-ui-init.js"></script>
</body>
</html>"""
)


class OfflineSwagger(DocsBase):
    def render_page(self, request: HttpRequest, api: Any, **kwargs: Any) -> HttpResponse:
        settings = {"url": self.get_openapi_url(api, kwargs), "layout": "BaseLayout"}
        assets = reverse("api-docs-asset", kwargs={"name": "x"})[:-1]
        html = _PAGE.render(Context({"title": api.title, "assets": assets, "settings": settings}))
        return HttpResponse(html)


@require_GET
def asset(request: HttpRequest, name: str) -> FileResponse:
    if name not in ASSET_NAMES:
        raise Http404("No such asset.")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse((ASSETS / name).open("rb"), content_type=content_type)
    response["Cache-Control"] = "public, max-age=86400"
    return response
