"""Admin speaks English (issue 13, point 5: it said "Webhook deliverys")."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


def test_every_model_has_a_proper_plural_and_admin_shows_it(client: Client) -> None:
    for model in apps.get_app_config("rooms").get_models():
        plural = str(model._meta.verbose_name_plural)
        # Django's default adds an "s": "deliverys", "propertys", "processs".
        assert not re.search(r"[^aeiou]ys$|sss$", plural), (model.__name__, plural)
    client.force_login(User.objects.create_superuser("op", password="x"))
    index = client.get("/admin/").content.decode()
    assert "Webhook deliveries" in index and "deliverys" not in index
