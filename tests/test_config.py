"""The room config (rooms/config.py): presets, validation, limits."""

from __future__ import annotations

import json

import pytest

from rooms.config import (
    INNER_TEXT,
    MAX_CONFIG_BYTES,
    ConfigError,
    join_options,
    join_query,
    preset,
    validate_config,
)


def bad_fields(data: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        validate_config(data)
    assert caught.value.message
    return {f["field"]: f["message"] for f in caught.value.fields}


# --- presets ------------------------------------------------------------------------------


def test_the_host_preset_takes_the_first_host_seat_with_the_microphone_on() -> None:
    host = preset("host")
    assert host["role"] == "host"
    assert host["turnOnMicrophoneWhenJoining"] is True
    assert host["seat"]["takeIndexWhenJoining"] == 0 == host["seat"]["hostIndexes"][0]
    assert "endRoomButton" in host["bottomMenuBar"]["hostButtons"]


def test_the_audience_preset_listens() -> None:
    audience = preset("audience")
    assert audience["role"] == "audience"
    assert audience["turnOnMicrophoneWhenJoining"] is False
    assert audience["seat"]["takeIndexWhenJoining"] == -1
    assert audience["innerText"] == INNER_TEXT
    assert [row["count"] for row in audience["seat"]["layout"]["rowConfigs"]] == [4, 4]


def test_presets_are_fresh_copies_and_valid_configs() -> None:
    first = preset("speaker")
    first["seat"]["hostIndexes"].append(5)
    assert preset("speaker")["seat"]["hostIndexes"] == [0]
    for role in ("host", "speaker", "audience"):
        assert validate_config(preset(role)) == preset(role)
    with pytest.raises(ValueError):
        preset("cohost")


def test_no_config_is_the_audience_preset() -> None:
    assert validate_config(None) == validate_config({}) == preset("audience")


# --- the integrator's fields over the role's defaults ----------------------------------------


def test_the_integrators_fields_go_over_the_roles_defaults() -> None:
    config = validate_config(
        {
            "role": "host",
            "seat": {
                "layout": {"rowConfigs": [{"count": 2, "alignment": "spaceEvenly"}, {"count": 3}]},
                "hostIndexes": [3],
                "closeWhenJoining": True,
            },
            "bottomMenuBar": {"audienceButtons": []},
            "innerText": {"leaveButton": "Bye"},
            "confirmDialogInfo": None,
        }
    )
    seat = config["seat"]
    assert seat["layout"]["rowConfigs"] == [
        {"count": 2, "alignment": "spaceEvenly", "seatSpacing": 16},
        {"count": 3, "alignment": "center", "seatSpacing": 16},
    ]
    assert seat["takeIndexWhenJoining"] == 3  # the host's seat follows the chosen host seats
    assert seat["showSoundWaveInAudioMode"] is True  # untouched default
    assert config["bottomMenuBar"]["audienceButtons"] == []  # lists replace
    assert config["bottomMenuBar"]["hostButtons"] == preset("host")["bottomMenuBar"]["hostButtons"]
    assert config["innerText"]["leaveButton"] == "Bye"
    assert config["innerText"]["sendMessageButton"] == "Send"
    assert config["confirmDialogInfo"] is None  # no confirmation
    assert config["turnOnMicrophoneWhenJoining"] is True


def test_join_options_come_from_the_config() -> None:
    config = validate_config(
        {
            "role": "speaker",
            "turnOnMicrophoneWhenJoining": False,
            "seat": {"takeIndexWhenJoining": 5, "closeWhenJoining": True},
        }
    )
    assert join_options(config) == {
        "role": "speaker",
        "take_index": 5,
        "close_when_joining": True,
        "mic_on_when_joining": False,
        "end_when_host_leaves": False,
        "media_roles": ("host",),
        "property_roles": ("host", "cohost", "speaker", "audience"),
        "background_media": None,
    }
    assert join_options(preset("audience"))["take_index"] is None
    assert join_query(config) == {
        "role": "speaker",
        "turnOnMicrophoneWhenJoining": "false",
        "takeIndexWhenJoining": "5",
        "closeWhenJoining": "true",
    }


# --- every bad field, listed at once -------------------------------------------------------


def test_every_unknown_or_ill_typed_field_is_listed_at_once() -> None:
    fields = bad_fields(
        {
            "role": "king",
            "colour": "red",
            "turnOnMicrophoneWhenJoining": "yes",
            "seat": {
                "layout": {
                    "rowConfigs": [
                        {"count": 9, "alignment": "middle", "seatSpacing": -1, "shape": "o"},
                        "row",
                    ],
                    "rowSpacing": 1.5,
                },
                "hostIndexes": [True],
                "takeIndexWhenJoining": "2",
                "avatarURL": "javascript:alert(1)",
            },
            "background": {"imageURL": 'https://img.test/a".png'},
            "confirmDialogInfo": {"title": 1, "okText": "x"},
            "endConfirmDialogInfo": "no",
            "bottomMenuBar": {"hostButtons": ["leaveButton", "danceButton"], "speakerButtons": {}},
            "inRoomMessage": {"visible": None},
            "mediaPlayer": {"allowedExtensions": ["exe"]},
            "roomProperties": {"rolesCanWrite": ["audience", "audience"], "rolesCanRead": []},
            "memberList": {"hiddenUsers": [""]},
            "duration": [],
            "systemMessages": {"enabled": 1, "joinsUpTo": -1},
            "innerText": {"leaveButton": "x" * 201, "unknownText": "x"},
        }
    )
    assert fields == {
        "role": "must be one of host, speaker, audience",
        "colour": "is not a config field",
        "turnOnMicrophoneWhenJoining": "must be true or false",
        "seat.layout.rowConfigs[0].count": "must be between 1 and 8",
        "seat.layout.rowConfigs[0].alignment": (
            "must be one of start, end, center, spaceBetween, spaceAround, spaceEvenly"
        ),
        "seat.layout.rowConfigs[0].seatSpacing": "must be between 0 and 64",
        "seat.layout.rowConfigs[0].shape": "is not a config field",
        "seat.layout.rowConfigs[1]": "must be an object",
        "seat.layout.rowSpacing": "must be an integer",
        "seat.hostIndexes[0]": "must be an integer",
        "seat.takeIndexWhenJoining": "must be an integer",
        "seat.avatarURL": "must be an http(s) URL of at most 2048 characters",
        "background.imageURL": "must be an http(s) URL of at most 2048 characters",
        "confirmDialogInfo.title": "must be a string",
        "confirmDialogInfo.okText": "is not a config field",
        "endConfirmDialogInfo": "must be an object or null",
        "bottomMenuBar.hostButtons[1]": fields["bottomMenuBar.hostButtons[1]"],
        "bottomMenuBar.speakerButtons": "must be a list",
        "inRoomMessage.visible": "must be true or false",
        "mediaPlayer.allowedExtensions[0]": fields["mediaPlayer.allowedExtensions[0]"],
        "roomProperties.rolesCanWrite": "must not repeat an item",
        "roomProperties.rolesCanRead": "is not a config field",
        "memberList.hiddenUsers[0]": "must not be empty",
        "duration": "must be an object",
        "systemMessages.enabled": "must be true or false",
        "systemMessages.joinsUpTo": "must be between 0 and 100000",
        "innerText.leaveButton": "must be at most 200 characters",
        "innerText.unknownText": "is not a config field",
    }
    assert fields["bottomMenuBar.hostButtons[1]"].startswith("must be one of toggleMicrophone")
    assert "mp3" in fields["mediaPlayer.allowedExtensions[0]"]


def test_a_config_must_be_an_object() -> None:
    assert bad_fields([1]) == {"config": "must be an object"}
    assert bad_fields({"seat": None}) == {"seat": "must be an object"}


def test_indexes_must_name_seats_of_the_layout() -> None:
    fields = bad_fields(
        {
            "seat": {
                "layout": {"rowConfigs": [{"count": 2}, {"count": 1}]},
                "hostIndexes": [0, 3],
                "takeIndexWhenJoining": 7,
            }
        }
    )
    assert fields == {
        "seat.hostIndexes[1]": "must be a seat of the layout (0-2)",
        "seat.takeIndexWhenJoining": "must be -1 or a seat of the layout (0-2)",
    }
    assert bad_fields({"seat": {"layout": {"rowConfigs": []}}}) == {
        "seat.layout.rowConfigs": "must have at least one row"
    }
    assert bad_fields({"seat": {"hostIndexes": [1, 1]}}) == {
        "seat.hostIndexes": "must not repeat an item"
    }


# --- limits -------------------------------------------------------------------------------


def test_at_most_eight_rows_of_eight_seats() -> None:
    biggest = validate_config({"seat": {"layout": {"rowConfigs": [{"count": 8}] * 8}}})
    assert sum(row["count"] for row in biggest["seat"]["layout"]["rowConfigs"]) == 64
    assert bad_fields({"seat": {"layout": {"rowConfigs": [{"count": 1}] * 9}}}) == {
        "seat.layout.rowConfigs": "must have at most 8 items"
    }


def test_a_config_over_16_kib_is_refused_whole() -> None:
    hidden = [f"user-{i:04}-" + "x" * 150 for i in range(100)]
    assert len(json.dumps({"memberList": {"hiddenUsers": hidden}})) > MAX_CONFIG_BYTES
    fields = bad_fields({"memberList": {"hiddenUsers": hidden}})
    assert list(fields) == ["config"] and "16384" in fields["config"]


def test_lists_and_urls_are_bounded() -> None:
    assert bad_fields({"memberList": {"hiddenUsers": [f"u{i}" for i in range(101)]}}) == {
        "memberList.hiddenUsers": "must have at most 100 items"
    }
    long_url = "https://img.test/" + "a" * 2048
    assert "seat.avatarURL" in bad_fields({"seat": {"avatarURL": long_url}})
    for url in ("ftp://img.test/a.png", "https://img.test/a b.png", "https://img.test/a(1).png"):
        assert "background.imageURL" in bad_fields({"background": {"imageURL": url}})
    ok = validate_config({"seat": {"avatarURL": "https://img.test/{userID}.png"}})
    assert ok["seat"]["avatarURL"] == "https://img.test/{userID}.png"
