"""citebot in Slack: a bolt App answering in threads, DMs, the assistant view and `/ask`,
with a Home tab, served by gunicorn (or over Socket Mode)."""

from bot.slack.app import create_app, load_index_backend
from bot.slack.backend import Backend, IndexBackend
from bot.slack.config import SlackConfig
from bot.slack.server import serve

__all__ = ["Backend", "IndexBackend", "SlackConfig", "create_app", "load_index_backend", "serve"]
