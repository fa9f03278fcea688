"""The realtime edge: the room socket.

- ``consumer.py``: connect, receive, disconnect (thin).
- ``admission.py``: who may open a socket, from which origin, with which options.
- ``actions.py``: every socket action, declared once (the registry).
- ``outbox.py``: what a socket sends, in which order; merging, revisions.
- ``view.py``: one socket's frames for a state.
- ``watch.py``: sockets behind the room's revision are repaired.
- ``media_link.py``: a socket's part in the media plane.
- ``timers.py``: a room's timers, cancelled when it ends.
- ``limits.py``: the frame budget; ``close_codes.py``: refusals to close codes.
"""
