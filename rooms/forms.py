from __future__ import annotations

from django import forms

from rooms.models import room_id_validator
from rooms.services import ServiceError
from rooms.services.rooms import MAX_TITLE
from rooms.text import InvalidText, clean_text

# room_create's refusals, by code, and the form field each belongs to; any other code is an
# error of the whole form.
ROOM_CREATE_FIELDS = {
    "room_id_invalid": "room_id",
    "room_exists": "room_id",
    "title_invalid": "title",
    "topic_invalid": "topic",
}


class RoomCreateForm(forms.Form):
    title = forms.CharField(max_length=MAX_TITLE)
    room_id = forms.CharField(
        max_length=64,
        validators=[room_id_validator],
        help_text="Letters, digits, '_', '.' or '-'; it becomes the room's address.",
    )

    topic = forms.CharField(
        max_length=200, required=False, help_text="Optional: what the room is about."
    )

    def clean_title(self) -> str:
        return _clean(self.cleaned_data["title"], name="The title", max_chars=MAX_TITLE)

    def add_service_error(self, exc: ServiceError) -> None:
        """Show a refusal of ``room_create`` at the field it is about."""
        self.add_error(ROOM_CREATE_FIELDS.get(exc.code), exc.message)


def _clean(value: str, *, name: str, max_chars: int) -> str:
    try:
        return clean_text(value, name=name, max_chars=max_chars)
    except InvalidText as exc:
        raise forms.ValidationError(exc.message, code=exc.code) from exc
