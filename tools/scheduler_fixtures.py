#!/usr/bin/env python3
"""Reference runs of Diffusers' denoising schedulers for src/models/schedulers.

Each case is a scheduler_config.json as a dict; Diffusers builds the scheduler from it with
`from_config`, exactly as a pipeline does, and tests/schedulers.rs builds ours from the same
dict (saved in cases.json). For every case and step count the script records the schedule
(`timesteps`, `sigmas`) and runs a whole denoising loop on CPU in which the "model output" of
step i is `torch.manual_seed(i); torch.randn(SHAPE)`, independent of the sample, starting
from one fixed sample.

Writes tests/fixtures/schedulers/:
  cases.json          the configs, the shape, seeds and what was recorded
  schedulers.safetensors
    model_outputs                      [MAX_STEPS, *SHAPE] f32, row i is step i's model output
    initial_sample                     SHAPE f32, the first step's input of every run
    <case>/n<N>/timesteps              as Diffusers holds them (int64 or float32)
    <case>/n<N>/sigmas                 float32, N + 1 values
    <case>/n<N>/final_sample           the last step's output
    <case>/n<N>/step<i>/{sample,model_output,prev_sample}   for N in RECORDED_STEP_COUNTS
    <case>/n<N>_bf16/...               the same loop with bfloat16 model outputs (BF16_RUNS)

Run from the repository root with the venv of tools/requirements.txt:
    .venv/bin/python tools/scheduler_fixtures.py
"""

import json
import pathlib

import diffusers
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "schedulers"

SHAPE = (1, 4, 3, 4, 6)  # batch, channels, frames, height, width: a very small video latent
SAMPLE_SEED = 20240229
STEP_COUNTS = [1, 2, 3, 10, 50]
RECORDED_STEP_COUNTS = [1, 3, 10]  # every step's tensors; the others keep only the end
MAX_STEPS = max(STEP_COUNTS)

# Wan-AI/Wan2.1-T2V-1.3B-Diffusers (and -14B) scheduler/scheduler_config.json, as downloaded.
WAN21_UNIPC = {
    "_class_name": "UniPCMultistepScheduler",
    "_diffusers_version": "0.33.0.dev0",
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "disable_corrector": [],
    "dynamic_thresholding_ratio": 0.995,
    "final_sigmas_type": "zero",
    "flow_shift": 3.0,
    "lower_order_final": True,
    "num_train_timesteps": 1000,
    "predict_x0": True,
    "prediction_type": "flow_prediction",
    "rescale_betas_zero_snr": False,
    "sample_max_value": 1.0,
    "solver_order": 2,
    "solver_p": None,
    "solver_type": "bh2",
    "steps_offset": 0,
    "thresholding": False,
    "timestep_spacing": "linspace",
    "trained_betas": None,
    "use_beta_sigmas": False,
    "use_exponential_sigmas": False,
    "use_flow_sigmas": True,
    "use_karras_sigmas": False,
}

# The flow-matching Euler scheduler as Wan's training code and Diffusers' Wan docs configure it.
WAN_FLOW_EULER = {
    "_class_name": "FlowMatchEulerDiscreteScheduler",
    "_diffusers_version": "0.33.0.dev0",
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": False,
}

CASES = {
    # Wan2.1 T2V at 480p.
    "unipc_shift3": WAN21_UNIPC,
    # Wan2.1 T2V at 720p.
    "unipc_shift5": {**WAN21_UNIPC, "flow_shift": 5.0},
    # The other UniPC paths we implement: B(h) = h, a nonzero final sigma, second order up to
    # the end, correctors switched off at some steps, a shift that is not a round number, and
    # the newer keys Wan2.2's config carries.
    "unipc_variant": {
        **WAN21_UNIPC,
        "solver_type": "bh1",
        "final_sigmas_type": "sigma_min",
        "lower_order_final": False,
        "disable_corrector": [0, 2, 5],
        "flow_shift": 7.3,
        "time_shift_type": "exponential",
        "use_dynamic_shifting": False,
    },
    # First-order UniPC (the corrector still runs).
    "unipc_order1": {**WAN21_UNIPC, "solver_order": 1},
    "flow_euler_shift3": WAN_FLOW_EULER,
    "flow_euler_shift5": {**WAN_FLOW_EULER, "shift": 5.0},
}

# Runs repeated with the model output in bfloat16 (the engine's GPU dtype) and float32 latents:
# Diffusers rounds some products to the model output's dtype.
BF16_RUNS = {"unipc_shift3": 10, "flow_euler_shift3": 10}

SCHEDULER_CLASSES = {
    "UniPCMultistepScheduler": UniPCMultistepScheduler,
    "FlowMatchEulerDiscreteScheduler": FlowMatchEulerDiscreteScheduler,
}


def model_outputs() -> torch.Tensor:
    rows = []
    for i in range(MAX_STEPS):
        torch.manual_seed(i)
        rows.append(torch.randn(SHAPE, dtype=torch.float32))
    return torch.stack(rows)


def run(config: dict, steps: int, outputs: torch.Tensor, sample: torch.Tensor, record: bool, prefix: str) -> dict:
    scheduler = SCHEDULER_CLASSES[config["_class_name"]].from_config(config)
    scheduler.set_timesteps(steps)
    assert len(scheduler.timesteps) == steps
    tensors = {
        f"{prefix}/timesteps": scheduler.timesteps.clone(),
        f"{prefix}/sigmas": scheduler.sigmas.clone(),
    }
    for i, t in enumerate(scheduler.timesteps):
        model_output = outputs[i]
        prev = scheduler.step(model_output, t, sample, return_dict=False)[0]
        if record:
            tensors[f"{prefix}/step{i:02}/sample"] = sample.clone()
            tensors[f"{prefix}/step{i:02}/model_output"] = model_output.clone()
            tensors[f"{prefix}/step{i:02}/prev_sample"] = prev.clone()
        sample = prev
    tensors[f"{prefix}/final_sample"] = sample.clone()
    return tensors


def main() -> None:
    torch.manual_seed(SAMPLE_SEED)
    initial = torch.randn(SHAPE, dtype=torch.float32)
    outputs = model_outputs()
    tensors = {"model_outputs": outputs, "initial_sample": initial}
    for name, config in CASES.items():
        for steps in STEP_COUNTS:
            record = steps in RECORDED_STEP_COUNTS
            tensors.update(run(config, steps, outputs, initial, record, f"{name}/n{steps}"))
    for name, steps in BF16_RUNS.items():
        tensors.update(run(CASES[name], steps, outputs.bfloat16(), initial, True, f"{name}/n{steps}_bf16"))

    OUT.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(OUT / "schedulers.safetensors"))
    meta = {
        "made_with": {"diffusers": diffusers.__version__, "torch": torch.__version__},
        "shape": list(SHAPE),
        "initial_sample": f"torch.manual_seed({SAMPLE_SEED}); torch.randn(shape)",
        "model_output": "step i: torch.manual_seed(i); torch.randn(shape)",
        "step_counts": STEP_COUNTS,
        "recorded_step_counts": RECORDED_STEP_COUNTS,
        "bf16_runs": BF16_RUNS,
        "cases": CASES,
    }
    (OUT / "cases.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(tensors)} tensors to {OUT} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
