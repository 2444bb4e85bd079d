"""Training data for DNAS and one-shot supernets: an image folder the user points at, or a small
set that needs no download.

``digits32`` is scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes) upscaled
to 32x32 RGB: real images, shipped with scikit-learn, enough to see a supernet learn on a CPU.
``fashion_mnist`` reads Fashion-MNIST (Zalando, MIT: 60 000 training and 10 000 test images,
28x28 grey, 10 classes) from its four IDX files: Debian's ``dataset-fashion-mnist`` installs
them, or any folder holding them; enough held-out images (10 000) that one image is 0.01 %.
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


FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
_IDX = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format: a magic of two zero bytes, the type 0x08 for bytes,
    the number of dimensions, each dimension big-endian), gzipped or not."""
    import gzip
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of bytes (MNIST's format)")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path} holds {body.size} bytes for dimensions {dims}: truncated?")
    return body.reshape(dims)


def _idx_file(folder: Path, stem: str) -> Path | None:
    return next((folder / f"{stem}{ext}" for ext in (".gz", "")
                 if (folder / f"{stem}{ext}").is_file()), None)


def is_fashion_mnist_folder(folder: Path) -> bool:
    return folder.is_dir() and all(_idx_file(folder, stem) for pair in _IDX.values()
                                   for stem in pair)


class IDXImages(Dataset):
    """Grey IDX images as the networks take them: ``size`` px, three equal channels, [-1, 1].
    Kept as bytes at ``size`` px (60 000 images: 61 MB at 32 px), scaled per item."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, size: int, classes):
        x = torch.from_numpy(np.array(images))[:, None].float()   # a writable copy
        if x.shape[-1] != size:        # resized once, in chunks, kept as bytes
            x = torch.cat([torch.nn.functional.interpolate(chunk, size=(size, size),
                                                           mode="bilinear", align_corners=False)
                           for chunk in x.split(4096)])
        self.pixels = x.round().clamp(0, 255).to(torch.uint8)
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = self.pixels[i].float() / 127.5 - 1.0
        return x.expand(3, -1, -1), self.labels[i]


def fashion_mnist(size: int = 32, part: str = "train", folder: str | Path | None = None,
                  limit: int | None = None) -> IDXImages:
    """Fashion-MNIST's ``train`` (60 000) or ``test`` (10 000) images at ``size`` px; ``limit``
    keeps the first ones (a test's slice; the files' order mixes the classes)."""
    root = Path(folder) if folder else FASHION_MNIST_DEBIAN
    if not is_fashion_mnist_folder(root):
        where = "its Debian package is not installed: apt-get install dataset-fashion-mnist" \
            if folder is None else f"{root} does not hold its four IDX files"
        raise DataError(f"Fashion-MNIST not found ({where}); or give --data a folder holding "
                        f"train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                        f"t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    images_stem, labels_stem = _IDX[part]
    images = read_idx(_idx_file(root, images_stem))[:limit]
    labels = read_idx(_idx_file(root, labels_stem))[:limit]
    return IDXImages(images, labels, size, FASHION_MNIST_CLASSES)


NAMED = ("digits", "fashion-mnist")      # the CLI's --data help (cli.options) names them too


def data_spec(spec: str | Path) -> str:
    """How a checkpoint records ``--data``: a named dataset as named, a folder as its absolute
    path (so that a resumed run from another directory is the same run)."""
    text = str(spec)
    return text if text.partition(":")[0] in NAMED else str(Path(text).resolve())


def load_images(spec: str | Path, size: int) -> Dataset:
    """``digits`` (bundled), ``fashion-mnist`` (Debian's files; ``fashion-mnist:N`` its first N
    training images), a folder holding Fashion-MNIST's IDX files, or an image folder, at
    ``size`` px; ``.classes`` names the classes."""
    text = str(spec)
    name, _, count = text.partition(":")
    if text == "digits":
        return digits32(size)
    if name == "fashion-mnist":
        try:
            limit = int(count) if count else None
        except ValueError:
            raise DataError(f"--data {text!r}: give fashion-mnist or fashion-mnist:N "
                            f"(its first N images)") from None
        return fashion_mnist(size, limit=limit)
    if is_fashion_mnist_folder(Path(text)):
        return fashion_mnist(size, folder=text)
    return image_folder(spec, size)


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
