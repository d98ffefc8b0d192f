"""Errors a user can cause, shown on the page in the chosen language while the page keeps running."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import streamlit as st

from explain.errors import LensError
from explain.ui.i18n import I18N_DIR, language


@cache
def _error_patterns(lang: str) -> list[tuple[re.Pattern, str]]:
    path = I18N_DIR / f"{lang}.errors.json"
    if not path.is_file():
        return []
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [(re.compile(row["pattern"], re.DOTALL), row["text"]) for row in rows]


def error_text(exc: Exception | str, lang: str | None = None) -> str:
    """A library error message in the chosen language (the common LensErrors have a translation; others stay English)."""
    message = str(exc)
    for pattern, template in _error_patterns(lang or language()):
        match = pattern.fullmatch(message)
        if match:
            return match.expand(template)
    return message


def show_error(exc: Exception) -> None:
    """The error as st.error, in the chosen language."""
    st.error(error_text(exc))


def run_safely(func: Callable[..., Any], *args, **kwargs) -> Any:
    """Call a library function; a LensError becomes st.error and None, the page keeps running."""
    try:
        return func(*args, **kwargs)
    except LensError as exc:
        show_error(exc)
        return None
