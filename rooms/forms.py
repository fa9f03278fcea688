from __future__ import annotations

from django import forms

from rooms.models import room_id_validator


class RoomCreateForm(forms.Form):
    title = forms.CharField(max_length=120)
    room_id = forms.CharField(
        max_length=64,
        validators=[room_id_validator],
        help_text="Letters, digits, '_', '.' or '-'; it becomes the room's address.",
    )
