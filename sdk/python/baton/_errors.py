"""Exceptions of the Baton SDK."""


class BatonError(Exception):
    """Something the SDK could not do, with what to change in `fix`."""

    def __init__(self, message, fix=None):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self):
        if self.fix:
            return f"{self.message}\n    fix: {self.fix}"
        return self.message


class PipelineDefinitionError(BatonError):
    """A pipeline function does something Baton cannot turn into a pipeline.

    `filename` and `lineno` point at the line in the user's code (not the SDK's), so
    `baton validate` can show it like a YAML error.
    """

    def __init__(self, message, fix=None, filename=None, lineno=None):
        super().__init__(message, fix)
        self.filename = filename
        self.lineno = lineno


class BatonAPIError(BatonError):
    """The Baton server refused a request (or could not be reached)."""

    def __init__(self, message, fix=None, status=None, code=None, field=None):
        super().__init__(message, fix)
        self.status = status
        self.code = code
        self.field = field


class DataSLAViolation(Exception):
    """A dataset is older than its contract allows, has never been updated, or has the wrong schema.

    Raised by `check_data_freshness(..., max_staleness=...)`. Raised by hand with a short
    message, as in `raise DataSLAViolation("Data is too stale")`, it adds what the last
    `check_data_freshness` in this process found (age, last update, producing run, owner), so
    the failure reason names the dataset without the caller repeating it.
    """

    def __init__(self, message="", dataset=None, age=None, limit=None, details=None):
        self.dataset = dataset
        self.age = age
        self.limit = limit
        if dataset is None and details is None:
            from . import _client  # a cycle at import time otherwise

            last = _client.last_freshness_check()
            if last is not None:
                self.dataset = last.dataset
                self.age = last.age
                details = last.describe()
        self.details = details
        text = message or ""
        if details and details not in text:
            text = f"{text}: {details}" if text else details
        super().__init__(text)
