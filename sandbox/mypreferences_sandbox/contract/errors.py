"""The vendor's errors as exceptions: each carries its HTTP status and the ASP.NET Web API message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class VendorError(Exception):
    """An error the vendor would answer with; rendered in one place, in the negotiated format."""

    status = 500
    message = "An error has occurred."

    def __init__(
        self,
        message: str | None = None,
        *,
        model_state: Mapping[str, Sequence[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
        conflict: Mapping[str, object] | None = None,
        message_detail: str | None = None,
        stopped: bool = False,
    ) -> None:
        self.message = message or self.message
        self.status = status or self.status
        self.conflict = dict(conflict) if conflict else None  # the journal's, never sent
        self.message_detail = message_detail  # sent as MessageDetail
        self.model_state = dict(model_state or {})
        self.stopped = stopped  # validation stopped at its error limit: more may be wrong
        self.headers = dict(headers or {})
        super().__init__(self.message)

    def body(self, max_errors: int | None = None) -> dict:
        """The error document: ASP.NET's HttpError shape, with at most ``max_errors`` ModelState
        keys (then one more, ``body``, saying the limit was reached)."""
        body: dict = {"Message": self.message}
        if self.message_detail:
            body["MessageDetail"] = self.message_detail
        if self.model_state:
            keys = list(self.model_state)
            shown = keys if max_errors is None else keys[:max_errors]
            body["ModelState"] = {key: list(self.model_state[key]) for key in shown}
            if len(shown) < len(keys) or self.stopped:
                body["ModelState"]["body"] = [
                    f"The maximum number of allowed model errors ({max_errors}) has been reached; "
                    "the rest of the body was not checked."
                ]
        return body


# The vendor's challenge, in the WWW-Authenticate header of each of its 401s.
REALM = "https://pm.mypreferences.com"
CHALLENGE = f'PNAUTHINFO3 realm="{REALM}"'


class Unauthorized(VendorError):
    status = 401
    message = "Authorization has been denied for this request."


class BadRequest(VendorError):
    status = 400
    message = "The request is invalid."


class Forbidden(VendorError):
    status = 403
    message = "The authentication credentials were insufficient to grant access to the requested resource."


class NotFound(VendorError):
    status = 404
    message = "No HTTP resource was found that matches the request URI."


class MethodNotAllowed(VendorError):
    status = 405
    message = "The requested resource does not support this http method."


class NotAcceptable(VendorError):
    status = 406
    message = "The requested media type is not supported by this resource."


class Conflict(VendorError):
    status = 409
    message = (
        "The request could not be completed due to a conflict with the current state of the target resource."
    )


class PayloadTooLarge(VendorError):
    status = 413
    message = "The request entity is too large."

    @classmethod
    def over(cls, limit: int) -> PayloadTooLarge:
        """The 413 of a body over ``limit`` bytes, saying the limit."""
        return cls(f"The request body is larger than the limit of {limit} bytes.")


class UnsupportedMediaType(VendorError):
    status = 415
    message = "The request entity's media type is not supported for this resource."


class Unavailable(VendorError):
    status = 503
    message = "The service is unavailable: its store (Redis) cannot be reached."


def invalid(path: str, message: str) -> BadRequest:
    """A 400 with one ModelState entry."""
    return BadRequest(model_state={path: [message]})
