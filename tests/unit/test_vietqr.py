import re

import numpy
import pytest
import segno
import zxingcpp

from webapp.banks.vietqr import QR_MASK, crc16_ccitt_false, crc_is_valid, parse_tlv, qr_svg, transfer_payload

PUBLISHED = [
    "00020101021238560010A0000007270126000697041501121133666688880208QRIBFTTA53037045405790005802VN62220818Ung Ho Quy Vac Xin63043ACF",
    "00020101021238580010A000000727012800069704070114190304136010180208QRIBFTTA530370454065000005802VN62210817RUT TIEN 202601016304F402",
    "00020101021138580010A000000727012800069704070114190304136010180208QRIBFTTA53037045802VN63040283",
    "00020101021238530010A0000007270123000697041601092576788590208QRIBFTTA5303704540410005802VN62150811Chuyen tien6304BBB8",
    "00020101021138530010A0000007270123000697041601092576788590208QRIBFTTA53037045802VN6304AE9F",
    "00020101021238530010A0000007270123000697041601092576788590208QRIBFTTA53037045405100005802VN62150811Chuyen tien630453E6",
    "00020101021138540010A00000072701240006970422011003523509170208QRIBFTTA53037045802VN630479db",
    "00020101021238530010A0000007270123000697041601092245284790208QRIBFTTA53037045405100005802VN62340107NPS68690819TRANSFER TO SOMEONE6304AC13",
]


def test_crc_check_value() -> None:
    assert crc16_ccitt_false("123456789") == "29B1"


@pytest.mark.parametrize("payload", PUBLISHED)
def test_published_vectors_have_valid_crcs(payload: str) -> None:
    assert crc_is_valid(payload)


def test_changed_crc_is_rejected() -> None:
    assert not crc_is_valid(PUBLISHED[3][:-4] + "BBB5")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"bank_bin": "970415", "account": "113366668888", "amount": 79000, "content": "Ung Ho Quy Vac Xin"},
            PUBLISHED[0],
        ),
        (
            {"bank_bin": "970407", "account": "19030413601018", "amount": 500000, "content": "RUT TIEN 20260101"},
            PUBLISHED[1],
        ),
        ({"bank_bin": "970407", "account": "19030413601018"}, PUBLISHED[2]),
        ({"bank_bin": "970416", "account": "257678859", "amount": 1000, "content": "Chuyen tien"}, PUBLISHED[3]),
        ({"bank_bin": "970416", "account": "257678859"}, PUBLISHED[4]),
    ],
)
def test_encoder_reproduces_the_vectors(kwargs: dict, expected: str) -> None:
    assert transfer_payload(**kwargs) == expected


def test_payload_parses_back() -> None:
    fields = parse_tlv(PUBLISHED[1])
    assert fields["54"] == "500000"
    assert parse_tlv(parse_tlv(fields["38"])["01"]) == {"00": "970407", "01": "19030413601018"}
    assert parse_tlv(fields["62"]) == {"08": "RUT TIEN 20260101"}


def test_non_ascii_is_refused() -> None:
    with pytest.raises(ValueError):
        transfer_payload(bank_bin="970407", account="1903041", content="Rút tiền")


def test_svg_is_self_contained_and_titled() -> None:
    svg = qr_svg(PUBLISHED[1], title="VietQR")
    assert svg.startswith("<svg") and "<title>VietQR</title>" in svg
    assert "<script" not in svg and "href" not in svg


@pytest.mark.parametrize("content", ["RUT TIEN ABCDEFGH", "RUT TIEN 2345WXYZ", "CASHOUT"])
def test_the_drawn_picture_scans_back_to_its_payload(content: str) -> None:
    """The mask is fixed rather than chosen per picture (`QR_MASK`): a real decoder still reads every one."""
    payload = transfer_payload(bank_bin="970407", account="19030413601018", amount=1_234_000, content=content)
    qr_svg.cache_clear()
    svg = qr_svg(payload, title="VietQR")
    modules = re.search(r' d="([^"]+)"', svg).group(1)
    drawn = segno.make(payload, error="m", mask=QR_MASK)
    assert modules in drawn.svg_inline(scale=4, title="VietQR", omitsize=True)  # the SVG is this matrix
    pixels = numpy.array([[0 if dark else 255 for dark in row] for row in drawn.matrix_iter(scale=4, border=4)])
    (read,) = zxingcpp.read_barcodes(pixels.astype(numpy.uint8))
    assert read.text == payload


def test_a_payload_is_drawn_once_for_its_title(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []
    make = segno.make

    def counting_make(content: str, **options: object) -> segno.QRCode:
        drawn.append(content)
        return make(content, **options)

    monkeypatch.setattr(segno, "make", counting_make)
    payload = transfer_payload(bank_bin="970407", account="1903041", amount=123_457, content="CASHOUT ONCE")
    first = qr_svg(payload, title="VietQR")
    assert qr_svg(payload, title="VietQR") == first  # a reloaded review page: the same picture, not drawn again
    assert "<title>Mã VietQR</title>" in qr_svg(payload, title="Mã VietQR")  # another language: its own picture
    assert drawn == [payload, payload]
