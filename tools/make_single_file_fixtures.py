#!/usr/bin/env python3
"""Original-layout (Wan-AI) and ComfyUI single-file copies of the tiny Wan transformer.

Reads the Diffusers transformer of fixture a
    tests/fixtures/wan_tiny_a/model/transformer/diffusion_pytorch_model.safetensors
renames every key to the name Wan-AI's original code uses (the inverse of Diffusers'
`convert_wan_transformer_to_diffusers`) and writes the same tensors, bit for bit, as
    tests/fixtures/single_file/wan_tiny_a_original.safetensors   original keys
    tests/fixtures/single_file/wan_tiny_a_comfyui.safetensors    the same under model.diffusion_model.

Then it proves that the files are what their names say, with Diffusers' own single-file code:
both go through `infer_diffusers_model_type` (recognised as a Wan transformer) and
`convert_wan_transformer_to_diffusers`, which must give back the Diffusers state dict exactly
(same keys, equal tensors); and `WanTransformer3DModel.from_single_file` (with the fixture's
own config, offline) must load a model whose state dict equals the Diffusers one.

tests/single_file.rs loads the two files with GenClip's loader. Run from the repository root
with the venv of tools/requirements.txt (CPU only, no network, a few seconds):
    .venv/bin/python tools/make_single_file_fixtures.py
"""

import os

# Nothing may come from the network; set before any Hugging Face import.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["DIFFUSERS_VERBOSITY"] = "error"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"

import pathlib  # noqa: E402
import re  # noqa: E402

import torch  # noqa: E402
from diffusers import WanTransformer3DModel  # noqa: E402
from diffusers.loaders.single_file_utils import (  # noqa: E402
    convert_wan_transformer_to_diffusers,
    infer_diffusers_model_type,
)
from safetensors.torch import load_file, save_file  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "fixtures" / "wan_tiny_a" / "model"
SOURCE = MODEL / "transformer" / "diffusion_pytorch_model.safetensors"
OUT = ROOT / "tests" / "fixtures" / "single_file"
COMFYUI_PREFIX = "model.diffusion_model."

# Diffusers name -> original name, outside the blocks. Written from the model code of both
# sides (Wan-AI's wan/modules/model.py, Diffusers' WanTransformer3DModel), not from the
# converter's string replacements; the converter checks it below.
TOP = {
    "patch_embedding.weight": "patch_embedding.weight",  # Conv3d on both sides: same shape
    "patch_embedding.bias": "patch_embedding.bias",
    "condition_embedder.time_embedder.linear_1.weight": "time_embedding.0.weight",
    "condition_embedder.time_embedder.linear_1.bias": "time_embedding.0.bias",
    "condition_embedder.time_embedder.linear_2.weight": "time_embedding.2.weight",
    "condition_embedder.time_embedder.linear_2.bias": "time_embedding.2.bias",
    "condition_embedder.time_proj.weight": "time_projection.1.weight",
    "condition_embedder.time_proj.bias": "time_projection.1.bias",
    "condition_embedder.text_embedder.linear_1.weight": "text_embedding.0.weight",
    "condition_embedder.text_embedder.linear_1.bias": "text_embedding.0.bias",
    "condition_embedder.text_embedder.linear_2.weight": "text_embedding.2.weight",
    "condition_embedder.text_embedder.linear_2.bias": "text_embedding.2.bias",
    "proj_out.weight": "head.head.weight",
    "proj_out.bias": "head.head.bias",
    "scale_shift_table": "head.modulation",  # [1, 2, dim] on both sides
}

# Inside blocks.N.
BLOCK = {"scale_shift_table": "modulation"}  # [1, 6, dim] on both sides
for ours, theirs in (("attn1", "self_attn"), ("attn2", "cross_attn")):
    for proj, orig in (("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "o")):
        for p in ("weight", "bias"):
            BLOCK[f"{ours}.{proj}.{p}"] = f"{theirs}.{orig}.{p}"
    for norm in ("norm_q", "norm_k"):
        BLOCK[f"{ours}.{norm}.weight"] = f"{theirs}.{norm}.weight"
# The affine norm before cross-attention is norm2 in Diffusers and norm3 in the original (its
# norm2 is the plain norm before the FFN, Diffusers' norm3; neither has weights).
for p in ("weight", "bias"):
    BLOCK[f"norm2.{p}"] = f"norm3.{p}"
    BLOCK[f"ffn.net.0.proj.{p}"] = f"ffn.0.{p}"
    BLOCK[f"ffn.net.2.{p}"] = f"ffn.2.{p}"


def original_name(name: str) -> str:
    if name in TOP:
        return TOP[name]
    m = re.fullmatch(r"blocks\.(\d+)\.(.+)", name)
    if m is None or m.group(2) not in BLOCK:
        raise SystemExit(f"no original name for Diffusers key {name}")
    return f"blocks.{m.group(1)}.{BLOCK[m.group(2)]}"


def check_with_diffusers(path: pathlib.Path, diffusers_sd: dict) -> None:
    """Diffusers' own single-file code must turn the file back into the Diffusers weights."""
    checkpoint = load_file(path)
    model_type = infer_diffusers_model_type(checkpoint)
    assert model_type.startswith("wan-"), f"{path.name}: Diffusers recognises it as {model_type}"
    converted = convert_wan_transformer_to_diffusers(dict(checkpoint))
    assert converted.keys() == diffusers_sd.keys(), (
        f"{path.name}: converted keys differ: "
        f"{sorted(converted.keys() ^ diffusers_sd.keys())}"
    )
    for k, v in diffusers_sd.items():
        c = converted[k]
        assert c.dtype == v.dtype and c.shape == v.shape and torch.equal(c, v), f"{path.name}: {k} differs"

    # The whole loader, as a user of Diffusers would call it (config from the fixture folder).
    model = WanTransformer3DModel.from_single_file(
        str(path), config=str(MODEL), subfolder="transformer", torch_dtype=torch.float32
    )
    loaded = model.state_dict()
    assert loaded.keys() == diffusers_sd.keys(), f"{path.name}: from_single_file keys differ"
    for k, v in diffusers_sd.items():
        assert torch.equal(loaded[k], v), f"{path.name}: from_single_file gives another {k}"
    print(f"{path.relative_to(ROOT)}: {len(checkpoint)} tensors, Diffusers sees {model_type} "
          f"and converts and loads it back exactly")


def main() -> None:
    diffusers_sd = load_file(SOURCE)
    original = {original_name(k): v for k, v in diffusers_sd.items()}
    assert len(original) == len(diffusers_sd), "two Diffusers keys map to one original key"
    comfyui = {COMFYUI_PREFIX + k: v for k, v in original.items()}

    OUT.mkdir(parents=True, exist_ok=True)
    files = {
        OUT / "wan_tiny_a_original.safetensors": original,
        OUT / "wan_tiny_a_comfyui.safetensors": comfyui,
    }
    for path, sd in files.items():
        save_file({k: v.contiguous() for k, v in sd.items()}, path, metadata={"format": "pt"})
    for path in files:
        check_with_diffusers(path, diffusers_sd)


if __name__ == "__main__":
    main()
