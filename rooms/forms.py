"""Forms of the room browser: parse and validate; the view then calls one service."""

from __future__ import annotations

from django import forms

from rooms.domain import is_valid_room_id
from rooms.models import DESCRIPTION_MAX_CHARS, ROOM_ID_MAX_CHARS, TITLE_MAX_CHARS, Visibility
from rooms.selectors import room_exists

ROOM_ID_HELP = "1-64 characters: a-z, 0-9, _ and -, starting with a letter or digit."


class RoomCreateForm(forms.Form):
    room_id = forms.CharField(
        label="Room id",
        max_length=ROOM_ID_MAX_CHARS,
        help_text=ROOM_ID_HELP,
        widget=forms.TextInput(
            attrs={
                "placeholder": "e.g. book-club",
                "autocapitalize": "none",
                "autocomplete": "off",
                "spellcheck": "false",
                "pattern": "[a-z0-9][a-z0-9_\\-]{0,63}",
            }
        ),
    )
    title = forms.CharField(label="Title", max_length=TITLE_MAX_CHARS, required=False)
    description = forms.CharField(
        label="Description",
        max_length=DESCRIPTION_MAX_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    visibility = forms.ChoiceField(
        label="Who can find it",
        choices=Visibility.choices,
        initial=Visibility.PUBLIC,
        widget=forms.RadioSelect,
    )

    def clean_room_id(self) -> str:
        room_id: str = self.cleaned_data["room_id"].strip().lower()
        if not is_valid_room_id(room_id):
            raise forms.ValidationError(f"Not a valid room id. {ROOM_ID_HELP}", code="bad_room")
        if room_exists(room_id=room_id):
            raise forms.ValidationError("That room id is taken: pick another, or join it.", code="room_taken")
        return room_id


class RoomSearchForm(forms.Form):
    q = forms.CharField(label="Search rooms", required=False, max_length=100)


class RoomGoForm(forms.Form):
    room = forms.CharField(label="Room id", max_length=ROOM_ID_MAX_CHARS)

    def clean_room(self) -> str:
        room: str = self.cleaned_data["room"].strip().lower()
        if not is_valid_room_id(room):
            raise forms.ValidationError(f"Not a valid room id. {ROOM_ID_HELP}", code="bad_room")
        return room
