"""How `manage.py serve` sets up the event sockets' transport (platform/SCALING.md, Realtime)."""

from django.core.management import call_command


def test_serve_sends_event_sockets_without_per_message_deflate(settings, monkeypatch):
    """A per-socket compressor cost as much CPU per message as the rest of the send, and
    doubled a socket's memory, for messages of a few hundred bytes."""
    settings.INPROCESS_WORKER = False
    seen: dict = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **options: seen.update(options))
    call_command("serve", "--port", "8123")
    assert seen["ws_per_message_deflate"] is False
