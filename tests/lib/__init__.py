"""Tests of the library explain/* (no streamlit, no CLI process): real weights, real photos."""
