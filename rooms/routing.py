from __future__ import annotations

from django.urls import path

from rooms.realtime.consumer import RoomConsumer

websocket_urlpatterns = [
    path(
        "ws/rooms/<int:app_id>/<str:room_id>/",
        RoomConsumer.as_asgi(),
        name="room_socket",
    ),
]
