"""Datasets for DNAS: an image folder the user points at, or a small one that needs no download.

``digits32`` is scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes) upscaled
to 32x32 RGB: real images, shipped inside the package, enough to see DNAS learn on a CPU.
``image_folder`` reads ``root/<class>/<image>`` like torchvision's ImageFolder (PIL, no
torchvision needed), resized to the layout's input size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from lutfarm.errors import LutfarmError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp"}


class DataError(LutfarmError, ValueError):
    """A dataset that cannot be read."""


def digits32(size: int = 32) -> TensorDataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0         # (N, 1, 8, 8)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                        align_corners=False)
    x = (x - 0.5) / 0.5
    return TensorDataset(x.repeat(1, 3, 1, 1), torch.tensor(d.target, dtype=torch.long))


def image_folder(root: str | Path, size: int) -> TensorDataset:
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a directory of class folders (root/<class>/<image>)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DataError(f"{root} needs at least two class folders, found {len(classes)}")
    xs, ys = [], []
    for label, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                img = Image.open(f).convert("RGB").resize((size, size))
                xs.append(np.asarray(img, dtype=np.float32) / 127.5 - 1.0)
                ys.append(label)
    if not xs:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    x = torch.tensor(np.stack(xs)).permute(0, 3, 1, 2).contiguous()
    return TensorDataset(x, torch.tensor(ys))
