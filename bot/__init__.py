"""citebot's surfaces: answering, rendering, the CLI and the Slack app."""
