"""citebot in Slack: a bolt App answering in threads, DMs and `/ask`, served by gunicorn."""

from bot.slack.app import create_app
from bot.slack.config import SlackConfig
from bot.slack.server import serve

__all__ = ["SlackConfig", "create_app", "serve"]
