"""What can go wrong talking to Alix Pay; each says what the caller may safely do next."""


class AlixPayError(Exception):
    """Base class. Messages never contain keys, secrets or signatures."""

    outcome = "unknown"
    """The call's outcome as a bounded metric label."""


class AlixPayOutcomeUnknown(AlixPayError):
    """Transport failure, timeout or 5xx: the request may or may not have taken effect.

    After a create, resolve it with `get_order` before anything else; never create again blindly.
    """

    outcome = "unknown"


class AlixPayRejected(AlixPayError):
    """Alix Pay answered and refused; nothing was created. `message` is Alix Pay's, in the requested language."""

    outcome = "rejected"

    def __init__(self, message: str, *, http_status: int, error_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.error_code = error_code


class AlixPayOrderNotFound(AlixPayRejected):
    """The details call knows no order with that `externalOrderId`."""

    outcome = "not_found"


class AlixPayBadSignature(AlixPayError):
    """The answer's signature did not verify with any trusted Alix Pay key: its content is not trusted.

    After a create this is as uncertain as a timeout: resolve with `get_order`.
    """

    outcome = "bad_signature"
