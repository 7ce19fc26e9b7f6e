"""What an order's history stores in English reads back in the agent's language, from the same phrase."""

from webapp.i18n import explain
from webapp.orders import phrases as order_phrases
from webapp.support.phrases import PHRASES, REVEALED, explainer


def test_a_stored_phrase_reads_back_translated_with_its_values() -> None:
    stored = order_phrases.POLL_BEHIND(status="SUCCESS", ours="FAIL")
    assert stored == "poll says SUCCESS but we have FAIL"  # what the history always stored
    assert explainer("vi")(stored) == "kiểm tra báo SUCCESS nhưng chúng tôi ghi FAIL"
    assert explainer("zh")(stored) == "查询显示 SUCCESS，但我们记录的是 FAIL"
    assert explainer("en")(stored) == stored


def test_disagreements_joined_by_semicolons_read_back_each() -> None:
    stored = "; ".join(
        [
            order_phrases.AMOUNT_DIFFERS(theirs=499000, ours=500000),
            order_phrases.FIAT_CURRENCY_DIFFERS(theirs="'USD'", ours="VND"),
        ]
    )
    assert (
        explain(stored, PHRASES, "vi")
        == "fiatAmount 499000 khác với 500000 của lệnh; fiatCurrency 'USD' không phải VND"
    )
    # A phrase with "; " inside it is still one phrase.
    found = order_phrases.POLL_FOUND(status="SUCCESS")
    assert explain(found, PHRASES, "vi") == "kiểm tra thấy SUCCESS; chưa có IPN nào báo vậy"


def test_a_value_that_is_itself_a_message_is_translated_too() -> None:
    assert explainer("vi")(REVEALED(field="account number")) == "đã hiện số tài khoản"


def test_text_that_is_no_phrase_is_left_to_be_shown_as_stored() -> None:
    assert explainer("vi")("RuntimeError at service.py:12") is None
    assert explainer("vi")("poll says SUCCESS but; something else") is None
    assert explainer("vi")("") is None
