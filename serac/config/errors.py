"""The one error type of the configuration."""


class ConfigError(ValueError):
    """A params.yaml value is missing, unknown or out of range."""
