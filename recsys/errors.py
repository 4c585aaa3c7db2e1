"""User-facing errors: the entry points print these as one clear message, without a traceback."""


class RecsysError(Exception):
    """Base class for errors caused by the user's input (data, config, ids)."""


class DataNotFoundError(RecsysError):
    """A dataset's files are not where the config says."""


class DataFormatError(RecsysError):
    """A data file could not be parsed; the message names the file and line."""


class EmptyDataError(RecsysError):
    """A dataset or one part of a split holds no interactions."""


class UnknownIdError(RecsysError):
    """An external user or item id that the model has never seen."""


class CheckpointError(RecsysError):
    """A checkpoint is missing or does not match the data it is used with."""


class DivergenceError(RecsysError, FloatingPointError):
    """Training went numerically wrong (a non-finite or rising loss, collapsed factors, NaN
    scores); the console scripts exit with ``exit_code``, sweeps fail the trial."""

    exit_code = 3


class ConfigError(RecsysError):
    """Settings that cannot work together (found before training starts)."""


class UntrustedClassError(CheckpointError):
    """A checkpoint or a stored config names a class the framework does not trust."""
