"""Training data for DNAS and one-shot supernets: an image folder the user points at, or a small
set that needs no download.

``digits32`` is scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes) upscaled
to 32x32 RGB: real images, shipped with scikit-learn, enough to see a supernet learn on a CPU.
``image_folder`` reads ``root/<class>/<image>``: with torchvision's ``ImageFolder`` and
transforms where torchvision imports, else with the same layout read lazily through PIL (PyPI's
torchvision is a CUDA build that does not load beside the CPU build of torch lutfarm installs).
Either way images are decoded in DataLoader workers, one batch at a time, not all up front.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from lutfarm.errors import LutfarmError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp")


class DataError(LutfarmError, ValueError):
    """A dataset that cannot be read."""


def digits32(size: int = 32) -> TensorDataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0         # (N, 1, 8, 8)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                        align_corners=False)
    x = (x - 0.5) / 0.5
    data = TensorDataset(x.repeat(1, 3, 1, 1), torch.tensor(d.target, dtype=torch.long))
    data.classes = [str(c) for c in range(10)]
    return data


class FolderImages(Dataset):
    """``root/<class>/<image>`` decoded lazily with PIL, scaled to [-1, 1] at ``size`` px: what
    torchvision's ImageFolder with Resize, ToTensor and Normalize(0.5, 0.5) gives."""

    def __init__(self, root: Path, size: int):
        self.root, self.size = root, size
        self.classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        self.samples = [(f, label) for label, name in enumerate(self.classes)
                        for f in sorted((root / name).iterdir())
                        if f.suffix.lower() in IMAGE_SUFFIXES]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        from PIL import Image

        path, label = self.samples[i]
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB").resize((self.size, self.size)), np.float32)
        return torch.from_numpy(pixels / 127.5 - 1.0).permute(2, 0, 1).contiguous(), label


def _torchvision_folder(root: Path, size: int):
    """torchvision's ImageFolder, or None where torchvision does not import."""
    try:
        from torchvision import datasets, transforms
    except Exception:       # ImportError, or PyPI's CUDA build failing beside CPU torch
        return None
    return datasets.ImageFolder(str(root), transforms.Compose([
        transforms.Resize((size, size)), transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]),
        is_valid_file=lambda p: p.lower().endswith(IMAGE_SUFFIXES))


def image_folder(root: str | Path, size: int) -> Dataset:
    root = Path(root)
    if not root.exists():
        raise DataError(f"image folder {root} does not exist; give --data a directory of class "
                        f"folders (root/<class>/<image>) or a named dataset")
    if not root.is_dir():
        raise DataError(f"{root} is not a directory of class folders (root/<class>/<image>)")
    classes = [p for p in root.iterdir() if p.is_dir()]
    if len(classes) < 2:
        raise DataError(f"{root} needs at least two class folders, found {len(classes)}")
    data = FolderImages(root, size)
    if len(data) == 0:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return _torchvision_folder(root, size) or data


def load_images(spec: str | Path, size: int) -> Dataset:
    """``digits`` (bundled) or an image folder, at ``size`` px; ``.classes`` names the classes."""
    return digits32(size) if str(spec) == "digits" else image_folder(spec, size)


def num_classes(data: Dataset) -> int:
    while isinstance(data, Subset):
        data = data.dataset
    return len(data.classes)


def split(data: Dataset, held_out: float = 0.2, seed: int = 0) -> tuple[Subset, Subset]:
    """(training, held-out) subsets, the same for the same seed: subnets are scored on images
    their weights never trained on."""
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).tolist()
    cut = len(data) - max(1, int(round(len(data) * held_out)))
    return Subset(data, order[:cut]), Subset(data, order[cut:])


def loader(data: Dataset, batch_size: int, shuffle: bool = False, workers: int = 0,
           seed: int = 0, sampler=None, drop_last: bool = False) -> DataLoader:
    """A DataLoader whose order depends on ``seed`` only (resumed runs see the same batches)."""
    return DataLoader(data, batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=workers, drop_last=drop_last, persistent_workers=False,
                      generator=torch.Generator().manual_seed(seed) if shuffle else None)
