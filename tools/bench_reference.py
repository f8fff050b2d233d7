#!/usr/bin/env python3
"""GenClip's engine against PyTorch (Diffusers / Transformers), side by side, on the CPU.

For a config (tiny, mid, wan-1.3b) this script
  1. makes the random-weight model folder (Diffusers layout) and the inputs, once, under
     target/bench-models/<config>/ (tiny uses the committed fixture tests/fixtures/wan_tiny_a);
  2. measures each component in a process of its own, first with our engine
     (`genclip-engine bench`, JSON on stdout), then with PyTorch (this script, --worker);
  3. prints ours / PyTorch ratios of time and memory, and how far the outputs differ, and
     writes everything to target/bench-results/<config>-<threads>t.json.

Both sides load the same files, run in f32 on the same number of threads, and report the
median of --runs timed calls after --warmup calls. docs/benchmarks.md explains the method
and holds the numbers. Run from the repository root:

    cargo build --release --bin genclip-engine
    .venv/bin/python tools/bench_reference.py --config mid --ours target/release/genclip-engine

Without --ours only PyTorch runs; --generate-only makes the folder and inputs and stops.
"""

import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "wan_tiny_a"
MODELS = ROOT / "target" / "bench-models"
RESULTS = ROOT / "target" / "bench-results"

COMPONENTS = ["transformer", "vae", "text_encoder", "pipeline"]
TEXT_LEN = 512  # the pipeline pads every prompt to 512 rows; the encoder bench takes 512 ids
FIRST_TIMESTEP = 999  # UniPC's first timestep for Wan2.1 (docs/fixtures.md)
# Rows of the cond / uncond text embeddings that are real tokens (the rest are zero, as the
# pipeline pads them); the transformer's cross-attention sees all 512 rows either way.
TEXT_VALID = (31, 40)

# The same prompts as the fixtures (tools/make_wan_fixtures.py).
PROMPT = "A tiny robot paints a caf&eacute; at dusk — ‘neon’ reflections,\n\tseen  through rain &amp;amp; fog"
NEGATIVE = "blurry, low quality, ＪＰＥＧ artifacts, ﬁnal frame &lt;static&gt;, überexposed Ω  "

# Random-weight configs. Every folder reuses the tiny fixture's tokenizer (1100 tokens), so
# the text encoders' vocabularies have 1100 rows; the width of the embedding does not change
# the speed of anything measured.
CONFIGS = {
    # The committed parity fixture: measures fixed costs (dispatch, allocation), not compute.
    "tiny": dict(
        fixture=True,
        run=dict(height=32, width=48, num_frames=9, num_inference_steps=3, guidance_scale=5.0, seed=20250101),
        components=COMPONENTS,
        runs=10,
        warmup=2,
    ),
    # Runs in seconds on 2 CPU cores, yet big enough that the matrix products dominate:
    # 1920 tokens (17 frames at 256 x 384), width 512.
    "mid": dict(
        seed=515,
        text_encoder=dict(
            d_model=512, d_kv=64, num_heads=8, d_ff=1024, num_layers=4,
            relative_attention_num_buckets=32, relative_attention_max_distance=128,
        ),
        transformer=dict(num_attention_heads=8, attention_head_dim=64, ffn_dim=1536, num_layers=4, freq_dim=256),
        vae=dict(base_dim=16, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, temperal_downsample=[False, True, True]),
        run=dict(height=256, width=384, num_frames=17, num_inference_steps=2, guidance_scale=5.0, seed=515),
        # Decoding all 17 frames at 256 x 384 takes 25-60 s a call on 2 cores: the VAE decodes
        # a smaller clip's whole latent (9 frames at 128 x 192: latent 3 x 16 x 24).
        vae_run=dict(height=128, width=192, num_frames=9),
        components=["transformer", "vae", "text_encoder"],
        runs=3,
        warmup=1,
    ),
    # The real Wan2.1-T2V-1.3B transformer and VAE at 480 x 832 x 81 (32,760 tokens), for a
    # GPU machine: do not run its forward on a small CPU. The text encoder has the real
    # umT5-XXL layer shape but 4 of its 24 layers: all 24 are 27 GB in f32, more than a
    # small machine can build (its time grows linearly with the layer count).
    "wan-1.3b": dict(
        seed=1300,
        text_encoder=dict(
            d_model=4096, d_kv=64, num_heads=64, d_ff=10240, num_layers=4,
            relative_attention_num_buckets=32, relative_attention_max_distance=128,
        ),
        transformer=dict(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30, freq_dim=256),
        vae=dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, temperal_downsample=[False, True, True]),
        run=dict(height=480, width=832, num_frames=81, num_inference_steps=50, guidance_scale=5.0, seed=1300),
        components=["transformer", "vae", "text_encoder"],
        runs=3,
        warmup=1,
    ),
}


# ---------------------------------------------------------------------------------------------
# Memory of this process (Linux), the same figures `genclip-engine bench` reads
# ---------------------------------------------------------------------------------------------


def memory() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1]) * 1024
    return dict(resident=out["VmRSS"], peak=out["VmHWM"])


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# Model folders and inputs (made once)
# ---------------------------------------------------------------------------------------------


def paths(config: str) -> dict:
    d = MODELS / config
    model = FIXTURE / "model" if CONFIGS[config].get("fixture") else d / "model"
    return dict(dir=d, model=model, inputs=d / "inputs.safetensors", info=d / "bench.json")


def latent_shape(model: pathlib.Path, run: dict) -> list:
    vae = json.loads((model / "vae" / "config.json").read_text())
    return [
        1,
        vae["z_dim"],
        (run["num_frames"] - 1) // vae["scale_factor_temporal"] + 1,
        run["height"] // vae["scale_factor_spatial"],
        run["width"] // vae["scale_factor_spatial"],
    ]


def make_folder(config: str, cfg: dict, model: pathlib.Path) -> None:
    """A WanPipeline folder with seeded random weights, one component at a time (the 1.3B
    transformer alone is 5.7 GB in f32). Built as tools/make_wan_fixtures.py builds the
    fixtures, constant parameters perturbed included, so norms and biases are not trivial."""
    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    sys.path.insert(0, str(ROOT / "tools"))
    from make_wan_fixtures import perturb_constants

    tmp = model.with_name(model.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    seed = cfg["seed"]
    fixture = FIXTURE / "model"
    shutil.copytree(fixture / "tokenizer", tmp / "tokenizer")
    shutil.copytree(fixture / "scheduler", tmp / "scheduler")
    shutil.copy(fixture / "model_index.json", tmp / "model_index.json")
    vocab = len(json.loads((fixture / "tokenizer" / "tokenizer.json").read_text())["model"]["vocab"])

    te_cfg = UMT5Config(
        vocab_size=vocab, feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, **cfg["text_encoder"],
    )
    torch.manual_seed(seed + 1)
    te = UMT5EncoderModel(te_cfg).eval()
    perturb_constants(te, seed + 11)
    te.save_pretrained(tmp / "text_encoder")
    del te

    vae_cfg = dict(cfg["vae"])
    z = vae_cfg["z_dim"]
    g = torch.Generator().manual_seed(seed + 2)
    vae_cfg["latents_mean"] = [round(float(v), 4) for v in torch.rand(z, generator=g) * 1.6 - 0.8]
    vae_cfg["latents_std"] = [round(float(v), 4) for v in torch.rand(z, generator=g) * 1.5 + 1.1]
    vae_cfg["scale_factor_spatial"] = 2 ** (len(vae_cfg["dim_mult"]) - 1)
    vae_cfg["scale_factor_temporal"] = 2 ** sum(vae_cfg["temperal_downsample"])
    torch.manual_seed(seed + 3)
    vae = AutoencoderKLWan(**vae_cfg).eval()
    perturb_constants(vae, seed + 13)
    vae.save_pretrained(tmp / "vae")
    del vae

    tr_cfg = dict(cfg["transformer"])
    tr_cfg.update(
        patch_size=(1, 2, 2), in_channels=z, out_channels=z, text_dim=te_cfg.d_model,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=None,
        added_kv_proj_dim=None, rope_max_seq_len=1024,
    )
    torch.manual_seed(seed + 4)
    tr = WanTransformer3DModel(**tr_cfg).eval()
    perturb_constants(tr, seed + 14)
    tr.save_pretrained(tmp / "transformer")
    del tr

    shutil.rmtree(model, ignore_errors=True)
    tmp.rename(model)


def make_inputs(config: str, cfg: dict, p: dict) -> None:
    """The tensors each component gets, the same on both sides."""
    import torch
    from safetensors.torch import save_file

    model = p["model"]
    shape = latent_shape(model, cfg["run"])
    text_dim = json.loads((model / "transformer" / "config.json").read_text())["text_dim"]
    vocab = json.loads((model / "text_encoder" / "config.json").read_text())["vocab_size"]
    g = torch.Generator().manual_seed(cfg["run"]["seed"] + 100)
    latent = torch.randn(shape, generator=g)
    text = torch.randn([2, TEXT_LEN, text_dim], generator=g)
    for row, valid in enumerate(TEXT_VALID):
        text[row, valid:] = 0.0
    ids = torch.randint(3, vocab, [1, TEXT_LEN], generator=g)
    ids[0, -1] = 1  # </s>
    tensors = {
        # One denoising step with CFG: the same latents twice, cond then uncond text.
        "transformer.hidden_states": torch.cat([latent, latent]).contiguous(),
        "transformer.timestep": torch.full([2], FIRST_TIMESTEP, dtype=torch.int64),
        "transformer.encoder_hidden_states": text,
        # What decode gets after de-normalisation (the latents scaled by std, plus mean).
        "vae.z": (torch.randn(latent_shape(model, cfg.get("vae_run", cfg["run"])), generator=g) * 2.0).contiguous(),
        "text_encoder.input_ids": ids,
    }
    p["dir"].mkdir(parents=True, exist_ok=True)
    save_file(tensors, p["inputs"])


def ensure_generated(config: str) -> dict:
    cfg = CONFIGS[config]
    p = paths(config)
    if not cfg.get("fixture") and not (p["model"] / "model_index.json").is_file():
        print(f"making {p['model'].relative_to(ROOT)} (random weights, once)", flush=True)
        started = time.perf_counter()
        make_folder(config, cfg, p["model"])
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    if not p["inputs"].is_file():
        make_inputs(config, cfg, p)
    return p


# ---------------------------------------------------------------------------------------------
# The PyTorch side: one component in this process (--worker)
# ---------------------------------------------------------------------------------------------


def torch_component(component: str, model: pathlib.Path, inputs: pathlib.Path, run: dict):
    """Loads a component; returns a function doing one measured call (returning a tensor)."""
    import torch
    from safetensors.torch import load_file

    x = load_file(inputs) if component != "pipeline" else {}
    f32 = torch.float32
    if component == "transformer":
        from diffusers import WanTransformer3DModel

        m = WanTransformer3DModel.from_pretrained(model / "transformer", torch_dtype=f32).eval()
        args = dict(
            hidden_states=x["transformer.hidden_states"],
            timestep=x["transformer.timestep"],
            encoder_hidden_states=x["transformer.encoder_hidden_states"],
            return_dict=False,
        )
        return lambda: m(**args)[0]
    if component == "vae":
        from diffusers import AutoencoderKLWan

        m = AutoencoderKLWan.from_pretrained(model / "vae", torch_dtype=f32).eval()
        return lambda: m.decode(x["vae.z"]).sample
    if component == "text_encoder":
        from transformers import UMT5EncoderModel

        m = UMT5EncoderModel.from_pretrained(model / "text_encoder", dtype=f32).eval()
        return lambda: m(input_ids=x["text_encoder.input_ids"]).last_hidden_state
    if component == "pipeline":
        from diffusers import WanPipeline

        pipe = WanPipeline.from_pretrained(model, torch_dtype=f32)
        pipe.set_progress_bar_config(disable=True)

        def generate():
            out = pipe(
                prompt=PROMPT, negative_prompt=NEGATIVE, height=run["height"], width=run["width"],
                num_frames=run["num_frames"], num_inference_steps=run["num_inference_steps"],
                guidance_scale=run["guidance_scale"], output_type="np", max_sequence_length=TEXT_LEN,
                generator=torch.Generator("cpu").manual_seed(run["seed"]),
            )
            return torch.from_numpy(out.frames[0]).contiguous()

        return generate
    raise SystemExit(f"unknown component {component}")


def worker(args) -> None:
    import torch
    from safetensors.torch import save_file

    torch.set_num_threads(args.threads)
    # The libraries are loaded before the baseline, as they are in our binary.
    import diffusers  # noqa: F401
    import transformers  # noqa: F401

    before = memory()
    started = time.perf_counter()
    call = torch_component(args.worker, pathlib.Path(args.model), pathlib.Path(args.inputs), CONFIGS[args.config]["run"])
    load_s = time.perf_counter() - started
    loaded = memory()
    peak_reset = reset_peak()
    times, out = [], None
    with torch.inference_mode():
        for i in range(args.warmup + args.runs):
            started = time.perf_counter()
            out = call()
            if i >= args.warmup:
                times.append(time.perf_counter() - started)
    after = memory()
    if args.save_output and out is not None:
        save_file({"output": out.contiguous()}, args.save_output)
    print(json.dumps(dict(
        side="pytorch", component=args.worker, threads=torch.get_num_threads(), warmup=args.warmup,
        runs=args.runs, load_s=load_s, times_s=times, median_s=statistics.median(times) if times else None,
        rss_before_load=before["resident"], rss_after_load=loaded["resident"],
        peak_rss_load=loaded["peak"], peak_rss_runs=after["peak"], peak_reset=peak_reset,
        output_shape=list(out.shape) if out is not None else None,
    )))


# ---------------------------------------------------------------------------------------------
# The orchestrator: both sides, each component in its own process
# ---------------------------------------------------------------------------------------------


def child_env(threads: int) -> dict:
    env = dict(os.environ)
    env.update(
        RAYON_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false", HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    return env


def busy_cpu_seconds() -> float:
    """CPU time all processes of the machine have used (user, nice, system, irq, softirq,
    steal), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_json(cmd: list, threads: int) -> dict:
    """Runs one measuring process and returns its JSON, plus `other_cores`: the CPU time the
    rest of the machine used meanwhile, in cores (0 on a quiet machine; the load average
    would count the measurement itself)."""
    import resource

    started, busy = time.perf_counter(), busy_cpu_seconds()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, env=child_env(threads), capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, busy = time.perf_counter() - started, busy_cpu_seconds() - busy
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["other_cores"] = max(0.0, busy - ours) / wall
    return result


def measure(side: str, component: str, args, p: dict, output: pathlib.Path) -> dict:
    run = CONFIGS[args.config]["run"]
    common = ["--runs", str(args.runs), "--warmup", str(args.warmup), "--save-output", str(output)]
    if side == "genclip":
        cmd = [args.ours, "bench", "--model", p["model"], "--component", component, "--inputs", p["inputs"]]
        if component == "pipeline":
            cmd += [
                "--prompt", PROMPT, "--negative-prompt", NEGATIVE, "--seed", run["seed"],
                "--steps", run["num_inference_steps"], "--guidance", run["guidance_scale"],
                "--width", run["width"], "--height", run["height"], "--frames", run["num_frames"],
            ]
    else:
        cmd = [
            sys.executable, __file__, "--worker", component, "--config", args.config,
            "--model", p["model"], "--inputs", p["inputs"], "--threads", str(args.threads),
        ]
    return run_json([str(c) for c in cmd + common], args.threads)


def relative_difference(a: pathlib.Path, b: pathlib.Path) -> float:
    from safetensors.torch import load_file

    x, y = load_file(a)["output"].double(), load_file(b)["output"].double()
    if x.shape != y.shape:
        return float("inf")
    return float((x - y).abs().max() / y.abs().max().clamp_min(1e-30))


def machine() -> dict:
    import diffusers
    import torch
    import transformers

    model = "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        pass
    candle = "unknown"
    lock = (ROOT / "Cargo.lock").read_text().split("[[package]]")
    for pkg in lock:
        if 'name = "candle-core"' in pkg:
            candle = pkg.split('version = "')[1].split('"')[0]
    return dict(
        cpu=model, cores=os.cpu_count(), torch=torch.__version__, diffusers=diffusers.__version__,
        transformers=transformers.__version__, candle=candle,
        torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
    )


def mib(n) -> str:
    return "-" if n is None else f"{n / 2**20:,.0f}"


def ratio(a, b) -> str:
    return "-" if not a or not b else f"{a / b:.2f}"


def growth(r: dict):
    return r["peak_rss_runs"] - r["rss_after_load"] if r.get("peak_reset") else None


def above_base(r: dict) -> int:
    """The process's resident high-water mark (loading included) above what it held before
    loading (the runtime and its libraries: Python and libtorch are large, our binary is not)."""
    return max(r["peak_rss_load"], r["peak_rss_runs"]) - r["rss_before_load"]


def print_table(config: str, args, info: dict, rows: list) -> None:
    print(
        f"\nconfig {config}: f32 on the CPU, {args.threads} threads each side, median of {args.runs} "
        f"after {args.warmup} warm-up; {info['cpu']} ({info['cores']} cores), torch {info['torch']}, "
        f"candle {info['candle']}"
    )
    head = (
        f"{'component':<13}{'ours s':>10}{'torch s':>10}{'ratio':>7} |{'ours fwd':>10}{'torch fwd':>10}"
        f"{'ratio':>7} |{'ours peak':>10}{'torch peak':>11}{'ratio':>7} |{'max rel diff':>13}{'others':>7}"
    )
    print(head + "\n" + "-" * len(head))
    for c, ours, torch_, diff in rows:
        o = ours or {}
        o_time, o_fwd = o.get("median_s"), growth(o) if ours else None
        o_peak = above_base(ours) if ours else None
        others = max(torch_["other_cores"], o.get("other_cores", 0))
        print(
            f"{c:<13}{(f'{o_time:.4f}' if o_time else '-'):>10}{torch_['median_s']:>10.4f}"
            f"{ratio(o_time, torch_['median_s']):>7} |"
            f"{mib(o_fwd):>10}{mib(growth(torch_)):>10}{ratio(o_fwd, growth(torch_)):>7} |"
            f"{mib(o_peak):>10}{mib(above_base(torch_)):>11}{ratio(o_peak, above_base(torch_)):>7} |"
            f"{(f'{diff:.1e}' if diff is not None else '-'):>13}{others:>7.2f}"
        )
    print(
        "\ntimes: median seconds per call. Memory in MiB of resident set (VmRSS/VmHWM), each "
        "component in a process of its own:\n  fwd = high-water mark over the warm-up and timed "
        "calls minus resident after loading (activations, workspace);\n  peak = high-water mark "
        "of the whole process (loading included) minus resident before loading (runtime, libraries).\n"
        "max rel diff = max|ours - torch| / max|torch| of the outputs; others = cores the rest of "
        "the machine kept busy meanwhile\n  (the larger of the two runs; anything above 0 skews "
        "the times)."
    )


# ---------------------------------------------------------------------------------------------
# Where our time goes (--profile): perf's call graphs of one call, grouped
# ---------------------------------------------------------------------------------------------


def frame_name(line: str) -> str:
    """`perf script` stack line -> function name, without address, offset and library."""
    name = line.strip().split(" ", 1)[-1]
    return re.sub(r"\+0x[0-9a-f]+", "", name.rsplit(" (", 1)[0]).strip()


def short(name: str) -> str:
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    m = re.search(r"<([\w:]+) as [\w:]+(?:<[^>]*>)?>::(\w+)$", name)
    if m:  # <genclip::...::FeedForward as candle_core::Module>::forward
        name = f"{m.group(1)}::{m.group(2)}"
    return name.replace("genclip::models::", "").replace("candle_core::tensor::", "")


def classify(stack: list, kernel: bool) -> tuple:
    """(place in our code, candle op) for a sample of the main thread; (pool thread, leaf)
    for a sample of a pool thread, whose caller perf cannot see."""
    on_main = any("genclip::engine::bench" in f for f in stack)
    leaf = stack[0] if stack else "?"
    if not on_main:
        if kernel:
            what = "kernel (page faults, unmapping)"
        elif any(x in leaf for x in ("expf", "asuint", "top12")):
            what = "libm expf (softmax rows)"
        elif "tanhf" in leaf or "expm1f" in leaf:
            what = "libm tanhf (GELU)"
        elif "gemm" in leaf:
            what = "gemm kernel"
        elif "FnMut" in leaf or "call_mut" in leaf:
            what = "element-wise closures (softmax rows, maps)"
        else:
            what = short(leaf)[:60]
        return ("(pool thread: caller not visible)", what)
    model = next((short(f) for f in stack if "genclip::models::" in f), "(outside the model)")
    op = next(
        (short(f) for f in stack if re.search(r"candle_core::tensor::Tensor::\w+$|candle_nn::ops::\w+$|candle_nn::rotary_emb::\w+$", f)),
        None,
    )
    if op is None:
        op = "(freeing tensors)" if any("drop" in f or "free" in f for f in stack) else "(no candle op)"
    return (model, op)


def profile(args, p: dict, component: str) -> None:
    if not shutil.which("perf"):
        raise SystemExit("--profile needs perf (linux-tools)")
    out_dir = RESULTS / args.config
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / f"{component}.perf.data"
    cmd = [
        "perf", "record", "-F", "299", "--call-graph", "dwarf,32768", "-o", data, "--",
        args.ours, "bench", "--model", p["model"], "--component", component, "--inputs", p["inputs"],
        "--runs", "1", "--warmup", "0",
    ]
    subprocess.run([str(c) for c in cmd], env=child_env(args.threads), check=True, capture_output=True)
    text = subprocess.run(["perf", "script", "-i", str(data)], capture_output=True, text=True).stdout
    groups, kernel, gemm, total = {}, 0, 0, 0
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n")[1:] if line.strip()]
        if not lines:
            continue
        stack = [frame_name(line) for line in lines]
        total += 1
        kernel += "[kernel.kallsyms]" in lines[0]
        gemm += "gemm" in stack[0] and "microkernel" in stack[0]
        key = classify(stack, "[kernel.kallsyms]" in lines[0])
        groups[key] = groups.get(key, 0) + 1
    print(f"\n{component} ({args.config}, {args.threads} threads): {total} samples of one call, load included")
    print(f"  {100 * gemm / total:5.1f}%  in gemm's microkernels (matrix products)")
    print(f"  {100 * kernel / total:5.1f}%  in the kernel (page faults on fresh allocations, unmapping freed ones)")
    print("  by place in our code and candle op (inclusive of the kernel time they cause):")
    for (model, op), n in sorted(groups.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {100 * n / total:5.1f}%  {model:<55} {op}")
    print(f"perf data: {data.relative_to(ROOT)} (perf report -i ... --children)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--ours", help="the genclip-engine binary (omit to run PyTorch only)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int)
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--components", help=f"comma-separated, from {','.join(COMPONENTS)}")
    ap.add_argument("--generate-only", action="store_true", help="make the folder and inputs, then stop")
    ap.add_argument("--profile", metavar="COMPONENT", help="perf profile of one call of ours, grouped (needs --ours)")
    ap.add_argument("--worker", choices=COMPONENTS, help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--inputs", help=argparse.SUPPRESS)
    ap.add_argument("--save-output", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cfg = CONFIGS[args.config]
    args.runs = args.runs or cfg["runs"]
    args.warmup = cfg["warmup"] if args.warmup is None else args.warmup
    if args.worker:
        worker(args)
        return

    p = ensure_generated(args.config)
    if args.generate_only:
        print(f"model {p['model'].relative_to(ROOT)}, inputs {p['inputs'].relative_to(ROOT)}")
        return
    if args.profile:
        if not args.ours:
            raise SystemExit("--profile needs --ours")
        profile(args, p, args.profile)
        return
    components = args.components.split(",") if args.components else cfg["components"]
    out_dir = RESULTS / args.config
    out_dir.mkdir(parents=True, exist_ok=True)
    info = machine()
    rows, results = [], []
    for c in components:
        ours = None
        if args.ours:
            ours = measure("genclip", c, args, p, out_dir / f"{c}.genclip.safetensors")
        torch_ = measure("pytorch", c, args, p, out_dir / f"{c}.pytorch.safetensors")
        diff = None
        if ours:
            diff = relative_difference(out_dir / f"{c}.genclip.safetensors", out_dir / f"{c}.pytorch.safetensors")
        rows.append((c, ours, torch_, diff))
        results.append(dict(component=c, genclip=ours, pytorch=torch_, max_rel_diff=diff))
    print_table(args.config, args, info, rows)
    report = dict(config=args.config, threads=args.threads, runs=args.runs, warmup=args.warmup, machine=info, results=results)
    path = RESULTS / f"{args.config}-{args.threads}t.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
