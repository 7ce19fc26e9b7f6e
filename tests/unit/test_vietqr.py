import re

import numpy
import pytest
import zxingcpp

from webapp.banks.vietqr import QR_ERROR_LEVEL, crc16_ccitt_false, crc_is_valid, parse_tlv, qr_svg, transfer_payload

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
    """The SVG we serve, its rectangles filled in as pixels, is read back by a decoder: the payload, at level M."""
    payload = transfer_payload(bank_bin="970407", account="19030413601018", amount=1_234_000, content=content)
    qr_svg.cache_clear()
    svg = qr_svg(payload, title="VietQR")
    (read,) = zxingcpp.read_barcodes(pixels_of(svg, scale=4))
    assert read.text == payload and read.ec_level == QR_ERROR_LEVEL


def pixels_of(svg: str, scale: int) -> numpy.ndarray:
    """The picture an SVG of rectangles (`M x y h w v h h-w Z`, as drawn) shows, black on white."""
    size = int(re.search(r'viewBox="0 0 (\d+) \1"', svg).group(1))  # type: ignore[union-attr]
    image = numpy.full((size, size), 255, dtype=numpy.uint8)
    path = re.search(r' d="([^"]+)"', svg).group(1)  # type: ignore[union-attr]
    rectangles = re.findall(r"M(\d+) (\d+)h(\d+)v(\d+)h-\d+Z", path)
    assert "".join(f"M{x} {y}h{w}v{h}h-{w}Z" for x, y, w, h in rectangles) == path  # nothing else is drawn
    for x, y, width, height in (map(int, rectangle) for rectangle in rectangles):
        image[y : y + height, x : x + width] = 0
    return image.repeat(scale, axis=0).repeat(scale, axis=1)


def test_a_payload_is_drawn_once_for_its_title(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []
    create = zxingcpp.create_barcode

    def counting_create(content: str, *args: object, **options: object) -> zxingcpp.Barcode:
        drawn.append(content)
        return create(content, *args, **options)

    monkeypatch.setattr(zxingcpp, "create_barcode", counting_create)
    payload = transfer_payload(bank_bin="970407", account="1903041", amount=123_457, content="CASHOUT ONCE")
    first = qr_svg(payload, title="VietQR")
    assert qr_svg(payload, title="VietQR") == first  # a reloaded review page: the same picture, not drawn again
    assert "<title>Mã VietQR</title>" in qr_svg(payload, title="Mã VietQR")  # another language: its own picture
    assert drawn == [payload, payload]


def test_a_title_is_escaped() -> None:
    svg = qr_svg(PUBLISHED[1], title="<script>alert(1)</script> & co")
    assert "<script" not in svg and "<title>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</title>" in svg
