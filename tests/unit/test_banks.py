from webapp.banks.directory import ALIX_BANK_CODES, all_banks, payable_banks


def test_the_whole_vietqr_list_is_shipped() -> None:
    assert len(all_banks()) == 65


def test_only_reviewed_banks_are_payable() -> None:
    assert {bank.bin for bank in payable_banks()} == set(ALIX_BANK_CODES)
    by_bin = {bank.bin: bank for bank in all_banks()}
    assert by_bin["970414"].alix_code is None  # MBV: quirky source row, not reviewed
    assert by_bin["971025"].payable is False  # MoMo, an e-wallet


def test_every_reviewed_bin_is_in_the_list_and_codes_are_unique() -> None:
    assert set(ALIX_BANK_CODES) <= {bank.bin for bank in all_banks()}
    assert len(set(ALIX_BANK_CODES.values())) == len(ALIX_BANK_CODES)
