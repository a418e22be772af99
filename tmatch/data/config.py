"""Data configuration: a pydantic settings model read from arguments, a YAML file, environment
variables or a ``.env`` file, with the original's names (``TRAIN_DIR``, ``TRAIN_ANNOTATION_DIR``,
``VAL_DIR``, ``VAL_ANNOTATION_DIR``).

Precedence, highest first: keyword arguments, YAML values (:meth:`DataConfig.from_yaml`),
environment variables, the ``.env`` file, defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tmatch.errors import DataError


class DataConfig(BaseSettings):
    """Where the training data is and how pairs are drawn from it.

    Attributes:
        train_dir: training images, or a COCO folder (env ``TRAIN_DIR``); ``None`` for the
            embedded sample set.
        train_annotation_dir: COCO instances file, or a folder holding one (env
            ``TRAIN_ANNOTATION_DIR``).
        val_dir: validation images (env ``VAL_DIR``); ``None`` to split the training photos.
        val_annotation_dir: validation instances file (env ``VAL_ANNOTATION_DIR``).
        kind: source kind, see :func:`~tmatch.data.open_source`.
        target: ``"box"`` or ``"mask"``.
        max_side: downscale search images to this longest side.
        min_query_hw: smallest template side.
        protocol: training protocol, e.g. ``"homography+photometric"``.
        wrong_query_rate: share of negative pairs in training (the original's name).
        train_size: share of photos for training when splitting.
        seed: seed of the split and the pairs.

    >>> DataConfig(train_dir=None, max_side=512).max_side
    512
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      case_sensitive=False, validate_default=True)

    train_dir: Path | None = None
    train_annotation_dir: Path | None = None
    val_dir: Path | None = None
    val_annotation_dir: Path | None = None
    kind: Literal["auto", "coco", "folder", "cutouts", "samples"] = "auto"
    target: Literal["box", "mask"] = "box"
    max_side: int = Field(640, ge=64)
    min_query_hw: int = Field(32, ge=4)
    protocol: str = "seed"
    wrong_query_rate: float = Field(0.2, ge=0.0, le=1.0)
    train_size: float = Field(0.9, gt=0.0, le=1.0)
    seed: int = 0

    @field_validator("train_dir", "train_annotation_dir", "val_dir", "val_annotation_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, v):
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, v: str) -> str:
        from tmatch.data.protocols import resolve

        try:
            return resolve(v)[0]
        except DataError as e:
            raise ValueError(str(e)) from None

    @classmethod
    def load(cls, **values) -> DataConfig:
        """Like the constructor, but invalid values raise :class:`DataError` (one line)."""
        try:
            return cls(**values)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ())) or "config"
            raise DataError(f"bad data setting {where}: {err.get('msg')}") from None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides) -> DataConfig:
        """Read settings from a YAML mapping (unknown keys are an error); ``overrides`` win, and
        settings the file leaves out come from the environment / ``.env``.

        A ``data:`` section is used when the file has one (a whole training config).
        """
        import yaml

        p = Path(path)
        if not p.is_file():
            raise DataError(f"config file not found: {p}")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise DataError(f"cannot read YAML config {p}: {str(e).splitlines()[0]}") from None
        if isinstance(raw, dict) and isinstance(raw.get("data"), dict):
            raw = raw["data"]
        if not isinstance(raw, dict):
            raise DataError(f"{p} must hold a mapping of data settings")
        raw = {str(k).lower(): v for k, v in raw.items()}
        unknown = sorted(set(raw) - set(cls.model_fields))
        if unknown:
            raise DataError(f"unknown data setting {unknown[0]!r} in {p}; "
                            f"valid: {', '.join(cls.model_fields)}")
        return cls.load(**{**raw, **overrides})

    def to_yaml(self, path: str | os.PathLike) -> Path:
        """Write the settings as YAML (paths as strings)."""
        import yaml

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False))
        return p

    def _open(self, images, annotations):
        from tmatch.data.sources import open_source

        return open_source(images, annotations=annotations, kind=self.kind, max_side=self.max_side,
                           min_query_hw=self.min_query_hw, target=self.target)

    def train_source(self):
        """The training :class:`~tmatch.data.pairs.PairSource` (the sample set when no path)."""
        return self._open(self.train_dir, self.train_annotation_dir)

    def val_source(self):
        """The validation source, or ``None`` when no validation data is configured (then split
        the training source with :func:`~tmatch.data.split` and :attr:`train_size`)."""
        if self.val_dir is None and self.val_annotation_dir is None:
            return None
        return self._open(self.val_dir, self.val_annotation_dir)
