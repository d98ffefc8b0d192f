"""Tests of the app under streamlit.testing (AppTest): app.py, lessons/ and the explain/ui widgets."""
