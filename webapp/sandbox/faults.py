"""Fault injection knobs for tests and demos, set globally (copied into new orders) or per order."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duplicate: int = Field(default=1, ge=1, le=20)
    """Deliver each IPN this many times."""
    out_of_order: bool = False
    """Hold every IPN until the order is final, then deliver them newest first."""
    corrupt_signature: bool = False
    """Damage the signature of every IPN."""
    wrong_key: bool = False
    """Sign IPNs with a key Alix Pay never gave the partner."""
    answer_signature: Literal["good", "corrupt", "wrong_key"] = "good"
    """The same two faults for the answers to create-cashout and details."""
    delay_seconds: float = Field(default=0.0, ge=0, le=3600)
    drop: bool = False
    """Never deliver: only reconciliation (the details call) can find the change."""
    create_response: Literal["normal", "error_500", "hang"] = "normal"
    """After creating the order, answer the create call normally, with a 500, or only after `hang_seconds`."""
    hang_seconds: float = Field(default=30.0, ge=0, le=600)
    details_response: Literal["normal", "error_500"] = "normal"
    """Answer the details call normally or with a 500 (Alix Pay's status endpoint down during reconciliation)."""
    strict_fields: bool = False
    """Also enforce our client's own form rules (account, name, content, email, every extendInfo field)."""
    amount_drift: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    """Report `fiatAmount` off by this many VND, correctly signed, in IPNs and answers: never to be applied."""
