//! `genclip-engine bench`: times one model component (or the whole pipeline) of a Diffusers
//! Wan2.1 folder and reports time and memory as one JSON object on stdout. With
//! `--runs 0 --warmup 0` it only loads the component (a check that a folder is usable).
//!
//! `tools/bench_reference.py` writes the model folder and the inputs (the same random weights
//! and tensors its PyTorch side loads), runs this command once per component, each in its
//! own process, and prints ours / PyTorch ratios. docs/benchmarks.md describes the method.
//!
//! `--device auto|cpu|cuda[:N]` (default cpu) and `--dtype f32|bf16|f16` (default: f32 on the
//! CPU, bf16 on a GPU, as the engine computes) choose where it runs; on a GPU each timed call
//! ends with a device synchronisation, and the resident-set figures below are host memory only.
//!
//! Memory is read from `/proc/self/status` (Linux): the resident set once the component is
//! loaded, then the high-water mark over the warm-up and timed runs, after resetting it with
//! `/proc/self/clear_refs` so that the load's own peak (weights memory-mapped and copied) does
//! not hide the forward pass's.

use crate::cli::Flags;
use crate::client::ComputeClass;
use crate::engine::memory_plan::{self, JobShape, ModelShape};
use crate::engine::pipeline::{Pipeline, Request};
use crate::models::diffusers::ModelFolder;
use crate::models::umt5::{self, Umt5Encoder};
use crate::models::wan::config::{TransformerConfig, VaeConfig};
use crate::models::wan::transformer::WanTransformer;
use crate::models::wan::vae::WanVaeDecoder;
use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What one bench process measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// One denoising step with classifier-free guidance: one call at batch 2.
    Transformer,
    /// The VAE decode of the whole latent.
    Vae,
    /// The umT5 encoder on the input ids.
    TextEncoder,
    /// `Pipeline::generate`, prompt to frames.
    Pipeline,
}

impl Component {
    pub fn parse(name: &str) -> Result<Component, String> {
        match name {
            "transformer" => Ok(Component::Transformer),
            "vae" => Ok(Component::Vae),
            "text_encoder" => Ok(Component::TextEncoder),
            "pipeline" => Ok(Component::Pipeline),
            _ => Err(format!(
                "--component {name}: use transformer, vae, text_encoder or pipeline"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Component::Transformer => "transformer",
            Component::Vae => "vae",
            Component::TextEncoder => "text_encoder",
            Component::Pipeline => "pipeline",
        }
    }
}

/// Resident-memory figures of this process, in bytes (Linux `/proc/self/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// VmRSS: resident now.
    pub resident: u64,
    /// VmHWM: the most resident since the process started or [`reset_peak`] last ran.
    pub peak: u64,
}

/// This process's resident memory, or `None` where `/proc` is not there.
pub fn memory() -> Option<Memory> {
    memory_in("/proc/self/status")
}

/// Process `pid`'s resident memory (the tests watch engine processes with it).
pub fn memory_of(pid: u32) -> Option<Memory> {
    memory_in(&format!("/proc/{pid}/status"))
}

fn memory_in(status_file: &str) -> Option<Memory> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some(Memory {
        resident: field("VmRSS:")?,
        peak: field("VmHWM:")?,
    })
}

/// Sets the high-water mark back to what is resident now (Linux 4.0+); false where the
/// kernel refused, and the mark then still holds every earlier peak.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A loaded component, ready to run on its inputs.
enum Loaded {
    Transformer {
        model: Box<WanTransformer>,
        latents: Tensor,
        timestep: Tensor,
        text: Tensor,
    },
    Vae {
        model: Box<WanVaeDecoder>,
        z: Tensor,
    },
    TextEncoder {
        model: Box<Umt5Encoder>,
        ids: Tensor,
    },
    Pipeline {
        pipeline: Box<Pipeline>,
        request: Request,
    },
}

/// The inputs file's tensor `name`, with a sentence naming the file when it is missing.
fn input(inputs: &HashMap<String, Tensor>, file: &Path, name: &str) -> Result<Tensor, String> {
    inputs.get(name).cloned().ok_or_else(|| {
        format!(
            "{} has no tensor {name}: write it with tools/bench_reference.py",
            file.display()
        )
    })
}

fn load_inputs(
    file: Option<&Path>,
    device: &Device,
) -> Result<(HashMap<String, Tensor>, PathBuf), String> {
    let file = file.ok_or("bench needs --inputs FILE (inputs.safetensors)")?;
    let tensors = candle_core::safetensors::load(file, device)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok((tensors, file.to_path_buf()))
}

fn load(
    component: Component,
    model: &Path,
    inputs: Option<&Path>,
    request: Option<Request>,
    (cpu, dtype): (&Device, DType),
) -> Result<Loaded, String> {
    let err = |e: candle_core::Error| format!("{}: {e}", model.display());
    // The VAE in f32 on the CPU, as Pipeline::load does.
    let vae_dtype = if cpu.is_cpu() { DType::F32 } else { dtype };
    let as_dtype = |t: Tensor, dtype: DType| t.to_dtype(dtype).map_err(err);
    if component == Component::Pipeline {
        let request = request.ok_or("bench --component pipeline needs the request flags")?;
        let pipeline = Pipeline::load(model, cpu, dtype).map_err(err)?;
        return Ok(Loaded::Pipeline {
            pipeline: Box::new(pipeline),
            request,
        });
    }
    let (tensors, file) = load_inputs(inputs, cpu)?;
    let folder = ModelFolder::open(model).map_err(err)?;
    let weights = |name: &str| {
        let dtype = if name == "vae" { vae_dtype } else { dtype };
        folder
            .weights(name, dtype, cpu)
            .map(|w| w.var_builder())
            .map_err(err)
    };
    Ok(match component {
        Component::Transformer => Loaded::Transformer {
            model: Box::new(
                WanTransformer::new(
                    &TransformerConfig::load(&folder).map_err(err)?,
                    weights("transformer")?,
                )
                .map_err(err)?,
            ),
            latents: as_dtype(input(&tensors, &file, "transformer.hidden_states")?, dtype)?,
            timestep: input(&tensors, &file, "transformer.timestep")?,
            text: as_dtype(
                input(&tensors, &file, "transformer.encoder_hidden_states")?,
                dtype,
            )?,
        },
        Component::Vae => Loaded::Vae {
            model: Box::new(
                WanVaeDecoder::new(&VaeConfig::load(&folder).map_err(err)?, weights("vae")?)
                    .map_err(err)?,
            ),
            z: as_dtype(input(&tensors, &file, "vae.z")?, vae_dtype)?,
        },
        Component::TextEncoder => Loaded::TextEncoder {
            model: Box::new(
                Umt5Encoder::new(
                    &umt5::Config::load(&folder).map_err(err)?,
                    weights("text_encoder")?,
                )
                .map_err(err)?,
            ),
            ids: input(&tensors, &file, "text_encoder.input_ids")?,
        },
        Component::Pipeline => unreachable!("returned above"),
    })
}

impl Loaded {
    /// One measured call; returns its output (frames [F, H, W, 3] for the pipeline).
    fn run(&self) -> Result<Tensor, String> {
        let e = |e: candle_core::Error| e.to_string();
        match self {
            Loaded::Transformer {
                model,
                latents,
                timestep,
                text,
            } => model.forward(latents, timestep, text).map_err(e),
            Loaded::Vae { model, z } => model.decode(z, |_, _| Ok(())).map_err(e),
            Loaded::TextEncoder { model, ids } => model.forward(ids, None).map_err(e),
            Loaded::Pipeline { pipeline, request } => {
                let video = pipeline
                    .generate(request, &mut |_| {}, &|| false)
                    .map_err(|e| e.to_string())?;
                let shape = (video.frames, video.height, video.width, 3);
                Tensor::from_vec(video.rgb, shape, &Device::Cpu).map_err(e)
            }
        }
    }
}

/// What the memory guard (`memory_plan`) estimates this component holds at its peak for the
/// bench's inputs: the runtime, its weights and 1.5 × its stage. Next to the measured peak
/// (`tools/gpu_bench.sh` prints both) it checks the guard's constants on a new device.
fn guard_estimate(options: &Options, loaded: &Loaded) -> Option<Value> {
    let shape = ModelShape::read(&options.model).ok()?;
    let class = if options.device.is_cpu() {
        ComputeClass::Cpu
    } else {
        ComputeClass::Cuda
    };
    let (ts, ss) = (
        shape.vae.temporal_scale.max(1),
        shape.vae.spatial_scale.max(1),
    );
    // The clip a latent [batch, channels, frames, height, width] stands for.
    let job_of = |latent: &Tensor| -> Option<JobShape> {
        let (batch, _, frames, height, width) = latent.dims5().ok()?;
        let frames = (frames.max(1) - 1) * ts + 1;
        Some(JobShape {
            width: width * ss,
            height: height * ss,
            frames,
            window_frames: frames,
            guided: batch == 2,
            prompts: 1,
        })
    };
    let plan_for = |job: &JobShape| memory_plan::estimate(&shape, job, class, options.dtype);
    let size = |dtype: DType| dtype.size_in_bytes() as u64;
    let vae_dtype = memory_plan::vae_dtype(class, options.dtype);
    let (plan, weights, stage) = match loaded {
        Loaded::Transformer { latents, .. } => {
            let plan = plan_for(&job_of(latents)?);
            let stage = plan.transformer_step;
            (plan, shape.transformer_weights * size(options.dtype), stage)
        }
        Loaded::Vae { z, .. } => {
            let plan = plan_for(&job_of(z)?);
            // The bench keeps the decoder's output, not the clip's copies.
            let stage = plan.vae_decode - plan.decoded_frames;
            (plan, shape.vae_decoder_weights * size(vae_dtype), stage)
        }
        Loaded::TextEncoder { .. } => {
            let plan = plan_for(&JobShape {
                width: 0,
                height: 0,
                frames: 1,
                window_frames: 1,
                guided: false,
                prompts: 1,
            });
            let stage = plan.text_encoder;
            (
                plan,
                shape.text_encoder_weights * size(options.dtype),
                stage,
            )
        }
        Loaded::Pipeline { .. } => return None,
    };
    let peak = plan.runtime + weights + (memory_plan::SAFETY * stage as f64) as u64;
    Some(json!({
        "runtime": plan.runtime,
        "weights": weights,
        "stage": stage,
        "peak": peak,
    }))
}

fn median(times: &[f64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// What to measure and how often.
pub struct Options {
    pub component: Component,
    pub model: PathBuf,
    pub inputs: Option<PathBuf>,
    /// For the pipeline component.
    pub request: Option<Request>,
    pub warmup: usize,
    /// Timed calls after the warm-up; with none (and no warm-up) the bench only loads.
    pub runs: usize,
    /// Where to write the last run's output (`output` in a safetensors file).
    pub save_output: Option<PathBuf>,
    /// Where and in what dtype (default: the CPU in f32).
    pub device: Device,
    pub dtype: DType,
}

/// Loads, warms up, runs and reports (the JSON object `bench` prints).
pub fn measure(options: &Options) -> Result<Value, String> {
    let before_load = memory();
    let started = Instant::now();
    let loaded = load(
        options.component,
        &options.model,
        options.inputs.as_deref(),
        options.request.clone(),
        (&options.device, options.dtype),
    )?;
    options
        .device
        .synchronize()
        .map_err(|e| format!("cannot synchronise the device: {e}"))?;
    let load_s = started.elapsed().as_secs_f64();
    let after_load = memory();
    let peak_reset = reset_peak();

    let mut times = Vec::with_capacity(options.runs);
    let mut output = None;
    for i in 0..options.warmup + options.runs {
        let started = Instant::now();
        let out = loaded.run()?;
        // GPU calls only queue work: the time is the time to finish it.
        options.device.synchronize().map_err(|e| e.to_string())?;
        if i >= options.warmup {
            times.push(started.elapsed().as_secs_f64());
        }
        output = Some(out);
    }
    let after_runs = memory();
    if let (Some(path), Some(output)) = (&options.save_output, &output) {
        output
            .to_device(&Device::Cpu)
            .and_then(|o| o.to_dtype(DType::F32))
            .map_err(|e| e.to_string())?
            .save_safetensors("output", path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let bytes = |m: Option<Memory>, f: fn(Memory) -> u64| m.map(f);
    Ok(json!({
        "side": "genclip",
        "component": options.component.name(),
        "device": crate::engine::server::device_name(&options.device),
        "dtype": options.dtype.as_str(),
        "threads": candle_core::utils::get_num_threads(),
        "warmup": options.warmup,
        "runs": options.runs,
        "load_s": load_s,
        "times_s": times,
        "median_s": (!times.is_empty()).then(|| median(&times)),
        "rss_before_load": bytes(before_load, |m| m.resident),
        "rss_after_load": bytes(after_load, |m| m.resident),
        "peak_rss_load": bytes(after_load, |m| m.peak),
        "peak_rss_runs": bytes(after_runs, |m| m.peak),
        "peak_reset": peak_reset,
        "output_shape": output.as_ref().map(|o| o.dims().to_vec()),
        "guard_estimate": guard_estimate(options, &loaded),
    }))
}

/// The `bench` subcommand.
pub fn run(flags: &Flags) -> Result<(), String> {
    flags.check_known(&[
        "model",
        "component",
        "inputs",
        "warmup",
        "runs",
        "save-output",
        "prompt",
        "negative-prompt",
        "seed",
        "steps",
        "guidance",
        "width",
        "height",
        "frames",
        "device",
        "dtype",
    ])?;
    let choice = crate::client::DeviceChoice::parse(flags.get("device").unwrap_or("cpu"))?;
    let (device, default_dtype) = crate::engine::server::open_device(choice)?;
    let dtype = match flags.get("dtype") {
        None => default_dtype,
        Some("f32") => DType::F32,
        Some("bf16") => DType::BF16,
        Some("f16") => DType::F16,
        Some(other) => return Err(format!("--dtype {other}: use f32, bf16 or f16")),
    };
    let component = Component::parse(
        flags
            .get("component")
            .ok_or("bench needs --component transformer|vae|text_encoder|pipeline")?,
    )?;
    let request = match flags.get("prompt") {
        Some(prompt) => Some(Request {
            prompt: prompt.to_string(),
            negative_prompt: flags.get("negative-prompt").unwrap_or("").to_string(),
            seed: flags.parsed("seed")?.unwrap_or(42),
            steps: flags.parsed("steps")?.ok_or("bench needs --steps N")?,
            guidance_scale: flags.parsed("guidance")?.unwrap_or(5.0),
            width: flags.parsed("width")?.ok_or("bench needs --width W")?,
            height: flags.parsed("height")?.ok_or("bench needs --height H")?,
            frames: flags.parsed("frames")?.ok_or("bench needs --frames F")?,
        }),
        None => None,
    };
    let options = Options {
        component,
        model: PathBuf::from(
            flags
                .get("model")
                .ok_or("bench needs --model DIR (a Diffusers Wan2.1 folder)")?,
        ),
        inputs: flags.get("inputs").map(PathBuf::from),
        request,
        warmup: flags.parsed("warmup")?.unwrap_or(1),
        runs: flags.parsed("runs")?.unwrap_or(3),
        save_output: flags.get("save-output").map(PathBuf::from),
        device,
        dtype,
    };
    let report = measure(&options)?;
    println!("{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_estimate_is_the_memory_plans_for_the_bench_inputs() {
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wan_tiny_a/model");
        let folder = ModelFolder::open(&model).unwrap();
        let cpu = Device::Cpu;
        let vae = WanVaeDecoder::new(
            &VaeConfig::load(&folder).unwrap(),
            folder
                .weights("vae", DType::F32, &cpu)
                .unwrap()
                .var_builder(),
        )
        .unwrap();
        // Three latent frames of 4 × 6: 9 frames of 32 × 48.
        let z = Tensor::zeros((1, 4, 3, 4, 6), DType::F32, &cpu).unwrap();
        let loaded = Loaded::Vae {
            model: Box::new(vae),
            z,
        };
        let options = Options {
            component: Component::Vae,
            model: model.clone(),
            inputs: None,
            request: None,
            warmup: 0,
            runs: 0,
            save_output: None,
            device: cpu,
            dtype: DType::F32,
        };
        let estimate = guard_estimate(&options, &loaded).unwrap();
        let shape = ModelShape::read(&model).unwrap();
        let plan = memory_plan::estimate(
            &shape,
            &JobShape {
                width: 48,
                height: 32,
                frames: 9,
                window_frames: 9,
                guided: false,
                prompts: 1,
            },
            ComputeClass::Cpu,
            DType::F32,
        );
        let stage = plan.vae_decode - plan.decoded_frames;
        let weights = shape.vae_decoder_weights * 4;
        assert_eq!(estimate["stage"], stage);
        assert_eq!(estimate["weights"], weights);
        assert_eq!(
            estimate["peak"],
            plan.runtime + weights + (memory_plan::SAFETY * stage as f64) as u64
        );
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn memory_counts_a_touched_allocation() {
        if memory().is_none() {
            eprintln!("skipped: no /proc/self/status here");
            return;
        }
        // 64 MiB, touched page by page so that it is resident. Other tests of this process
        // allocate and free meanwhile, so only what this block alone implies is checked; the
        // growth and the peak reset are checked in tests/attention_memory.rs, in a process
        // of its own.
        let mut block = vec![0u8; 64 << 20];
        for i in (0..block.len()).step_by(4096) {
            block[i] = 1;
        }
        std::hint::black_box(&block);
        let m = memory().unwrap();
        assert!(m.resident >= 64 << 20, "{m:?}");
        assert!(m.peak >= m.resident, "{m:?}");
    }

    #[test]
    fn component_names_round_trip() {
        for c in [
            Component::Transformer,
            Component::Vae,
            Component::TextEncoder,
            Component::Pipeline,
        ] {
            assert_eq!(Component::parse(c.name()), Ok(c));
        }
        assert!(Component::parse("unet").is_err());
    }
}
