"""CNN Lens library: everything the pages and the CLI use; imports no streamlit."""

from explain.errors import LensError

__all__ = ["LensError"]
__version__ = "0.1.0"
