"""The Slack listeners, one module per job; bot/slack/app.py registers them all."""
