"""A local stand-in for Alix Pay, run with `python -m webapp sandbox`.

A separate Litestar app that verifies our signatures, signs its answers, drives orders through
statuses and POSTs signed IPNs with retries.

Magic inputs choose an order's fate (documented in the README):
- an account number ending `0000`: FAIL straight from AWAITING_PAYMENT (the bank refused the transfer);
- an amount of 66 666 VND: ERROR straight from AWAITING_PAYMENT;
- the recipient name `EXPIRE ME`: stays AWAITING_PAYMENT until `expiresAt`, then FAIL;
- anything else: AWAITING_PAYMENT → PAYMENT_COMPLETED → PROCESSING_TOKEN_TRANSFER → SUCCESS.
"""
