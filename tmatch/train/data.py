"""From the ``data`` section of a config to the training and validation pair datasets.

Sources are opened with :func:`tmatch.data.open_source`; each is split by photo with
:func:`tmatch.data.split` unless validation sources are given; protocol options (e.g. the
original's ±30° rotation and flips for ``seed``) are applied to the named protocols with
``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pydantic import ValidationError

from tmatch.data.torch_dataset import PairDataset
from tmatch.errors import DataError, TmatchError
from tmatch.train.config import DataSection, SourceSpec, TrainConfig


@dataclass
class OpenedSource:
    """A source opened for training.

    Attributes:
        spec: what the config said.
        source: the :class:`tmatch.data.PairSource`.
        train: pair indices used for training.
        valid: pair indices used for validation (empty when validation comes from elsewhere).
    """

    spec: SourceSpec
    source: object
    train: list[int]
    valid: list[int]


@dataclass
class DataBundle:
    """The datasets of a run and a description of them for logs and checkpoint metadata.

    Attributes:
        train: the training :class:`PairDataset` (``train_pairs`` slots per epoch).
        valid: the validation dataset, or ``None`` when there is nothing to validate on.
        description: JSON-ready summary (sources, sizes, protocol).
    """

    train: PairDataset
    valid: PairDataset | None
    description: dict


def open_spec(spec: SourceSpec):
    """Open one :class:`SourceSpec` with :func:`tmatch.data.open_source`."""
    from tmatch.data import open_source

    opts = dict(spec.options)
    if spec.annotations is not None:
        opts["annotations"] = spec.annotations
    if spec.images is not None:
        opts["images"] = spec.images
    if spec.backgrounds is not None:
        opts["backgrounds"] = spec.backgrounds
    if spec.kind == "samples" or (spec.path is None and spec.kind == "auto"):
        return open_source(None, **opts)
    try:
        return open_source(spec.path, kind=spec.kind, **opts)
    except TypeError as e:  # an unknown option in `options`
        raise TmatchError(f"bad option for data source {spec.describe()}: {e}") from None


def env_sources() -> tuple[list[SourceSpec], list[SourceSpec] | None]:
    """Training and validation sources named by :class:`tmatch.data.DataConfig` — the
    environment or a ``.env`` file with the original's names (TRAIN_DIR, TRAIN_ANNOTATION_DIR,
    VAL_DIR, VAL_ANNOTATION_DIR) plus its ``max_side``, ``min_query_hw`` and ``target`` — or the
    embedded sample set when TRAIN_DIR is not set. Validation is ``None`` (split the training
    photos) unless VAL_DIR / VAL_ANNOTATION_DIR is set."""
    from tmatch.data.config import DataConfig

    try:
        dc = DataConfig()
    except ValidationError as e:  # a bad value in the environment / .env
        raise DataError(f"bad data setting in the environment / .env: {str(e).splitlines()[0]}") from None
    opts = {"max_side": dc.max_side, "min_query_hw": dc.min_query_hw, "target": dc.target}

    def spec(images, annotations) -> SourceSpec:
        kind = dc.kind if dc.kind != "samples" else "auto"
        return SourceSpec(path=_str_or_none(images), annotations=_str_or_none(annotations),
                          kind=kind, options=dict(opts))

    if dc.train_dir is None and dc.train_annotation_dir is None:
        return [SourceSpec(kind="samples", options={"max_side": dc.max_side,
                                                    "min_query_hw": dc.min_query_hw})], None
    train = [spec(dc.train_dir, dc.train_annotation_dir)]
    valid = None
    if dc.val_dir is not None or dc.val_annotation_dir is not None:
        valid = [spec(dc.val_dir, dc.val_annotation_dir)]
    return train, valid


def _str_or_none(v) -> str | None:
    return None if v in (None, "") else str(v)


def protocol_steps(name: str, options: dict[str, dict]) -> list:
    """The steps of protocol ``name`` (``"a+b"``) with per-step settings from ``options``
    (``{"seed": {"angle": 30}}``) applied to the named steps."""
    from tmatch.data.protocols import PROTOCOLS, resolve

    _, steps = resolve(name)
    unknown = [k for k in options if k not in PROTOCOLS]
    if unknown:
        raise TmatchError(f"protocol_options names unknown protocol {unknown[0]!r}; "
                          f"choose from: {', '.join(PROTOCOLS)}")
    out = []
    for st in steps:
        opts = {k: tuple(v) if isinstance(v, list) else v
                for k, v in options.get(getattr(st, "name", ""), {}).items()}
        if opts:
            try:
                st = dataclasses.replace(st, **opts)
            except TypeError as e:
                raise TmatchError(f"bad protocol_options for {st.name!r}: {e}") from None
        out.append(st)
    return out


def build_data(config: TrainConfig) -> DataBundle:
    """Open the sources of ``config.data``, split them and build the two datasets.

    Raises:
        DataError: a source is empty or nothing is left to train on.
    """
    d: DataSection = config.data
    train_specs, valid_specs = (list(d.sources), d.valid_sources)
    if not train_specs:
        train_specs, env_valid = env_sources()
        if valid_specs is None:
            valid_specs = env_valid
    opened: list[OpenedSource] = []
    for spec in train_specs:
        src = open_spec(spec)
        if len(src) == 0:
            raise DataError(f"data source {spec.describe()} holds no pairs")
        if valid_specs is None and d.train_size < 1:
            from tmatch.data import split

            tr, va = split(src, d.train_size, d.split_seed)
        else:
            tr, va = list(range(len(src))), []
        if not tr:
            raise DataError(f"data source {spec.describe()} leaves no training pairs after the split")
        opened.append(OpenedSource(spec, src, tr, va))
    steps = protocol_steps(d.protocol, d.protocol_options)
    train = PairDataset([o.source for o in opened], config.model, length=d.train_pairs,
                        indices=[o.train for o in opened], weights=[o.spec.weight for o in opened],
                        protocol=steps, wrong_query_rate=d.wrong_query_rate, seed=config.seed,
                        target=d.target)
    vsteps = protocol_steps(d.valid_protocol or d.protocol, d.protocol_options)
    valid = None
    vdesc: list[dict] = []
    if d.valid_pairs > 0:
        if valid_specs is not None:
            vs = [(s, open_spec(s)) for s in valid_specs]
            vsrc = [(s, src, list(range(len(src)))) for s, src in vs if len(src) > 0]
        else:
            vsrc = [(o.spec, o.source, o.valid) for o in opened if o.valid]
        if vsrc:
            # A different seed stream than training, the same pairs every epoch.
            valid = PairDataset([v[1] for v in vsrc], config.model, length=d.valid_pairs,
                                indices=[v[2] for v in vsrc], weights=[v[0].weight for v in vsrc],
                                protocol=vsteps, wrong_query_rate=d.wrong_query_rate,
                                seed=config.seed + 1_000_003, target=d.target)
            vdesc = [{"source": v[0].describe(), "pairs": len(v[2])} for v in vsrc]
    desc = {
        "train_sources": [{"source": o.spec.describe(), "kind": getattr(o.source, "name", "?"),
                           "pairs": len(o.train), "weight": o.spec.weight} for o in opened],
        "valid_sources": vdesc,
        "protocol": train.protocol_name,
        "valid_protocol": valid.protocol_name if valid is not None else None,
        "protocol_options": d.protocol_options,
        "wrong_query_rate": d.wrong_query_rate,
        "train_pairs_per_epoch": d.train_pairs,
        "valid_pairs": d.valid_pairs if valid is not None else 0,
    }
    return DataBundle(train=train, valid=valid, description=desc)
