"""The member list past its first page (``GET /members/<appID>/<roomID>/``): its order across
pages, search, who may read it, and what it refuses. The real view, selector and database."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rooms import services
from rooms.models import EmbedSession, Member, Room
from rooms.rendering import MEMBER_LIST_MAX, room_fragments, room_parts_context
from rooms.selectors import MEMBER_PAGE_SIZE, room_state
from rooms.services import room_create
from tests.conftest import add_member
from tests.media_uploads import page_token

pytestmark = pytest.mark.django_db

ROW = re.compile(r'<li data-user-id="([^"]+)"')
NEXT = re.compile(r'class="members-show-more" hx-get="([^"]+)"')


@pytest.fixture(autouse=True)
def _fresh_rate_window() -> None:
    cache.clear()


@pytest.fixture
def big_room(room: Room) -> Room:
    """A host, two speakers on seats, 130 listeners, and people the list leaves out."""
    services.seat_take(member=add_member(room, "host-1", role="host"), index=0)
    for i in range(130):
        add_member(room, f"listener-{i:03}")
    services.seat_take(member=add_member(room, "speaker-a"), index=1)
    services.seat_take(member=add_member(room, "speaker-b"), index=2)
    add_member(room, "gone-away", online=False)
    Member.objects.filter(pk=add_member(room, "banned-one").pk).update(banned=True, online=False)
    return room


def url(room: Room) -> str:
    return f"/members/{room.app.app_id}/{room.room_id}/"


def read(client: Client, path: str, token: str, **headers: str):
    return client.get(path, headers={"Authorization": f"Bearer {token}", **headers})


def rows_and_next(html: str) -> tuple[list[str], str | None]:
    found = NEXT.search(html)
    return ROW.findall(html), found.group(1).replace("&amp;", "&") if found else None


def the_lists_order(room: Room) -> list[str]:
    """What the whole list is: the seated first, then everyone else present, by join."""
    present = room.members.filter(banned=False).filter(online=True) | room.members.filter(
        seats__isnull=False
    )
    ordered = list(present.distinct().order_by("joined_at", "pk"))
    seated = {s.occupant_id for s in room.seats.exclude(occupant=None)}
    return [m.user_id for m in ordered if m.pk in seated] + [
        m.user_id for m in ordered if m.pk not in seated
    ]


def walk(client: Client, room: Room, token: str) -> list[str]:
    """The first page as the room page shows it, then "Show more" until there is no more."""
    context = room_parts_context(room_state(room))
    seen = [m.user_id for m in context["members_shown"]]
    path = context["members_next_url"]
    while path:
        answer = read(client, path, token)
        assert answer.status_code == 200, answer.content
        rows, path = rows_and_next(answer.content.decode())
        assert len(rows) <= MEMBER_PAGE_SIZE
        seen += rows
    return seen


def test_the_pages_after_the_first_show_every_member_once_in_the_lists_order(
    client: Client, big_room: Room
) -> None:
    seen = walk(client, big_room, page_token(big_room, "listener-007", role=None))
    assert seen == the_lists_order(big_room)
    assert seen[:3] == ["host-1", "speaker-a", "speaker-b"]
    assert len(seen) == 133 and "gone-away" not in seen and "banned-one" not in seen


def test_pages_follow_the_list_while_people_come_and_go(client: Client, big_room: Room) -> None:
    token = page_token(big_room, "host-1")
    context = room_parts_context(room_state(big_room))
    second = read(client, context["members_next_url"], token).content.decode()
    rows, third_path = rows_and_next(second)
    assert rows[0] == "listener-057"  # 3 seated and 57 listeners on the first page
    # Between pages: someone already shown leaves, someone on the next page leaves, a
    # newcomer arrives, and someone of the next page takes a seat.
    Member.objects.filter(room=big_room, user_id__in=["listener-060", "listener-110"]).update(
        online=False
    )
    add_member(big_room, "newcomer")
    services.seat_take(member=Member.objects.get(room=big_room, user_id="listener-120"), index=3)
    rest: list[str] = []
    while third_path:
        page, third_path = rows_and_next(read(client, third_path, token).content.decode())
        rest += page
    assert rest[0] == "listener-107" and rest[-1] == "newcomer"
    assert "listener-110" not in rest and "listener-120" not in rest  # gone, and now seated
    assert len(rest) == len(set(rest)) and not set(rest) & set(rows)


def test_a_search_finds_a_name_in_any_case_the_seated_first(client: Client, room: Room) -> None:
    add_member(room, "host-1", role="host")
    for i in range(70):
        add_member(room, f"filler-{i:02}")
    for user_id, name in [("u-ben", "Ben"), ("u-reuben", "reuben"), ("u-bene", "BENEDICT")]:
        Member.objects.filter(pk=add_member(room, user_id).pk).update(user_name=name)
    services.seat_take(member=Member.objects.get(room=room, user_id="u-bene"), index=1)
    answer = read(client, url(room) + "?q=bEn", page_token(room, "host-1"))
    assert answer.status_code == 200
    html = answer.content.decode()
    assert ROW.findall(html) == ["u-bene", "u-ben", "u-reuben"]
    assert "members-search-note" in html and "members-show-more" not in html
    # The rows are the first page's: the same tools, for the host to use.
    assert html.count('"action": "seat.host.inviteToTake"') == 2
    bene = html.split('data-user-id="u-bene"')[1].split("</li>")[0]
    assert 'class="remove-speaker"' in bene and 'class="make-cohost' in bene
    nobody = read(client, url(room) + "?q=zoe", page_token(room, "host-1")).content.decode()
    assert ROW.findall(nobody) == [] and "No one here is called zoe." in nobody


def test_a_search_with_many_matches_comes_in_pages(client: Client, room: Room) -> None:
    add_member(room, "host-1", role="host")
    for i in range(120):
        add_member(room, f"fan-{i:03}" if i % 2 else f"other-{i:03}")
    token = page_token(room, "host-1")
    rows, path = rows_and_next(read(client, url(room) + "?q=FAN", token).content.decode())
    assert len(rows) == MEMBER_PAGE_SIZE and path and "q=FAN" in path
    more, last = rows_and_next(read(client, path, token).content.decode())
    assert rows + more == [f"fan-{i:03}" for i in range(1, 120, 2)] and last is None


def test_an_emptied_search_box_answers_no_rows(client: Client, big_room: Room) -> None:
    answer = read(client, url(big_room) + "?q=+", page_token(big_room, "host-1"))
    assert answer.status_code == 200 and ROW.findall(answer.content.decode()) == []


def make_session(room: Room, user_id: str, config: dict) -> EmbedSession:
    from rooms.config import validate_config

    return EmbedSession.objects.create(
        key=f"session-of-{user_id}-" + "x" * 20,
        app=room.app,
        room_id=room.room_id,
        user_id=user_id,
        user_name=user_id,
        config=validate_config(config),
        parent_origin="https://site.test",
        expires_at=timezone.now() + timedelta(hours=1),
    )


def test_an_embed_sessions_hidden_users_and_texts_apply(client: Client, big_room: Room) -> None:
    session = make_session(
        big_room,
        "listener-001",
        {
            "memberList": {"hiddenUsers": ["listener-100", "listener-101"]},
            "innerText": {"inviteToTakeSeatButton": "Bring up", "memberListShowMore": "More!"},
        },
    )
    context = room_parts_context(room_state(big_room))
    answer = client.get(context["members_next_url"], headers={"X-Liveaudio-Session": session.key})
    assert answer.status_code == 200
    html = answer.content.decode()
    rows = ROW.findall(html)
    assert "listener-099" in rows and "listener-102" in rows
    assert "listener-100" not in rows and "listener-101" not in rows
    assert ">Bring up</button>" in html and ">More!</button>" in html
    by_session = {"X-Liveaudio-Session": session.key}
    search = client.get(url(big_room) + "?q=listener-10", headers=by_session)
    assert "listener-100" not in ROW.findall(search.content.decode())


def test_only_a_member_of_the_room_reads_its_list(client: Client, big_room: Room) -> None:
    other = room_create(app=big_room.app, room_id="other-room", created_by="x")
    add_member(other, "stranger")
    Member.objects.filter(room=big_room, user_id="listener-003").update(banned=True)
    cases = {
        "no credential": ({}, 401, "token_missing"),
        "a bad token": ({"Authorization": "Bearer not-a-token"}, 401, "token_invalid"),
        "another room's token": (
            {"Authorization": f"Bearer {page_token(other, 'stranger')}"},
            401,
            "token_wrong_room",
        ),
        "a token of someone not in it": (
            {"Authorization": f"Bearer {page_token(big_room, 'stranger')}"},
            403,
            "not_permitted",
        ),
        "a member who left": (
            {"Authorization": f"Bearer {page_token(big_room, 'gone-away')}"},
            403,
            "not_permitted",
        ),
        "a banned member": (
            {"Authorization": f"Bearer {page_token(big_room, 'listener-003')}"},
            403,
            "not_permitted",
        ),
        "a bad session": ({"X-Liveaudio-Session": "nope"}, 401, "token_invalid"),
    }
    for name, (headers, status, code) in cases.items():
        answer = client.get(url(big_room), headers=headers)
        assert (answer.status_code, answer.json()["code"]) == (status, code), name
        assert answer.json()["message"], name


def test_another_origin_learns_nothing_not_even_whether_the_room_exists(
    client: Client, big_room: Room
) -> None:
    token = page_token(big_room, "host-1")
    for headers in ({"Origin": "https://evil.test"}, {"Sec-Fetch-Site": "cross-site"}):
        for path in (url(big_room), "/members/424242/no-such-room/"):
            answer = read(client, path, token, **headers)
            assert (answer.status_code, answer.json()["code"]) == (403, "origin_not_allowed")
    # This server's own page: its Origin, or a same-origin GET's Sec-Fetch-Site.
    for headers in ({"Origin": "http://testserver"}, {"Sec-Fetch-Site": "same-origin"}):
        assert read(client, url(big_room), token, **headers).status_code == 200


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("after=nonsense", 400, "bad_cursor"),
        ("after=listening:nobody-here", 400, "bad_cursor"),
        ("after=seated:" + "x" * 129, 400, "bad_cursor"),
        ("after=seated:" + "x" * 5000, 400, "bad_request"),
        ("q=" + "b" * 5000, 400, "bad_request"),
        ("q=" + "b" * 65, 400, "bad_request"),
        ("q=be%00n", 400, "bad_request"),
        ("q=%ED%A0%80", 400, "bad_request"),  # a lone surrogate, as UTF-8 would spell it
        ("q=%FF", 400, "bad_request"),
        ("q=ben&q=bob", 400, "bad_request"),
        ("limit=1000", 400, "bad_request"),
        ("q=a&after=seated:x&offset=9", 400, "bad_request"),
    ],
)
def test_bad_input_is_a_clear_refusal(
    client: Client, big_room: Room, query: str, status: int, code: str
) -> None:
    answer = read(client, f"{url(big_room)}?{query}", page_token(big_room, "host-1"))
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert answer.json()["message"]


def test_unknown_and_ended_rooms(client: Client, big_room: Room) -> None:
    token = page_token(big_room, "host-1")
    for path in ("/members/424242/no-such-room/", "/members/999/friday-jam/"):
        answer = read(client, path, token)
        assert (answer.status_code, answer.json()["code"]) == (404, "room_not_found")
    Room.objects.filter(pk=big_room.pk).update(ended_at=timezone.now())
    answer = read(client, url(big_room), token)
    assert (answer.status_code, answer.json()["code"]) == (410, "room_ended")


def test_a_member_may_read_so_many_pages_a_minute(client: Client, big_room: Room, settings) -> None:
    settings.LIVEAUDIO_MEMBER_PAGES_PER_MINUTE = 3
    token = page_token(big_room, "host-1")
    answers = [read(client, url(big_room), token) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].json()["code"] == "rate_limited" and answers[3]["Retry-After"] == "60"
    # Someone else's window is their own.
    assert read(client, url(big_room), page_token(big_room, "listener-001")).status_code == 200


def test_a_page_reads_a_page_of_rows_whatever_the_rooms_size(client: Client, room: Room) -> None:
    add_member(room, "host-1", role="host")
    token = page_token(room, "host-1")

    def page_queries(members: int) -> list[str]:
        for i in range(room.members.count(), members):
            add_member(room, f"m-{i:04}")
        path = url(room) + "?after=listening:m-0100"
        with CaptureQueriesContext(connection) as captured:
            assert read(client, path, token).status_code == 200
        return [q["sql"] for q in captured.captured_queries]

    small, big = page_queries(200), page_queries(1200)
    assert len(small) == len(big)
    (listing,) = [sql for sql in big if "LIMIT 51" in sql]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {listing}")
        plan = " ".join(str(step) for step in cursor.fetchall())
    assert "member_list_order" in plan and "TEMP B-TREE" not in plan, plan


def test_a_join_into_a_big_room_still_changes_only_the_counts(big_room: Room) -> None:
    before = room_fragments(room_state(big_room))
    add_member(big_room, "one-more")
    after = room_fragments(room_state(big_room))
    changed = {name for name in before if before[name].key != after[name].key}
    assert changed == {"listeners_count", "listeners_more", "members_count", "members_more"}
    assert 'hx-get="/members/424242/friday-jam/?after=listening%3Alistener-056"' in (
        after["members"].html
    )
    assert len(ROW.findall(after["members"].html)) == MEMBER_LIST_MAX
