"""VietQR payloads (EMVCo merchant-presented mode with the NAPAS tag 38): TLV encoding, CRC, and an SVG picture."""

import functools

import segno

NAPAS_GUID = "A000000727"
SERVICE_TO_ACCOUNT = "QRIBFTTA"
CURRENCY_VND = "704"


def crc16_ccitt_false(data: str) -> str:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), as 4 upper-case hex digits."""
    crc = 0xFFFF
    for byte in data.encode("ascii"):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def tlv(tag: str, value: str) -> str:
    if not value.isascii():
        raise ValueError(f"VietQR values must be ASCII (tag {tag})")
    if not 0 < len(value) <= 99:
        raise ValueError(f"tag {tag}: length {len(value)} is outside 1..99")
    return f"{tag}{len(value):02d}{value}"


def parse_tlv(payload: str) -> dict[str, str]:
    fields, position = {}, 0
    while position < len(payload):
        tag, length = payload[position : position + 2], int(payload[position + 2 : position + 4])
        fields[tag] = payload[position + 4 : position + 4 + length]
        position += 4 + length
    return fields


def transfer_payload(*, bank_bin: str, account: str, amount: int | None = None, content: str | None = None) -> str:
    """A VietQR for a NAPAS 247 transfer to an account: dynamic (`12`) when it carries an amount."""
    beneficiary = tlv("00", bank_bin) + tlv("01", account)
    parts = [
        tlv("00", "01"),
        tlv("01", "12" if amount else "11"),
        tlv("38", tlv("00", NAPAS_GUID) + tlv("01", beneficiary) + tlv("02", SERVICE_TO_ACCOUNT)),
        tlv("53", CURRENCY_VND),
    ]
    if amount:
        parts.append(tlv("54", str(amount)))
    parts.append(tlv("58", "VN"))
    if content:
        parts.append(tlv("62", tlv("08", content)))
    body = "".join(parts) + "6304"
    return body + crc16_ccitt_false(body)


def crc_is_valid(payload: str) -> bool:
    """Checks the trailing CRC (bank apps emit it in either case)."""
    if len(payload) < 8 or payload[-8:-4] != "6304":
        return False
    return crc16_ccitt_false(payload[:-4]) == payload[-4:].upper()


QR_MASK = 0
"""The data mask, fixed: choosing the best of the eight costs 4.6 of segno's 5.8 ms per picture, the largest part of
a review page's CPU (docs/PERFORMANCE.md). Every mask is read by scanners (tests/unit/test_vietqr.py decodes ours);
mask 0 is the one segno picks most often for our payloads (half of them)."""


@functools.lru_cache(maxsize=128)
def qr_svg(payload: str, *, title: str) -> str:
    """The payload as an inline SVG with an accessible title; no scripts, no external references.

    Kept for the last payloads drawn: reloading a review page shows the same picture without drawing it again.
    """
    return segno.make(payload, error="m", mask=QR_MASK).svg_inline(scale=4, title=title, omitsize=True)
