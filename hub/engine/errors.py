"""Errors the engine raises to its callers."""


class PublishError(Exception):
    """A publication was refused (bad channel or event name). ``code`` is a PROTOCOL.md code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class HubUnavailable(Exception):
    """A backing service (Redis) is down; the operation did not happen."""

    def __init__(self, service: str, detail: str = "") -> None:
        super().__init__(f"{service} unavailable{': ' + detail if detail else ''}")
        self.service = service
        self.detail = detail
