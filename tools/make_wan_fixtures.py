#!/usr/bin/env python3
"""Tiny random-weight Wan2.1 text-to-video pipelines and their reference tensors.

Builds two tiny Wan2.1 pipelines in the Hugging Face Diffusers layout, fully offline (random
weights, a sentencepiece tokenizer trained here on generated text), saves each with
`WanPipeline.save_pretrained`, loads it back from disk with `WanPipeline.from_pretrained`, runs the
real Diffusers pipeline end to end on the CPU and records what every stage received and produced.
The Rust parity tests load the same folders with our own loader and compare stage by stage.

Writes, for each config X in CONFIGS:
    tests/fixtures/wan_tiny_X/model/                  the Diffusers folder (f32 weights)
    tests/fixtures/wan_tiny_X/expected.safetensors    reference tensors
    tests/fixtures/wan_tiny_X/expected.json           inputs, versions, notes, tensor shapes

docs/fixtures.md describes every tensor. Run from the repository root with the venv of
tools/requirements.txt (CPU only, no network, well under a minute):
    .venv/bin/python tools/make_wan_fixtures.py
"""

import os

# Nothing may come from the network; set before any Hugging Face import.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["DIFFUSERS_VERBOSITY"] = "error"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"

import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import sentencepiece as spm  # noqa: E402
import torch  # noqa: E402

import diffusers  # noqa: E402
import safetensors  # noqa: E402
import tokenizers  # noqa: E402
import transformers  # noqa: E402
from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel  # noqa: E402
from diffusers.pipelines.wan.pipeline_wan import prompt_clean  # noqa: E402
from diffusers.schedulers.scheduling_utils import SchedulerOutput  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import T5Tokenizer, UMT5Config, UMT5EncoderModel  # noqa: E402

diffusers.utils.logging.disable_progress_bar()
transformers.utils.logging.disable_progress_bar()

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

# The real Wan2.1 T2V scheduler (Wan-AI/Wan2.1-T2V-*-Diffusers/scheduler/scheduler_config.json):
# UniPC with flow sigmas, shift 3.0 (the 480p value). Everything not listed is the class default,
# which save_pretrained writes out in full, as in the real download.
SCHEDULER = dict(
    num_train_timesteps=1000,
    solver_order=2,
    prediction_type="flow_prediction",
    predict_x0=True,
    solver_type="bh2",
    lower_order_final=True,
    use_flow_sigmas=True,
    flow_shift=3.0,
    final_sigmas_type="zero",
    timestep_spacing="linspace",
    beta_schedule="linear",
    beta_start=0.0001,
    beta_end=0.02,
)

# Prompts exercise Diffusers' prompt_clean (ftfy.fix_text, html.unescape twice, whitespace
# collapse): HTML entities (one escaped twice), curly quotes ftfy straightens, an em dash,
# fullwidth letters and a ligature, tabs/newlines/double spaces, and characters the tokenizer has
# never seen ("ü", "Ω") so <unk> shows up.
PROMPT = "A tiny robot paints a caf&eacute; at dusk — ‘neon’ reflections,\n\tseen  through rain &amp;amp; fog"
NEGATIVE = "blurry, low quality, ＪＰＥＧ artifacts, ﬁnal frame &lt;static&gt;, überexposed Ω  "
ENCODER_CHECK_PROMPTS = ["a small red cat walks over the wet street at night, camera moving slowly", "rain"]

CONFIGS = {
    "a": dict(
        seed=20250101,
        vocab_size=1100,
        text_encoder=dict(
            d_model=32, d_kv=8, num_heads=4, d_ff=48, num_layers=2,
            relative_attention_num_buckets=32, relative_attention_max_distance=128,
        ),
        text_encoder_max_shard_size=None,
        transformer=dict(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16,
            freq_dim=16, ffn_dim=48, num_layers=2,
        ),
        vae=dict(base_dim=4, z_dim=4, dim_mult=[1, 2, 4, 4], num_res_blocks=1, temperal_downsample=[False, True, True]),
        run=dict(height=32, width=48, num_frames=9, num_inference_steps=3, guidance_scale=5.0),
        transformer_check=dict(timesteps=[937, 142], text_len=64, text_valid=[10, 23]),
        vae_check_latent_hw=(3, 5),
    ),
    "b": dict(
        seed=20250202,
        vocab_size=1300,
        # inner dim (num_heads * d_kv = 36) differs from d_model on purpose; few buckets and a
        # short max distance so the log-spaced buckets and the clamp are both reached.
        text_encoder=dict(
            d_model=40, d_kv=12, num_heads=3, d_ff=56, num_layers=3,
            relative_attention_num_buckets=16, relative_attention_max_distance=20,
        ),
        text_encoder_max_shard_size="TWO_SHARDS",
        transformer=dict(
            patch_size=(1, 2, 2), num_attention_heads=3, attention_head_dim=20,
            freq_dim=24, ffn_dim=80, num_layers=3,
        ),
        vae=dict(base_dim=6, z_dim=6, dim_mult=[1, 2, 2, 2], num_res_blocks=2, temperal_downsample=[True, False, True]),
        run=dict(height=48, width=32, num_frames=5, num_inference_steps=4, guidance_scale=5.0),
        transformer_check=dict(timesteps=[35, 999], text_len=48, text_valid=[31, 5]),
        vae_check_latent_hw=(5, 3),
    ),
}

MAX_SEQUENCE_LENGTH = 512  # WanPipeline.__call__ default, as used by Wan2.1

# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------

# Common English words (high frequency) plus generated pseudo-words (variety, so sentencepiece can
# reach the requested vocabulary size). "ü", "Ω" and the curly quotes never occur, on purpose.
ENGLISH = """
a the of and to in is it on at with for by from as over under into through behind near
cat dog robot bird horse fish person woman man child girl boy people crowd car train boat
city street road river lake sea ocean sky cloud rain fog snow wind sun moon star night day dusk
dawn morning evening light shadow neon lamp fire smoke water glass window door wall house room
kitchen table chair tree forest flower grass field mountain hill desert beach wave
red blue green yellow orange purple black white gray grey gold silver pink brown dark bright
small tiny large big huge old young new wet dry warm cold soft hard slow fast quiet loud
walks runs flies swims paints dances jumps sits stands looks moves turns falls rises glows
camera slowly moving pans zooms close up wide shot cinematic video frame frames scene style
blurry low quality high detailed static still overexposed underexposed artifacts jpeg final
reflections reflection café cafe coffee cup book paper music song color colour motion
""".split()
SYLL_ON = "b c d f g h j k l m n p r s t v w z ch sh th st br tr pl gr qu".split()
SYLL_NU = "a e i o u ai ea ou io é".split()
PUNCT = [".", ",", "!", "?", ";", ":", " —", " -", "'s", ")"]


def training_sentences(seed: int, n: int):
    rng = random.Random(seed)
    pseudo = sorted({
        "".join(rng.choice(SYLL_ON) + rng.choice(SYLL_NU) for _ in range(rng.randint(1, 4)))
        for _ in range(6000)
    })
    words = ENGLISH + pseudo
    # Zipf-like weights: English first (frequent), pseudo-words in the long tail.
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(words))]
    for _ in range(n):
        k = rng.randint(3, 16)
        s = " ".join(rng.choices(words, weights, k=k))
        if rng.random() < 0.3:
            s = s.capitalize()
        if rng.random() < 0.5:
            s += rng.choice(PUNCT)
        if rng.random() < 0.15:
            s += " " + str(rng.randint(0, 2030))
        if rng.random() < 0.1:
            s = s.upper()
        yield s


def train_spiece(vocab_size: int, seed: int) -> bytes:
    """A umT5-like sentencepiece Unigram model: <pad>=0, </s>=1, <unk>=2, no BOS, <extra_id_N>
    user symbols, nmt_nfkc normalisation. Trained from an iterator so no file path ends up in
    the model proto."""
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=training_sentences(seed, 30000),
        model_writer=buf,
        model_type="unigram",
        vocab_size=vocab_size,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        user_defined_symbols=[f"<extra_id_{i}>" for i in range(8)],
        normalization_rule_name="nmt_nfkc",
        character_coverage=1.0,
        num_threads=1,
        shuffle_input_sentence=False,
        input_sentence_size=0,
        seed_sentencepiece_size=200000,
        minloglevel=2,
    )
    model = buf.getvalue()
    sp = spm.SentencePieceProcessor(model_proto=model)
    if sp.get_piece_size() != vocab_size:
        sys.exit(f"sentencepiece made {sp.get_piece_size()} pieces, wanted {vocab_size}: more text variety needed")
    return model


def make_tokenizer(vocab_size: int, seed: int) -> T5Tokenizer:
    model = train_spiece(vocab_size, seed)
    # transformers 5 converts spiece.model found in a folder (T5Tokenizer(vocab_file=...) ignores
    # the file). extra_ids=0: the <extra_id_N> pieces already live inside the sentencepiece vocab.
    with tempfile.TemporaryDirectory() as d:
        (pathlib.Path(d) / "spiece.model").write_bytes(model)
        tok = T5Tokenizer.from_pretrained(d, extra_ids=0)
    if len(tok) != vocab_size:
        sys.exit(f"tokenizer has {len(tok)} tokens, wanted {vocab_size}")
    return tok


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def perturb_constants(model: torch.nn.Module, seed: int) -> None:
    """Random init leaves norm scales at 1 and some biases at 0; a Rust loader that forgot to load
    them would still pass. Give every constant-initialised parameter random values."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters()):
        flat = p.detach().flatten()
        if flat.numel() > 1 and bool(torch.all(flat == flat[0])):
            p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))


def make_models(cfg: dict, vocab_size: int):
    seed = cfg["seed"]
    te_cfg = UMT5Config(
        vocab_size=vocab_size,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        layer_norm_epsilon=1e-6,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        **cfg["text_encoder"],
    )
    torch.manual_seed(seed + 1)
    text_encoder = UMT5EncoderModel(te_cfg).eval()
    perturb_constants(text_encoder, seed + 11)

    vae_cfg = dict(cfg["vae"])
    z_dim = vae_cfg["z_dim"]
    rng = np.random.default_rng(seed + 2)
    # Non-trivial de-normalisation constants (Wan2.1's are means in [-1, 1.6], stds in [1.1, 3.3]).
    vae_cfg["latents_mean"] = [round(float(v), 4) for v in rng.uniform(-0.8, 0.8, z_dim)]
    vae_cfg["latents_std"] = [round(float(v), 4) for v in rng.uniform(1.1, 2.6, z_dim)]
    # The pipeline reads the scale factors from the config; they must match the architecture.
    vae_cfg["scale_factor_spatial"] = 2 ** (len(vae_cfg["dim_mult"]) - 1)
    vae_cfg["scale_factor_temporal"] = 2 ** sum(vae_cfg["temperal_downsample"])
    torch.manual_seed(seed + 3)
    vae = AutoencoderKLWan(**vae_cfg).eval()
    perturb_constants(vae, seed + 13)

    tr_cfg = dict(cfg["transformer"])
    tr_cfg.update(
        in_channels=z_dim,
        out_channels=z_dim,
        text_dim=te_cfg.d_model,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        image_dim=None,
        added_kv_proj_dim=None,
        rope_max_seq_len=1024,
    )
    torch.manual_seed(seed + 4)
    transformer = WanTransformer3DModel(**tr_cfg).eval()
    perturb_constants(transformer, seed + 14)

    scheduler = UniPCMultistepScheduler(**SCHEDULER)
    return text_encoder, transformer, vae, scheduler


# ---------------------------------------------------------------------------------------------
# Capture
# ---------------------------------------------------------------------------------------------


class Recorder:
    def __init__(self):
        self.tensors: dict[str, torch.Tensor] = {}

    def put(self, name: str, t: torch.Tensor, keep_dtype: bool = False) -> None:
        if name in self.tensors:
            raise RuntimeError(f"tensor {name} recorded twice")
        t = t.detach().contiguous().clone()
        self.tensors[name] = t if keep_dtype else t.to(torch.float32)


def run_pipeline(pipe: WanPipeline, cfg: dict, rec: Recorder) -> dict:
    run = cfg["run"]
    notes: dict = {}

    # Tokenizer output, as the text encoder receives it: prompt first, then negative prompt.
    te_calls = []

    def te_pre(module, args, kwargs):
        ids = args[0] if args else kwargs["input_ids"]
        mask = args[1] if len(args) > 1 else kwargs["attention_mask"]
        te_calls.append((ids.clone(), mask.clone()))

    h_te = pipe.text_encoder.register_forward_pre_hook(te_pre, with_kwargs=True)

    # Every transformer call: cond then uncond per step (CFG is two calls in this version).
    tr_calls = []

    def tr_hook(module, args, kwargs, output):
        tr_calls.append(
            dict(
                hidden_states=kwargs["hidden_states"].clone(),
                timestep=kwargs["timestep"].clone(),
                encoder_hidden_states=kwargs["encoder_hidden_states"],
                output=output[0].clone(),
            )
        )

    h_tr = pipe.transformer.register_forward_hook(tr_hook, with_kwargs=True)

    # Initial noise.
    orig_prepare = pipe.prepare_latents
    initial = {}

    def prepare_latents(*a, **k):
        out = orig_prepare(*a, **k)
        initial["latents"] = out.clone()
        return out

    pipe.prepare_latents = prepare_latents

    # Scheduler: the guided noise prediction in, the new latents out, plus UniPC internals.
    sched = pipe.scheduler
    steps = []
    orig_step = sched.step
    orig_convert = sched.convert_model_output
    orig_corrector = sched.multistep_uni_c_bh_update
    step_extra = {}

    def convert_model_output(*a, **k):
        out = orig_convert(*a, **k)
        step_extra["x0_pred"] = out.clone()
        return out

    def corrector(*a, **k):
        out = orig_corrector(*a, **k)
        step_extra["sample_corrected"] = out.clone()
        return out

    def step(model_output, timestep, sample, return_dict=True):
        step_extra.clear()
        order_before = sched.lower_order_nums
        out = orig_step(model_output, timestep, sample, return_dict=False)
        steps.append(
            dict(
                model_output=model_output.clone(),
                timestep=timestep.clone(),
                sample=sample.clone(),
                prev_sample=out[0].clone(),
                x0_pred=step_extra.get("x0_pred"),
                sample_corrected=step_extra.get("sample_corrected"),
                order=int(sched.this_order),
                lower_order_nums_before=int(order_before),
            )
        )
        return out if not return_dict else SchedulerOutput(prev_sample=out[0])

    sched.step = step
    sched.convert_model_output = convert_model_output
    sched.multistep_uni_c_bh_update = corrector

    # VAE: what decode receives and returns (returns are already clamped to [-1, 1]).
    orig_decode = pipe.vae.decode
    dec = {}

    def decode(z, return_dict=True):
        dec["input"] = z.clone()
        out = orig_decode(z, return_dict=return_dict)
        dec["output"] = (out[0] if not return_dict else out.sample).clone()
        return out

    pipe.vae.decode = decode

    # Pre-clamp decoder output, chunk by chunk (one latent frame per decoder call).
    dec_chunks = []
    h_dec = pipe.vae.decoder.register_forward_hook(lambda m, a, o: dec_chunks.append(o.clone()))

    result = pipe(
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        height=run["height"],
        width=run["width"],
        num_frames=run["num_frames"],
        num_inference_steps=run["num_inference_steps"],
        guidance_scale=run["guidance_scale"],
        generator=torch.Generator("cpu").manual_seed(cfg["seed"]),
        output_type="np",
        max_sequence_length=MAX_SEQUENCE_LENGTH,
    )
    frames = result.frames[0]

    for h in (h_te, h_tr, h_dec):
        h.remove()
    del pipe.prepare_latents, pipe.vae.decode
    del sched.step, sched.convert_model_output, sched.multistep_uni_c_bh_update

    n = run["num_inference_steps"]
    assert len(te_calls) == 2, len(te_calls)
    assert len(tr_calls) == 2 * n, len(tr_calls)
    assert len(steps) == n, len(steps)

    for prefix, (ids, mask) in zip(["prompt", "negative"], te_calls):
        assert ids.dtype == torch.int64 and ids.shape == (1, MAX_SEQUENCE_LENGTH)
        rec.put(f"{prefix}.input_ids", ids, keep_dtype=True)
        rec.put(f"{prefix}.attention_mask", mask, keep_dtype=True)

    cond_ehs = tr_calls[0]["encoder_hidden_states"]
    uncond_ehs = tr_calls[1]["encoder_hidden_states"]
    for i in range(n):
        assert tr_calls[2 * i]["encoder_hidden_states"] is cond_ehs
        assert tr_calls[2 * i + 1]["encoder_hidden_states"] is uncond_ehs
    rec.put("prompt.embeds", cond_ehs)
    rec.put("negative.embeds", uncond_ehs)
    for prefix, (ids, mask), ehs in [("prompt", te_calls[0], cond_ehs), ("negative", te_calls[1], uncond_ehs)]:
        valid = int(mask.sum())
        assert torch.all(ehs[0, valid:] == 0), "pipeline did not zero the padding rows"
        notes[f"{prefix}_tokens"] = valid

    rec.put("latents.initial", initial["latents"])
    rec.put("scheduler.timesteps", sched.timesteps, keep_dtype=True)
    rec.put("scheduler.sigmas", sched.sigmas)

    gs = run["guidance_scale"]
    step_orders = []
    for i in range(n):
        c, u, s = tr_calls[2 * i], tr_calls[2 * i + 1], steps[i]
        assert torch.equal(c["hidden_states"], u["hidden_states"])
        assert torch.equal(c["timestep"], u["timestep"])
        assert torch.equal(c["timestep"], sched.timesteps[i].expand(1))
        rec.put(f"step{i}.latent_model_input", c["hidden_states"])
        rec.put(f"step{i}.timestep", c["timestep"], keep_dtype=True)
        rec.put(f"step{i}.noise_pred_cond", c["output"])
        rec.put(f"step{i}.noise_pred_uncond", u["output"])
        rec.put(f"step{i}.noise_pred", s["model_output"])
        # CFG exactly as the pipeline computes it (bit-equal check).
        assert torch.equal(s["model_output"], u["output"] + gs * (c["output"] - u["output"]))
        rec.put(f"step{i}.x0_pred", s["x0_pred"])
        if s["sample_corrected"] is not None:
            rec.put(f"step{i}.sample_corrected", s["sample_corrected"])
        rec.put(f"step{i}.latents_out", s["prev_sample"])
        step_orders.append(dict(step=i, predictor_order=s["order"], corrector_used=s["sample_corrected"] is not None))

    rec.put("latents.final", steps[-1]["prev_sample"])
    rec.put("vae.input", dec["input"])
    rec.put("vae.output", dec["output"])
    unclamped = torch.cat(dec_chunks, dim=2)
    assert torch.equal(unclamped.clamp(-1, 1), dec["output"])
    rec.put("vae.output_unclamped", unclamped)
    assert frames.dtype == np.float32, frames.dtype
    rec.put("frames", torch.from_numpy(np.ascontiguousarray(frames)))

    # De-normalisation as the pipeline does it, checked bit for bit.
    vc = pipe.vae.config
    mean = torch.tensor(vc.latents_mean).view(1, vc.z_dim, 1, 1, 1)
    inv_std = 1.0 / torch.tensor(vc.latents_std).view(1, vc.z_dim, 1, 1, 1)
    assert torch.equal(dec["input"], steps[-1]["prev_sample"] / inv_std + mean)
    # Postprocessing as VideoProcessor does it for output_type="np".
    post = (dec["output"] / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 3, 0)
    assert torch.equal(post, torch.from_numpy(frames)), "frames != (video / 2 + 0.5).clamp(0, 1)"

    notes["step_orders"] = step_orders
    notes["decoder_chunks"] = [list(c.shape) for c in dec_chunks]
    return notes


@torch.no_grad()
def transformer_check(pipe: WanPipeline, cfg: dict, rec: Recorder) -> None:
    """The transformer alone, batch 2, a different timestep and text length per element: the
    latent shape of the pipeline run, random inputs."""
    transformer = pipe.transformer
    run, chk = cfg["run"], cfg["transformer_check"]
    tc = transformer.config
    g = torch.Generator().manual_seed(cfg["seed"] + 100)
    f_lat = (run["num_frames"] - 1) // pipe.vae_scale_factor_temporal + 1
    s = pipe.vae_scale_factor_spatial
    shape = (2, tc.in_channels, f_lat, run["height"] // s, run["width"] // s)
    hidden = torch.randn(shape, generator=g)
    ehs = torch.randn((2, chk["text_len"], tc.text_dim), generator=g)
    for b, valid in enumerate(chk["text_valid"]):
        ehs[b, valid:] = 0  # zero padding rows, as the pipeline passes them
    timestep = torch.tensor(chk["timesteps"], dtype=torch.int64)

    captured = {}
    hooks = [
        transformer.rope.register_forward_hook(lambda m, a, o: captured.__setitem__("rope", o)),
        transformer.patch_embedding.register_forward_hook(lambda m, a, o: captured.__setitem__("patch", o)),
        transformer.condition_embedder.register_forward_hook(lambda m, a, o: captured.__setitem__("cond", o)),
    ]
    blocks = []
    for blk in transformer.blocks:
        hooks.append(blk.register_forward_hook(lambda m, a, o: blocks.append(o.clone())))
    out = transformer(hidden_states=hidden, timestep=timestep, encoder_hidden_states=ehs, return_dict=False)[0]
    for h in hooks:
        h.remove()

    p = "transformer_check"
    rec.put(f"{p}.hidden_states", hidden)
    rec.put(f"{p}.timestep", timestep, keep_dtype=True)
    rec.put(f"{p}.encoder_hidden_states", ehs)
    rec.put(f"{p}.output", out)
    # Intermediates, for finding where a mismatch starts.
    cos, sin = captured["rope"]
    rec.put(f"{p}.rope_cos", cos[0, :, 0])
    rec.put(f"{p}.rope_sin", sin[0, :, 0])
    rec.put(f"{p}.patch_embedding", captured["patch"].flatten(2).transpose(1, 2))
    temb, timestep_proj, text_emb, _ = captured["cond"]
    rec.put(f"{p}.temb", temb)
    rec.put(f"{p}.timestep_proj", timestep_proj)
    rec.put(f"{p}.text_embedding", text_emb)
    for i, b in enumerate(blocks):
        rec.put(f"{p}.block{i}", b)


@torch.no_grad()
def vae_check(vae: AutoencoderKLWan, cfg: dict, rec: Recorder) -> None:
    g = torch.Generator().manual_seed(cfg["seed"] + 200)
    h, w = cfg["vae_check_latent_hw"]
    z = torch.randn((1, vae.config.z_dim, 3, h, w), generator=g) * 1.5
    chunks = []
    hook = vae.decoder.register_forward_hook(lambda m, a, o: chunks.append(o.clone()))
    pq = {}
    hook2 = vae.post_quant_conv.register_forward_hook(lambda m, a, o: pq.__setitem__("x", o.clone()))
    video = vae.decode(z, return_dict=False)[0]
    hook.remove()
    hook2.remove()
    rec.put("vae_check.z", z)
    rec.put("vae_check.post_quant_conv", pq["x"])
    rec.put("vae_check.video", video)
    rec.put("vae_check.video_unclamped", torch.cat(chunks, dim=2))


@torch.no_grad()
def vae_encode_check(vae: AutoencoderKLWan, cfg: dict, rec: Recorder) -> None:
    """The VAE encoder on a random video in [-1, 1] of the run's size and frame count, and the
    normalisation WanImageToVideoPipeline.prepare_latents applies to what it encodes."""
    run, vc = cfg["run"], vae.config
    g = torch.Generator().manual_seed(cfg["seed"] + 300)
    video = torch.rand((1, 3, run["num_frames"], run["height"], run["width"]), generator=g) * 2 - 1
    dist = vae.encode(video).latent_dist
    assert torch.equal(dist.mode(), dist.mean)  # retrieve_latents(..., sample_mode="argmax")
    latents_mean = torch.tensor(vc.latents_mean).view(1, vc.z_dim, 1, 1, 1)
    latents_std = 1.0 / torch.tensor(vc.latents_std).view(1, vc.z_dim, 1, 1, 1)
    rec.put("vae_encode_check.video", video)
    rec.put("vae_encode_check.mean", dist.mean)
    rec.put("vae_encode_check.normalized", (dist.mean - latents_mean) * latents_std)


@torch.no_grad()
def encoder_check(tokenizer, text_encoder: UMT5EncoderModel, rec: Recorder) -> None:
    enc = tokenizer(
        ENCODER_CHECK_PROMPTS,
        padding="longest",
        truncation=True,
        max_length=MAX_SEQUENCE_LENGTH,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    layers = []
    hooks = [blk.register_forward_hook(lambda m, a, o: layers.append(o.clone())) for blk in text_encoder.encoder.block]
    out = text_encoder(enc.input_ids, enc.attention_mask).last_hidden_state
    for h in hooks:
        h.remove()
    rec.put("encoder_check.input_ids", enc.input_ids, keep_dtype=True)
    rec.put("encoder_check.attention_mask", enc.attention_mask, keep_dtype=True)
    rec.put("encoder_check.embeddings", text_encoder.shared(enc.input_ids))
    for i, x in enumerate(layers):
        rec.put(f"encoder_check.block{i}", x)
    rec.put("encoder_check.last_hidden_state", out)


# ---------------------------------------------------------------------------------------------
# Checks on the saved folder
# ---------------------------------------------------------------------------------------------


def check_tokenizer_json(model_dir: pathlib.Path, rec: Recorder, cleaned: dict) -> None:
    """The Rust side reads tokenizer/tokenizer.json with the `tokenizers` crate; the Python
    binding of the same library, loading the same file, must give the pipeline's ids."""
    path = model_dir / "tokenizer" / "tokenizer.json"
    j = json.loads(path.read_text())
    assert j["truncation"] is None and j["padding"] is None, "tokenizer.json carries padding/truncation state"
    tk = tokenizers.Tokenizer.from_file(str(path))
    for prefix in ("prompt", "negative"):
        ids = tk.encode(cleaned[prefix], add_special_tokens=True).ids[:MAX_SEQUENCE_LENGTH]
        ids = ids + [0] * (MAX_SEQUENCE_LENGTH - len(ids))
        assert ids == rec.tensors[f"{prefix}.input_ids"][0].tolist(), prefix
    for i, text in enumerate(ENCODER_CHECK_PROMPTS):
        ids = tk.encode(text, add_special_tokens=True).ids
        want = rec.tensors["encoder_check.input_ids"][i]
        mask = rec.tensors["encoder_check.attention_mask"][i]
        assert ids == want[mask.bool()].tolist(), text


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def shard_size_for_two(text_encoder: UMT5EncoderModel) -> int:
    """A max_shard_size that splits the encoder into exactly two files."""
    sizes = [t.numel() * t.element_size() for _, t in sorted(text_encoder.state_dict().items())]
    total = sum(sizes)
    return max(max(sizes), total // 2 + 1)


def file_digest(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------


def build(name: str, cfg: dict) -> None:
    out = FIXTURES / f"wan_tiny_{name}"
    model_dir = out / "model"
    if out.exists():
        shutil.rmtree(out)
    model_dir.mkdir(parents=True)

    tokenizer = make_tokenizer(cfg["vocab_size"], cfg["seed"])
    text_encoder, transformer, vae, scheduler = make_models(cfg, len(tokenizer))
    pipe = WanPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler, transformer=transformer
    )
    pipe.save_pretrained(model_dir, safe_serialization=True)
    if cfg["text_encoder_max_shard_size"] == "TWO_SHARDS":
        shutil.rmtree(model_dir / "text_encoder")
        text_encoder.save_pretrained(
            model_dir / "text_encoder", safe_serialization=True, max_shard_size=shard_size_for_two(text_encoder)
        )
        shards = sorted(p.name for p in (model_dir / "text_encoder").glob("*.safetensors"))
        assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], shards
        assert (model_dir / "text_encoder" / "model.safetensors.index.json").exists()

    # Everything below runs on what is on disk, as the Rust side will see it.
    pipe = WanPipeline.from_pretrained(model_dir, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    for comp, orig in [("text_encoder", text_encoder), ("transformer", transformer), ("vae", vae)]:
        same_weights(getattr(pipe, comp), orig)
        assert all(p.dtype == torch.float32 for p in getattr(pipe, comp).parameters())
    assert type(pipe.scheduler) is UniPCMultistepScheduler
    assert pipe.vae_scale_factor_spatial == 2 ** (len(pipe.vae.config.dim_mult) - 1)
    assert pipe.vae_scale_factor_temporal == 2 ** sum(pipe.vae.config.temperal_downsample)

    rec = Recorder()
    notes = run_pipeline(pipe, cfg, rec)
    transformer_check(pipe, cfg, rec)
    vae_check(pipe.vae, cfg, rec)
    encoder_check(pipe.tokenizer, pipe.text_encoder, rec)
    vae_encode_check(pipe.vae, cfg, rec)
    cleaned = {"prompt": prompt_clean(PROMPT), "negative": prompt_clean(NEGATIVE)}
    check_tokenizer_json(model_dir, rec, cleaned)

    for k, t in rec.tensors.items():
        assert torch.isfinite(t.to(torch.float64)).all(), k

    # safetensors orders tensors itself; the single metadata key keeps the header stable.
    save_file(dict(sorted(rec.tensors.items())), str(out / "expected.safetensors"), metadata={"format": "pt"})
    back = load_file(str(out / "expected.safetensors"))
    assert back.keys() == rec.tensors.keys() and all(torch.equal(back[k], rec.tensors[k]) for k in back)

    run = cfg["run"]
    v = rec.tensors["vae.output_unclamped"]
    info = dict(
        description=(
            "Tiny random-weight Wan2.1 T2V pipeline in Diffusers layout and the tensors the real "
            "WanPipeline produced with it. Made by tools/make_wan_fixtures.py; see docs/fixtures.md."
        ),
        model_dir="model",
        inputs=dict(
            prompt=PROMPT,
            negative_prompt=NEGATIVE,
            prompt_cleaned=cleaned["prompt"],
            negative_prompt_cleaned=cleaned["negative"],
            seed=cfg["seed"],
            generator='torch.Generator("cpu").manual_seed(seed), passed to the pipeline',
            num_inference_steps=run["num_inference_steps"],
            guidance_scale=run["guidance_scale"],
            height=run["height"],
            width=run["width"],
            num_frames=run["num_frames"],
            max_sequence_length=MAX_SEQUENCE_LENGTH,
            output_type="np",
            encoder_check_prompts=ENCODER_CHECK_PROMPTS,
            encoder_check_padding="longest",
            transformer_check=cfg["transformer_check"],
        ),
        behaviour=dict(
            cfg_batched=False,
            cfg_note="cond and uncond are two separate transformer calls per step (cond first); "
            "noise_pred = uncond + guidance_scale * (cond - uncond)",
            timestep_dtype="int64",
            timestep_note="timestep = scheduler.timesteps[i].expand(batch): int64, one value per batch element",
            denormalise="latents / (1 / latents_std) + latents_mean  (f32, per channel)",
            vae_output_clamped=True,
            frames_formula="(video / 2 + 0.5).clamp(0, 1), [B, C, F, H, W] -> [F, H, W, C] of batch 0",
            prompt_tokens=notes["prompt_tokens"],
            negative_prompt_tokens=notes["negative_tokens"],
            scheduler_steps=notes["step_orders"],
            decoder_chunk_shapes=notes["decoder_chunks"],
            vae_output_unclamped_range=[float(v.min()), float(v.max())],
            vae_output_fraction_clamped=float((v.abs() > 1).float().mean()),
        ),
        config=dict(
            vocab_size=len(pipe.tokenizer),
            text_encoder={k: getattr(pipe.text_encoder.config, k) for k in sorted(cfg["text_encoder"])},
            transformer={k: pipe.transformer.config[k] for k in sorted(pipe.transformer.config) if not k.startswith("_")},
            vae={k: pipe.vae.config[k] for k in sorted(pipe.vae.config) if not k.startswith("_")},
            text_encoder_sharded=cfg["text_encoder_max_shard_size"] is not None,
        ),
        versions=dict(
            python=platform.python_version(),
            torch=torch.__version__,
            diffusers=diffusers.__version__,
            transformers=transformers.__version__,
            tokenizers=tokenizers.__version__,
            sentencepiece=spm.__version__,
            safetensors=safetensors.__version__,
            numpy=np.__version__,
            torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
            torch_threads=torch.get_num_threads(),
        ),
        tensors={
            k: dict(shape=list(t.shape), dtype=str(t.dtype).replace("torch.", ""))
            for k, t in sorted(rec.tensors.items())
        },
    )
    (out / "expected.json").write_text(json.dumps(info, indent=2, ensure_ascii=False, sort_keys=True) + "\n")

    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wan_tiny_{name}: {len(rec.tensors)} tensors, {total / 1e6:.2f} MB")
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"  {p.relative_to(out)}  {p.stat().st_size}  {file_digest(p)[:16]}")


def main() -> None:
    torch.set_num_threads(1)  # reductions in one fixed order: same bytes on every rerun
    torch.use_deterministic_algorithms(True)
    only = sys.argv[1:] or sorted(CONFIGS)
    for name in only:
        build(name, CONFIGS[name])


if __name__ == "__main__":
    main()
