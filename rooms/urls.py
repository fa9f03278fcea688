from __future__ import annotations

from django.urls import path

from rooms import stats, views

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("rooms/new/", views.room_create_view, name="room_create"),
    path("rooms/<str:room_id>/", views.room_page, name="room_page"),
    path("embed/sessions/", views.embed_session_create_view, name="embed_session_create"),
    path("embed/<int:app_id>/<str:room_id>/", views.embed_page, name="embed_page"),
    path("accounts/signup/", views.signup, name="signup"),
    path("internal/media-stats/", stats.media_stats, name="media_stats"),
]
