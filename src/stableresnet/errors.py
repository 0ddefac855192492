"""The package's error for a setting outside what is allowed (one class, imported everywhere)."""


class ConfigError(ValueError):
    """A model or training setting outside what is allowed; the message names it."""
