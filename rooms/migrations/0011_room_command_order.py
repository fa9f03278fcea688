from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0010_room_property_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="room",
            name="command_order",
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
    ]
