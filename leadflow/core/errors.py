from __future__ import annotations


class LeadflowError(Exception):
    """Base of every domain error a service raises; views turn it into a message."""


class ApiError(Exception):
    """An error an API handler answers with: HTTP status + stable code + message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}
