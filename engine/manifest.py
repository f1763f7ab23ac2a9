"""Model manifests: an encoder is an ONNX file plus this small JSON description.

Keeping the preprocessing contract (input size, mean/std) next to the weights lets any ONNX
image encoder be dropped into a library without code changes, and lets a fine-tuned model
record which version it was trained from.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

MANIFEST_NAME = "manifest.json"


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,119}")


@dataclass(frozen=True)
class ModelManifest:
    """What the engine must know to run an ONNX encoder.

    The ONNX graph takes float32 NCHW RGB input, already scaled as ``(x/255 - mean) / std``,
    with a dynamic batch axis, and returns one ``embedding_dim`` vector per image.
    """

    version: str
    file: str = "model.onnx"
    architecture: str = "tf_efficientnet_lite0"
    input_name: str = "input"
    output_name: str = "embedding"
    input_size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    embedding_dim: int = 1280
    licence: str = ""
    parent_version: str | None = None
    # Softmax temperature turning cosine similarities into the 0-1 scores users see.
    temperature: float = 0.03
    sha256: str = ""
    created_at: str = ""
    notes: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ModelManifest:
        known = set(cls.__dataclass_fields__)
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in ("mean", "std"):
            if key in kwargs:
                kwargs[key] = tuple(float(x) for x in kwargs[key])  # type: ignore[union-attr]
        version = kwargs.get("version")
        # The version names the model's folder in the library: '../x' would put it, and a
        # later removal, outside.
        if not isinstance(version, str) or not _PLAIN_NAME.fullmatch(version):
            raise ValueError(
                f"model version {version!r} is not a plain name (letters, digits, '.', '_', "
                "'-', '+'; at most 120 characters)"
            )
        return cls(**kwargs)  # type: ignore[arg-type]

    @classmethod
    def load(cls, folder: Path) -> ModelManifest:
        path = Path(folder) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"model folder {folder} has no {MANIFEST_NAME}") from exc
        return cls.from_dict(data)

    def save(self, folder: Path) -> Path:
        """Write the manifest atomically next to the model file."""
        from engine.atomic import atomic_write_text

        path = Path(folder) / MANIFEST_NAME
        atomic_write_text(path, self.to_json())
        return path


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Content hash of a file, streamed so large files never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def model_folder_problem(folder: Path) -> str | None:
    """Why a model folder's files cannot be trusted (missing, or a hash that disagrees with
    its manifest), or None when they are intact."""
    from engine.errors import describe

    try:
        manifest = ModelManifest.load(folder)
    except (OSError, ValueError, TypeError) as exc:
        return f"its manifest is missing or unreadable ({describe(exc)})"
    weights = Path(folder) / manifest.file
    if not weights.is_file():
        return f"its model file {manifest.file} is missing"
    if manifest.sha256:
        try:
            actual = file_sha256(weights)
        except OSError as exc:
            return f"its model file cannot be read ({describe(exc)})"
        if actual != manifest.sha256:
            return f"its model file {manifest.file} is damaged (hash mismatch)"
    return None
