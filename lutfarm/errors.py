"""One base for every error a user can act on.

Each layer raises its own subclass (``ArchError``, ``StoreError``, ``DeviceError`` …); the
command line turns any ``LutfarmError`` into one line and exit status 2, and code that must
tell errors apart catches the type, never the text of a message. Each subclass also keeps
the builtin it always was (``ValueError`` or ``RuntimeError``) for existing callers.
"""

from __future__ import annotations


class LutfarmError(Exception):
    """Something the user can fix; its message names what is wrong and how to fix it."""
