"""Properties of the dates in a ticket's transcript: each line's time is printed in UTC, as its label
says, whatever offset the time came with; every line's text reaches both the plain-text and the ADF body."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_integrations.connectors.transcript import adf_document, adf_to_text, line_label, plain_text
from switchboard_shared.contracts.chat import Role
from switchboard_shared.contracts.integrations import CreateTicket, TranscriptLine

PROPERTY = settings(max_examples=200, deadline=None)

offsets = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
moments = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30))


@PROPERTY
@given(moment=moments, offset=offsets)
def test_a_line_is_stamped_with_its_utc_time(moment: datetime, offset: timezone) -> None:
    at = moment.replace(tzinfo=offset)
    label = line_label(TranscriptLine(role=Role.USER, text="hi", at=at))
    assert label == f"Customer ({at.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"


@PROPERTY
@given(moment=moments)
def test_a_time_without_offset_is_taken_as_utc(moment: datetime) -> None:
    label = line_label(TranscriptLine(role=Role.OPERATOR, text="hi", at=moment))
    assert label == f"Operator ({moment:%Y-%m-%d %H:%M} UTC)"


@PROPERTY
@given(
    lines=st.lists(
        st.builds(
            TranscriptLine,
            role=st.sampled_from(list(Role)),
            text=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40),
            at=st.none() | moments.map(lambda m: m.replace(tzinfo=UTC)),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_every_line_reaches_both_ticket_bodies(lines: list[TranscriptLine]) -> None:
    request = CreateTicket(subject="Help", transcript=lines, conversation_id="c-1", idempotency_key="k-1")
    text, adf = plain_text(request), adf_to_text(adf_document(request))
    for line in lines:
        assert f"{line_label(line)}: {line.text}" in text
        assert f"{line_label(line)}: {line.text}" in adf
