from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.http.schemas import SendMessageRequest


def test_content_is_trimmed_and_keeps_newlines_and_tabs() -> None:
    body = SendMessageRequest.model_validate({"recipientId": 2, "content": "  a\n\tb  "})
    assert body.content == "a\n\tb"


def test_content_length_counts_characters_after_trimming() -> None:
    SendMessageRequest.model_validate({"recipientId": 2, "content": " " + "é" * 2000 + " "})
    with pytest.raises(ValidationError):
        SendMessageRequest.model_validate({"recipientId": 2, "content": "é" * 2001})


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\r"])
def test_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        SendMessageRequest.model_validate({"recipientId": 2, "content": f"a{bad}b"})


def test_unknown_fields_are_ignored() -> None:
    body = SendMessageRequest.model_validate({"recipientId": 2, "content": "x", "extra": 1})
    assert not hasattr(body, "extra")


@pytest.mark.parametrize("field", ["content", "clientMessageId"])
@pytest.mark.parametrize("bad", ["a\ud8ccb", "a\x00b", "a\x0bb"])
def test_text_that_cannot_be_stored_is_refused(field: str, bad: str) -> None:
    # found by schemathesis: a NUL or a lone surrogate in clientMessageId was a 500
    body = {"recipientId": 2, "content": "x", field: bad}
    with pytest.raises(ValidationError):
        SendMessageRequest.model_validate(body)
