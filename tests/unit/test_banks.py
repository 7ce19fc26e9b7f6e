import pytest

from webapp.banks.directory import ALIX_BANK_CODES, all_banks, lookup, payable_banks


def test_the_whole_vietqr_list_is_shipped() -> None:
    assert len(all_banks()) == 65


@pytest.mark.parametrize("query", ["970407", "TCB", "tcb", "Techcombank", "TECHCOMBANK"])
def test_lookup_accepts_bin_code_short_name_and_alix_code(query: str) -> None:
    bank = lookup(query)
    assert bank is not None and bank.bin == "970407" and bank.alix_code == "TECHCOMBANK"


def test_codes_with_spaces_and_mixed_case_are_normalised() -> None:
    assert lookup("ibk-hn").bin == "970455"
    assert lookup("MOMO").bin == "971025"


def test_only_reviewed_banks_are_payable() -> None:
    assert {bank.bin for bank in payable_banks()} == set(ALIX_BANK_CODES)
    assert lookup("970414").alix_code is None  # MBV: quirky source row, not reviewed
    assert lookup("MoMo").payable is False  # an e-wallet


def test_every_reviewed_bin_is_in_the_list_and_codes_are_unique() -> None:
    assert set(ALIX_BANK_CODES) <= {bank.bin for bank in all_banks()}
    assert len(set(ALIX_BANK_CODES.values())) == len(ALIX_BANK_CODES)
