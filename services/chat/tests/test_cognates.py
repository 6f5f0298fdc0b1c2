import pytest

from switchboard_chat.providers.cognates import cognate_keys


@pytest.mark.parametrize(
    ("russian", "english"),
    [
        ("сертификат", "certificate"),
        ("домене", "domain"),
        ("версию", "version"),
        ("хостинга", "hosting"),
        ("редирект", "redirect"),
        ("репозитории", "repository"),
        ("документацию", "documentation"),
        ("аналитика", "analytics"),
        ("конфиг", "config"),
        ("токен", "token"),
        ("проекта", "project"),
        ("пулл-реквест", "pull request"),
    ],
)
def test_a_russian_loanword_shares_a_key_with_its_english_source(russian: str, english: str) -> None:
    assert cognate_keys(russian) & cognate_keys(english)


@pytest.mark.parametrize(
    ("russian", "english"),
    [("сборка", "build"), ("отменить", "cancel"), ("сертификат", "short"), ("доставка", "delivery")],
)
def test_words_that_do_not_sound_alike_share_no_key(russian: str, english: str) -> None:
    assert not cognate_keys(russian) & cognate_keys(english)


def test_short_words_have_no_key() -> None:
    assert cognate_keys("а код? SSL") == frozenset()
