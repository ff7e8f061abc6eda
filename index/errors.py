"""The exceptions citebot raises; the CLI and the Slack app turn them into one clear line."""


class CitebotError(Exception):
    """Base of every error a user can act on. Its message says what to fix."""


class SettingsError(CitebotError):
    """A setting is missing or invalid; the message names the setting."""


class SourceError(CitebotError):
    """One source (file, record or URL) could not be read as an article."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class IndexMissingError(CitebotError):
    """There is no index to answer from yet."""


class IndexMismatchError(CitebotError):
    """The index was built with other settings (for instance another embedding model)."""


class StoreUnavailableError(CitebotError):
    """The Chroma server (`chroma.url`) cannot be reached."""


class MissingExtraError(CitebotError):
    """A setting needs an optional part of citebot that is not installed."""
