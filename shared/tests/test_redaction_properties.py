"""Properties of PII redaction: every generated card number, phone number, email address and IBAN, in
Russian and English formats with space, dash, dot or no separators, is masked wherever it sits in a
sentence; ordinary text (words, prices, dates, times, order numbers, short numbers) is left as it was."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_shared.redaction import redact_text, redact_value

PROPERTY = settings(max_examples=300, deadline=None)

SEPARATORS = st.sampled_from([" ", "-", ".", ""])
digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


def number(length: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=length, max_size=length)


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    separator = draw(SEPARATORS)
    length = draw(st.sampled_from([16, 16, 15, 19, 13]))
    raw = draw(st.sampled_from("2345")) + draw(number(length - 1))
    if length == 15:  # American Express: 4-6-5
        groups = [raw[:4], raw[4:10], raw[10:]]
    else:
        groups = [raw[i : i + 4] for i in range(0, length, 4)]
    return separator.join(groups)


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    sep = draw(SEPARATORS)
    style = draw(st.sampled_from(["ru+7", "ru8", "ru-brackets", "us", "us-brackets", "uk", "intl"]))
    if style == "ru+7":
        code, a, b, c = draw(number(3)), draw(number(3)), draw(number(2)), draw(number(2))
        return f"+7{sep}{code}{sep}{a}{sep}{b}{sep}{c}"
    if style == "ru8":
        code, a, b, c = draw(number(3)), draw(number(3)), draw(number(2)), draw(number(2))
        return f"8{sep}{code}{sep}{a}{sep}{b}{sep}{c}"
    if style == "ru-brackets":
        return f"+7 ({draw(number(3))}) {draw(number(3))}-{draw(number(2))}-{draw(number(2))}"
    if style == "us":
        return f"{draw(st.sampled_from(['+1' + sep, '1' + sep, '']))}{draw(number(3))}{sep}{draw(number(3))}{sep}{draw(number(4))}"
    if style == "us-brackets":
        return f"({draw(number(3))}) {draw(number(3))}-{draw(number(4))}"
    if style == "uk":
        return f"+44{sep}{draw(number(2))}{sep}{draw(number(4))}{sep}{draw(number(4))}"
    return f"+{draw(st.integers(30, 99))}{sep}{draw(number(3))}{sep}{draw(number(3))}{sep}{draw(number(3))}"


@st.composite
def emails(draw: st.DrawFn) -> str:
    local = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=16))
    local = local.strip(".") or "a"
    domain = draw(st.sampled_from(["example.com", "mail.ru", "yandex.ru", "sub.example.co.uk", "пример.рф"]))
    user = draw(st.sampled_from([local, local.upper(), "иван.петров", "ivan"]))
    return f"{user}@{domain}"


def iban_check_digits(country: str, bban: str) -> str:
    """ISO 13616 check digits: 98 minus the remainder of BBAN + country + 00 (letters as 10..35) by 97."""
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{98 - int(digits) % 97:02d}"


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country, length = draw(
        st.sampled_from([("DE", 22), ("GB", 22), ("FR", 27), ("KZ", 20), ("BY", 28), ("NL", 18)])
    )
    bban = ""
    if country in ("GB", "NL", "BY"):
        bban += draw(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=4, max_size=4))
    bban += draw(number(length - 4 - len(bban)))
    raw = country + iban_check_digits(country, bban) + bban
    separator = draw(SEPARATORS)
    return separator.join(raw[i : i + 4] for i in range(0, len(raw), 4))


personal = st.one_of(card_numbers(), phone_numbers(), emails(), ibans())

ORDINARY_WORDS = [
    "hello",
    "order",
    "delivery",
    "refund",
    "the",
    "parcel",
    "arrived",
    "today",
    "заказ",
    "доставка",
    "возврат",
    "спасибо",
    "посылка",
    "пришла",
    "вчера",
    "iPhone",
    "USB-C",
    "Wi-Fi",
    "№",
    "—",
    "?",
    "!",
]
ordinary_tokens = st.one_of(
    st.sampled_from(ORDINARY_WORDS),
    st.integers(0, 99999).map(str),  # quantities, short codes
    st.builds("{}-{}".format, st.sampled_from("ABZ"), st.integers(100, 99999)),  # order numbers
    st.builds("{:,} ₽".format, st.integers(1, 999_999)).map(lambda s: s.replace(",", " ")),  # prices
    st.builds("${:.2f}".format, st.floats(0, 99999, allow_nan=False)),
    st.builds("{:04d}-{:02d}-{:02d}".format, st.integers(1990, 2040), st.integers(1, 12), st.integers(1, 28)),
    st.builds("{:02d}.{:02d}.{:04d}".format, st.integers(1, 28), st.integers(1, 12), st.integers(1990, 2040)),
    st.builds("{:02d}:{:02d}".format, st.integers(0, 23), st.integers(0, 59)),
    st.builds("v{}.{}.{}".format, st.integers(0, 20), st.integers(0, 20), st.integers(0, 99)),
)
# A word between any two figures: "1000 1000" could be anyone's phone number, "1000 шт. 1000" is not.
ordinary_text = st.lists(
    st.tuples(st.sampled_from(ORDINARY_WORDS), ordinary_tokens).map(" ".join), max_size=8
).map(" ".join)
SURROUNDINGS = st.sampled_from(
    ["{}", "my card {} thanks", "мой номер: {}.", "({})", "«{}»", "call me at {}, please"]
)


@PROPERTY
@given(value=personal, frame=SURROUNDINGS, before=ordinary_text)
def test_personal_data_is_masked(value: str, frame: str, before: str) -> None:
    text = f"{before} {frame.format(value)}"
    redacted = redact_text(text)
    assert value not in redacted, redacted
    digits_only = "".join(ch for ch in value if ch.isdigit())
    if len(digits_only) >= 7:
        assert digits_only not in "".join(ch for ch in redacted if ch.isdigit()), redacted


@PROPERTY
@given(text=ordinary_text)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


@PROPERTY
@given(value=personal, key=st.sampled_from(["message", "text", "comment", "query"]))
def test_nested_event_properties_are_masked(value: str, key: str) -> None:
    event = {"properties": {key: value, "items": [value, {"note": value}]}, "count": 3}
    flat = repr(redact_value("event", event))
    assert value not in flat
    assert "'count': 3" in flat


@given(st.lists(st.integers(0, 255), min_size=4, max_size=4), st.integers(1, 65535))
def test_ipv4_addresses_in_connection_errors_are_not_phone_numbers(octets: list[int], port: int) -> None:
    address = ".".join(str(octet) for octet in octets)
    line = f"Cannot connect to host {address}:{port} ssl:default"
    assert redact_text(line) == line
