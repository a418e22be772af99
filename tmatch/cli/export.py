"""``tmatch export``: a neural matcher's checkpoint as two ONNX graphs (template, search)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tmatch.cli._options import MethodOrWeights, Weights, method_for


def export_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for template.onnx, search.onnx, model.json.")],
    method: MethodOrWeights = None,
    weights: Weights = None,
    check: Annotated[bool, typer.Option("--check/--no-check",
                                        help="Compare onnxruntime with PyTorch on a real photo.")] = True,
    tolerance: Annotated[float, typer.Option(help="Largest accepted torch/ONNX difference with --check.")] = 1e-3,
) -> None:
    """Export a neural matcher to ONNX.

    neural-seg and dual-unet: a template graph + a search graph. The template graph turns the
    template into its encoding once; the search graph takes an image and that encoding and
    returns mask and presence logits — a video encodes its template once. neural: its feature
    network (features.onnx: EfficientNet-Lite0 strides 2, 4, 8, any image size) and its presence
    head (presence.json); the correlation and refinement around them are plain array code.
    Without --weights the weights shipped with tmatch are used; without --method the matcher is
    the one the weights file names (default: neural).

    Examples:

      tmatch export --method neural --out onnx/neural

      tmatch export --weights runs/neural-seg/best.safetensors --out onnx/seg

      tmatch export --method dual-unet --weights dual.safetensors --out onnx/dual --no-check
    """
    from tmatch.errors import TmatchError
    from tmatch.models.export import check_export_dir
    from tmatch.outputs import Output, check_number, check_outputs, remove_stale

    tolerance = check_number(tolerance, "--tolerance", lo=0)
    check_outputs({"--out": Output(out, "folder")}, {"--weights": weights})
    check_export_dir(out)
    remove_stale(out)
    name = method_for(method, weights, "neural").strip().lower()
    if name == "neural":
        from tmatch.files import atomic_dir
        from tmatch.models.features import export_features

        with atomic_dir(out) as tmp:  # whole or not at all, like the network exports
            path, diff = export_features(tmp, weights=weights, check=check)
        typer.echo(f"{name}: wrote {out / path.name} and {out / 'presence.json'}")
    else:
        from tmatch.models.export import export_checkpoint
        from tmatch.models.weights import shipped_weights

        if name not in ("neural-seg", "dual-unet"):
            raise TmatchError(f"only the neural matchers can be exported (neural, neural-seg, dual-unet), "
                              f"got {name!r}")
        path = weights if weights is not None else shipped_weights(name)
        if weights is None and not path.is_file():
            raise TmatchError(f"no trained weights are installed for {name!r}; pass --weights PATH")
        graphs, diff = export_checkpoint(path, out, arch=name, check=check)
        typer.echo(f"{name}: wrote {graphs.template} and {graphs.search}")
    if diff is not None:
        typer.echo(f"parity: max |torch - onnx| = {diff:.2e}")
        if not diff <= tolerance:
            raise TmatchError(f"ONNX outputs differ from PyTorch by {diff:.2e} (> {tolerance:g})")


def register(app: typer.Typer) -> None:
    """Add ``export`` to the app."""
    app.command("export")(export_cmd)
