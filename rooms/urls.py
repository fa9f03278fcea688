from __future__ import annotations

from django.urls import path

from rooms import member_list, stats, views
from rooms.mediafiles import views as media_views

UPLOADS = "media/<int:app_id>/<str:room_id>/uploads/"

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("rooms/new/", views.room_create_view, name="room_create"),
    path("rooms/<str:room_id>/", views.room_page, name="room_page"),
    path("embed/sessions/", views.embed_session_create_view, name="embed_session_create"),
    path("embed/<int:app_id>/<str:room_id>/", views.embed_page, name="embed_page"),
    path("members/<int:app_id>/<str:room_id>/", member_list.member_page_view, name="member_page"),
    path("accounts/signup/", views.signup, name="signup"),
    path("internal/media-stats/", stats.media_stats, name="media_stats"),
    path(UPLOADS, media_views.upload_create, name="media_upload_create"),
    path(f"{UPLOADS}<str:upload_id>/", media_views.upload_part, name="media_upload_part"),
    path(f"{UPLOADS}<str:upload_id>/finish/", media_views.upload_done, name="media_upload_done"),
]
