#!/usr/bin/env python3
"""Parameter counts of the real Wan2.1 components, from their configs alone (no weights:
the models are built on the meta device). Used for docs/wan-models.md.

    .venv/bin/python tools/count_wan_params.py
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from accelerate import init_empty_weights  # noqa: E402
from diffusers import AutoencoderKLWan, WanTransformer3DModel  # noqa: E402
from transformers import UMT5Config, UMT5EncoderModel  # noqa: E402

# transformer/config.json of Wan-AI/Wan2.1-T2V-{1.3B,14B}-Diffusers, shared fields.
COMMON = dict(patch_size=(1, 2, 2), in_channels=16, out_channels=16, text_dim=4096, freq_dim=256,
              cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
TRANSFORMERS = {
    "1.3B": dict(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30),
    "14B": dict(num_attention_heads=40, attention_head_dim=128, ffn_dim=13824, num_layers=40),
}
# text_encoder/config.json (umT5-XXL encoder).
UMT5 = dict(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
            relative_attention_num_buckets=32, relative_attention_max_distance=128, feed_forward_proj="gated-gelu")


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def main() -> None:
    for name, config in TRANSFORMERS.items():
        with init_empty_weights():
            model = WanTransformer3DModel(**COMMON, **config)
        print(f"transformer {name}: {count(model):,} parameters, {count(model.blocks[0]):,} per block")
    with init_empty_weights():
        vae = AutoencoderKLWan()  # the defaults are Wan2.1's VAE
    print(f"vae: {count(vae):,} (decoder + post_quant_conv {count(vae.decoder) + count(vae.post_quant_conv):,})")
    with init_empty_weights():
        encoder = UMT5EncoderModel(UMT5Config(**UMT5))
    print(f"umT5 encoder: {count(encoder):,} (token embeddings {UMT5['vocab_size'] * UMT5['d_model']:,})")


if __name__ == "__main__":
    main()
