"""Fixtures of the training tests: tiny configs on the embedded sample set."""

from __future__ import annotations

import pytest

from tmatch.train.config import TrainConfig, apply_overrides, load_config


def tiny(out, arch: str = "neural-seg", **changes) -> TrainConfig:
    """The smoke preset (64 px, 8 pairs per epoch) written to ``out``, with changes to the
    top-level fields and, for ``arch='dual-unet'``, a small dual U-Net."""
    d = load_config("smoke").to_dict()
    if arch == "dual-unet":
        d["model"].update(arch="dual-unet", encoder="efficientnet-lite0", input_size=64,
                          pretrained=False)
    d.update(changes)
    d["out"] = str(out)
    d["progress"] = False
    d["threads"] = 1
    return TrainConfig.from_dict(d)


@pytest.fixture(scope="session")
def smoke_config() -> TrainConfig:
    return apply_overrides(load_config("smoke"), progress=False)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine OpenMP's spinning threads otherwise slow
    small convolutions down tens of times. Restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
