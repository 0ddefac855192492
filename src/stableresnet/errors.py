"""The package's errors for mistakes a user can fix; each message names the value and what was expected.

The command line turns these, and only these, into one red line without a traceback.
"""


class ConfigError(ValueError):
    """A model, training or run setting outside what is allowed; the message names it."""


class DataError(ValueError):
    """A data problem the user can fix: the message names the file or value and what was expected."""


class ModelFileError(ValueError):
    """A model file that is not ours, is damaged, or was altered; the message names the file."""


USER_ERRORS = (ConfigError, DataError, ModelFileError)
