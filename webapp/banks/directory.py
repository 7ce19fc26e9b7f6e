"""The VietQR bank list shipped in the package, and our one reviewed BIN → Alix Pay bank-code table."""

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

BANKS_CSV = Path(__file__).with_name("banks.csv")

# Reviewed by hand: Alix Pay's codes look like upper(short_name) without spaces (CONTRACT.md §4); their list is
# unpublished, so only banks we have reviewed are offered and anything else is refused, never guessed.
# Left out on purpose: e-wallets (MoMo, ViettelMoney, VNPTMoney), MAFC and VBSP (no retail accounts), and
# 970414 MBV (inherited, non-Vietnamese SWIFT code in the source list).
ALIX_BANK_CODES: dict[str, str] = {
    "970405": "AGRIBANK",
    "970407": "TECHCOMBANK",
    "970436": "VIETCOMBANK",
    "970415": "VIETINBANK",
    "970418": "BIDV",
    "970422": "MBBANK",
    "970416": "ACB",
    "970403": "SACOMBANK",
    "970432": "VPBANK",
    "970423": "TPBANK",
    "970437": "HDBANK",
    "970443": "SHB",
    "970441": "VIB",
    "970431": "EXIMBANK",
    "970426": "MSB",
    "970448": "OCB",
    "970440": "SEABANK",
    "970449": "LPBANK",
    "970428": "NAMABANK",
    "970409": "BACABANK",
    "970429": "SCB",
    "970412": "PVCOMBANK",
    "970425": "ABBANK",
    "970419": "NCB",
    "970427": "VIETABANK",
    "970433": "VIETBANK",
    "970452": "KIENLONGBANK",
    "970454": "VIETCAPITALBANK",
    "970438": "BAOVIETBANK",
    "970430": "PGBANK",
    "970400": "SAIGONBANK",
    "970408": "GPBANK",
    "970424": "SHINHANBANK",
    "970457": "WOORI",
    "458761": "HSBC",
}


@dataclass(frozen=True)
class Bank:
    bin: str
    code: str
    short_name: str
    name: str
    alix_code: str | None

    @property
    def payable(self) -> bool:
        return self.alix_code is not None


@cache
def all_banks() -> tuple[Bank, ...]:
    with BANKS_CSV.open(encoding="utf-8", newline="") as csv_file:
        rows = list(csv.DictReader(csv_file))
    return tuple(
        Bank(row["bin"], row["code"], row["short_name"], row["name"], ALIX_BANK_CODES.get(row["bin"])) for row in rows
    )


def payable_banks() -> tuple[Bank, ...]:
    return tuple(bank for bank in all_banks() if bank.payable)


def alix_bank_code(bank: Bank, style: str) -> str:
    """What we send as `recipientBankCode`, decided by `ALIXPAY_BANK_CODE_STYLE`.

    Alix Pay's code (`TECHCOMBANK`, as on the seed page) or the BIN (`970407`, what a client written against the
    live API sends).
    """
    return bank.bin if style == "bin" else bank.alix_code or ""
