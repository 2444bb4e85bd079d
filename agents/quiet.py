"""Native libraries (TFLite-Micro, the TFLite converters) log straight to file descriptor 2;
``QuietStderr`` sends that to a temporary file for the duration and keeps it as ``text``, so a
failure can still be explained in one line and a success prints nothing."""

from __future__ import annotations

import os
import sys
import tempfile


class QuietStderr:
    def __enter__(self) -> QuietStderr:
        sys.stderr.flush()
        self.text = ""
        self._tmp = tempfile.TemporaryFile(mode="w+b")
        self._saved = os.dup(2)
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._tmp.seek(0)
        self.text = self._tmp.read().decode(errors="replace")
        self._tmp.close()
