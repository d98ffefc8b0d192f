"""Korean / English labels: every visible string goes through t()."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import streamlit as st

LANGUAGES = {"en": "English", "ko": "한국어"}
I18N_DIR = Path(__file__).resolve().parents[2] / "assets" / "i18n"  # <lang>.json labels, <lang>.errors.json messages


@cache
def _table(lang: str) -> dict[str, str]:
    path = I18N_DIR / f"{lang}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


_last_language = ["en"]


def language() -> str:
    """The session's language; outside a script run, the one the last run used."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    # AppTest calls widgets' format_func from the test thread, without a session: label its options like the run did.
    if get_script_run_ctx(suppress_warning=True) is None:
        return _last_language[0]
    # Before the sidebar's switch is drawn (st.navigation's page titles) a shared link's ?lang= already counts.
    lang = st.session_state.get("lang") or st.query_params.get("lang", "en")
    _last_language[0] = lang if lang in LANGUAGES else "en"
    return _last_language[0]


def t(text: str, **fmt) -> str:
    """The label in the chosen language (English text is the key); {name} fields filled from fmt."""
    out = _table(language()).get(text, text) if language() != "en" else text
    return out.format(**fmt) if fmt else out
