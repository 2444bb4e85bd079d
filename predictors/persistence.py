"""Predictor files: JSON with a format tag, so a model outlives library versions (nn-Meter's
pickled scikit-learn models did not)."""

from __future__ import annotations

import json
from pathlib import Path

from lutfarm.errors import LutfarmError


class PredictorError(LutfarmError, ValueError):
    """A predictor file or input that cannot be used."""


def read_model(path: str | Path, fmt: str, what: str) -> dict:
    """The JSON of a saved predictor, checked to be ``fmt``; PredictorError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise PredictorError(f"predictor file {path} does not exist; train one with "
                             f"'lutfarm predict train -o {path}'")
    try:
        data = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise PredictorError(f"{path} is not a lutfarm {what} (a binary file)") from None
    except ValueError as exc:
        raise PredictorError(f"{path} is not a lutfarm {what} (not JSON: {exc.msg} at line "
                             f"{exc.lineno}); give a file 'lutfarm predict train' wrote") from None
    except OSError as exc:
        raise PredictorError(f"cannot read predictor {path}: {exc.strerror}") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise PredictorError(f"{path} is not a lutfarm {what}")
    return data


def check_identity(path, data: dict, **wanted) -> None:
    """Refuse a model trained for another space / device / runtime, naming both."""
    for name, want in wanted.items():
        if want is not None and data.get(name) != want:
            raise PredictorError(f"{path} was trained for {name} {data.get(name)!r}, "
                                 f"not {want!r}")
