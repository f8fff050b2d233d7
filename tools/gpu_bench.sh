#!/usr/bin/env bash
# GenClip's GPU engine against PyTorch (Diffusers / Transformers) on an x86-64 NVIDIA machine
# that has no Rust toolchain and no network: the transformer (one CFG step), the VAE decode
# and the umT5 encoder of the real Wan2.1-T2V-1.3B shapes at 480 x 832 x 81 (the `wan-1.3b`
# config of tools/bench_reference.py, random weights), each side in a process of its own,
# same files, same dtype. Prints time and GPU-memory ratios (ours / PyTorch) and how far the
# outputs differ; writes target/bench-results/gpu-<config>.json. docs/gpu.md says how to
# prepare the machine. About 3-4 minutes on an H100 (1 minute of it making the model folder,
# once). NOT RUN ON A GPU YET: see docs/gpu.md.
#
#   tools/gpu_bench.sh --engine path/to/genclip-engine-cuda [options]
#
# options:
#   --engine FILE       the GPU engine (tools/build_cuda_engine.sh on a build machine)
#   --python PY         a Python with torch (CUDA), diffusers, transformers, safetensors
#                       (default: python3)
#   --config NAME       wan-1.3b (default), mid or tiny
#   --components LIST   comma-separated, from transformer,vae,text_encoder (default: all three)
#   --runs N --warmup N timed and untimed calls per component (default 3 and 1)
#   --dtype bf16|f32    both sides (default bf16, what the engine computes in on a GPU)
#   --gpu N             the CUDA device (default 0)
#
# The engine finds its CUDA libraries (libcublas.so.13, libcublasLt.so.13, libcurand.so.10,
# libnvrtc.so.13, libcudart.so.13) through LD_LIBRARY_PATH: this script adds every
# nvidia/*/lib folder of the Python's site-packages (PyTorch's CUDA 13 wheels ship them), and
# checks with ldd that nothing is missing before it starts.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
engine=""
python=python3
config=wan-1.3b
components=transformer,vae,text_encoder
runs=3
warmup=1
dtype=bf16
gpu=0
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) engine=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --components) components=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --gpu) gpu=$2; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$engine" ] || engine=$root/target/release/genclip-engine-cuda
if [ ! -x "$engine" ]; then
  echo "error: no GPU engine at $engine: pass --engine FILE (built by tools/build_cuda_engine.sh)" >&2
  exit 1
fi
command -v nvidia-smi >/dev/null || { echo "error: nvidia-smi not found: is this an NVIDIA machine with its driver?" >&2; exit 1; }
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader

"$python" - <<'EOF' || { echo "error: $python lacks a package above (no network here: use a Python that has them)" >&2; exit 1; }
import importlib, sys
missing = [m for m in ("torch", "diffusers", "transformers", "safetensors") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing: {', '.join(missing)}")
import torch
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA GPU")
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}) on {torch.cuda.get_device_name()}")
EOF

# The CUDA libraries of the Python's NVIDIA wheels, for the engine.
libs=$("$python" - <<'EOF'
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
dirs = sorted({d for r in roots for d in glob.glob(os.path.join(r, "nvidia", "**", "lib"), recursive=True)})
print(":".join(dirs))
EOF
)
export LD_LIBRARY_PATH=${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if ldd "$engine" | grep 'not found'; then
  echo "error: $engine cannot find the libraries above (LD_LIBRARY_PATH=$LD_LIBRARY_PATH)" >&2
  exit 1
fi
ldd "$engine" | grep -E 'libcuda\.|libcublas|libcurand|libnvrtc|libcudart'

started=$(date +%s)
export GENCLIP_GPU_BENCH_ENGINE=$engine GENCLIP_GPU_BENCH_CONFIG=$config
export GENCLIP_GPU_BENCH_COMPONENTS=$components GENCLIP_GPU_BENCH_RUNS=$runs
export GENCLIP_GPU_BENCH_WARMUP=$warmup GENCLIP_GPU_BENCH_DTYPE=$dtype GENCLIP_GPU_BENCH_GPU=$gpu
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
script=$(mktemp "${TMPDIR:-/tmp}/genclip-gpu-bench.XXXXXX.py")
trap 'rm -f "$script"' EXIT
cat >"$script" <<'EOF'
"""The orchestrator and the PyTorch worker of tools/gpu_bench.sh (written out at each run)."""
import json, os, pathlib, statistics, subprocess, sys, threading, time

ROOT = pathlib.Path.cwd()
sys.path.insert(0, str(ROOT / "tools"))
import bench_reference as ref  # the configs, the folder maker, the output comparison

E = {k[len("GENCLIP_GPU_BENCH_"):].lower(): v for k, v in os.environ.items() if k.startswith("GENCLIP_GPU_BENCH_")}
CONFIG, DTYPE, GPU = E["config"], E["dtype"], int(E["gpu"])
RUNS, WARMUP = int(E["runs"]), int(E["warmup"])


def torch_worker(component, model, inputs, output):
    import torch
    from safetensors.torch import load_file, save_file

    dev = torch.device(f"cuda:{GPU}")
    dt = {"bf16": torch.bfloat16, "f32": torch.float32}[DTYPE]
    x = {k: v.to(dev) for k, v in load_file(inputs).items()}
    started = time.perf_counter()
    if component == "transformer":
        from diffusers import WanTransformer3DModel

        m = WanTransformer3DModel.from_pretrained(model / "transformer", torch_dtype=dt).to(dev).eval()
        args = dict(hidden_states=x["transformer.hidden_states"].to(dt), timestep=x["transformer.timestep"],
                    encoder_hidden_states=x["transformer.encoder_hidden_states"].to(dt), return_dict=False)
        call = lambda: m(**args)[0]
    elif component == "vae":
        from diffusers import AutoencoderKLWan

        m = AutoencoderKLWan.from_pretrained(model / "vae", torch_dtype=dt).to(dev).eval()
        call = lambda: m.decode(x["vae.z"].to(dt)).sample
    elif component == "text_encoder":
        from transformers import UMT5EncoderModel

        m = UMT5EncoderModel.from_pretrained(model / "text_encoder", dtype=dt).to(dev).eval()
        call = lambda: m(input_ids=x["text_encoder.input_ids"]).last_hidden_state
    else:
        sys.exit(f"unknown component {component}")
    torch.cuda.synchronize(dev)
    load_s = time.perf_counter() - started
    torch.cuda.reset_peak_memory_stats(dev)
    times, out = [], None
    with torch.inference_mode():
        for i in range(WARMUP + RUNS):
            started = time.perf_counter()
            out = call()
            torch.cuda.synchronize(dev)
            if i >= WARMUP:
                times.append(time.perf_counter() - started)
    save_file({"output": out.float().cpu().contiguous()}, output)
    print(json.dumps(dict(side="pytorch", component=component, load_s=load_s, times_s=times,
                          median_s=statistics.median(times),
                          torch_max_allocated=torch.cuda.max_memory_allocated(dev),
                          output_shape=list(out.shape))))


def gpu_used_mib():
    out = subprocess.run(["nvidia-smi", f"--id={GPU}", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[0])


def measured(cmd):
    """Runs one measuring process; adds `gpu_peak_mib`: the most GPU memory in use while it ran
    (nvidia-smi every 50 ms) above what was in use before, context included."""
    base, peak, done = gpu_used_mib(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], gpu_used_mib())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    done.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["gpu_peak_mib"] = peak[0] - base
    return result


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return torch_worker(sys.argv[2], pathlib.Path(sys.argv[3]), pathlib.Path(sys.argv[4]), sys.argv[5])
    p = ref.ensure_generated(CONFIG)  # makes the random-weight folder once (about 1 min)
    out_dir = ref.RESULTS / f"gpu-{CONFIG}"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for component in E["components"].split(","):
        ours_out, theirs_out = out_dir / f"{component}-genclip.safetensors", out_dir / f"{component}-pytorch.safetensors"
        ours = measured([E["engine"], "bench", "--model", p["model"], "--component", component, "--inputs", p["inputs"],
                         "--device", f"cuda:{GPU}", "--dtype", DTYPE, "--runs", RUNS, "--warmup", WARMUP,
                         "--save-output", ours_out])
        theirs = measured([sys.executable, __file__, "--worker", component, p["model"], p["inputs"], theirs_out])
        diff = ref.relative_difference(ours_out, theirs_out)
        rows.append(dict(component=component, genclip=ours, pytorch=theirs, max_rel_diff=diff))
        print(f"{component}: ours {ours['median_s']:.3f} s, PyTorch {theirs['median_s']:.3f} s, "
              f"GPU {ours['gpu_peak_mib']} / {theirs['gpu_peak_mib']} MiB, max rel diff {diff:.2e}", flush=True)
    print(f"\n{CONFIG} on GPU {GPU} in {DTYPE}, median of {RUNS} after {WARMUP} warm-up\n")
    print("| component | ours s | PyTorch s | time ratio | GPU MiB ours / theirs | ratio | memory guard's estimate MiB | load s ours / theirs | max rel diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        o, t = r["genclip"], r["pytorch"]
        mem = o["gpu_peak_mib"] / t["gpu_peak_mib"] if t["gpu_peak_mib"] else float("nan")
        # What src/engine/memory_plan.rs expects of ours (runtime + weights + 1.5 x stage):
        # at or above the measured peak, and not wildly so, or its CUDA constants need work.
        g = o.get("guard_estimate") or {}
        guard = f"{g['peak'] >> 20}" if g else "-"
        print(f"| {r['component']} | {o['median_s']:.3f} | {t['median_s']:.3f} | **{o['median_s'] / t['median_s']:.2f}** | "
              f"{o['gpu_peak_mib']} / {t['gpu_peak_mib']} | {mem:.2f} | {guard} | {o['load_s']:.1f} / {t['load_s']:.1f} | {r['max_rel_diff']:.1e} |")
    result = ref.RESULTS / f"gpu-{CONFIG}.json"
    result.write_text(json.dumps(dict(config=CONFIG, dtype=DTYPE, gpu=GPU, runs=RUNS, warmup=WARMUP, results=rows), indent=1))
    print(f"\nwrote {result.relative_to(ROOT)}")


main()
EOF
"$python" "$script"
echo "in all: $(($(date +%s) - started)) s"
