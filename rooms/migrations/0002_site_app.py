"""The built-in app whose rooms signed-in users of this site open from the lobby."""

import secrets

from django.conf import settings
from django.db import migrations


def create_site_app(apps, schema_editor):
    App = apps.get_model("rooms", "App")
    App.objects.get_or_create(
        app_id=settings.LIVEAUDIO_SITE_APP_ID,
        defaults={"name": "This site", "app_sign": secrets.token_hex(32)},
    )


class Migration(migrations.Migration):
    dependencies = [("rooms", "0001_initial")]
    operations = [migrations.RunPython(create_site_app, migrations.RunPython.noop)]
