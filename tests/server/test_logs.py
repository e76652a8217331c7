"""Log records: `extra` fields appear as keys; uvicorn's `color_message` does not."""

from __future__ import annotations

import json
import logging

from server.logs import JsonFormatter, KeyValueFormatter


def uvicorn_record() -> logging.LogRecord:
    # What uvicorn logs on start-up: the plain message, and a coloured copy in `extra`.
    return logging.makeLogRecord(
        {
            "name": "uvicorn.error",
            "levelname": "INFO",
            "msg": "Uvicorn running on %s",
            "args": ("http://127.0.0.1:8000",),
            "color_message": "Uvicorn running on \x1b[1m%s\x1b[0m",
            "user_id": "alice",
        }
    )


def test_text_records_leave_color_message_out_and_keep_extra_fields() -> None:
    line = KeyValueFormatter().format(uvicorn_record())
    assert "color_message" not in line
    assert "\x1b" not in line
    assert line.endswith(
        "INFO uvicorn.error Uvicorn running on http://127.0.0.1:8000 user_id=alice"
    )


def test_json_records_leave_color_message_out() -> None:
    entry = json.loads(JsonFormatter().format(uvicorn_record()))
    assert "color_message" not in entry
    assert entry["message"] == "Uvicorn running on http://127.0.0.1:8000"
    assert entry["user_id"] == "alice"
