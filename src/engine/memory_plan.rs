//! The memory guard: before a job loads anything, estimate the most memory it will hold at
//! once and refuse it with a sentence when that is more than the machine has free, instead of
//! letting the engine be killed (CPU) or fail with an allocation error minutes in (GPU).
//!
//! The estimate ([`estimate`]) follows what the engine holds, stage by stage:
//!
//! - **weights**: every weight the pipeline loads (transformer and VAE decoder, the text
//!   encoder apart), counted from the safetensors headers and converted to the dtype each runs
//!   in (the VAE in f32 on the CPU).
//! - **runtime**: what the process needs besides (allocator, tokenizer, cuBLAS workspaces).
//! - the transient stages, times [`SAFETY`]:
//!   - the text encoder's pass over at most 512 tokens (with its weights, beside the
//!     transformer's or alone);
//!   - one transformer step: hidden states, q/k/v and projections (about ten buffers of
//!     tokens × width, two of them in f32 for the layer norms), the FFN's two buffers of
//!     tokens × ffn width, at batch 2 when guiding, and the attention's score blocks
//!     (`models::attention::query_block` queries × all keys × heads, two alive at once in
//!     f32, plus one in the compute dtype when that is not f32), except on the CPU in f32,
//!     whose fused attention holds no score matrix;
//!   - the VAE decode of one latent frame (4 video frames, the full-resolution stages one
//!     frame at a time): measured at about 13 four-frame buffers of the last stage's channels
//!     on the CPU (mostly the causal caches); on CUDA 11 such buffers plus candle's im2col of
//!     the widest full-resolution convolution, which the VAE bounds by convolving in bands of
//!     rows; and the decoded frames, kept until the end in several forms.
//!
//! A job has two phases: encoding the prompts (only those not in the embedding cache), then
//! denoising and decoding with the latents alive. [`MemoryPlan::peak`] is the larger of the
//! two for a [`Residency`] (which weights are loaded in each), and [`choose`] takes the
//! first residency, from most memory to least, that fits: everything kept (the CPU only),
//! the text encoder loaded only to encode, or the transformer dropped while it does. None
//! changes a number of the clip; the last costs a reload.
//!
//! The budget ([`Budget::measure`]) is the memory free now plus what the engine already holds
//! for a loaded model (it is reused or dropped before the next load): `MemAvailable` of
//! `/proc/meminfo` (and a cgroup v2 limit if the engine runs under one) on the CPU, the
//! driver's free memory of the GPU on CUDA; or `GENCLIP_MEMORY_BUDGET_MB` when it is set and
//! smaller. `docs/gpu.md` has the numbers for the real models.

use crate::client::protocol::ClipRequest;
use crate::client::ComputeClass;
use crate::engine::prompt_encoder::EncoderWeights;
use crate::models::attention::query_block;
use crate::models::diffusers::{ModelFolder, Weights};
use crate::models::umt5;
use crate::models::wan::config::{TransformerConfig, VaeConfig};
use candle_core::{DType, Device};
use std::path::Path;

/// Caps the budget in MB (10^6 bytes): set it to leave memory to other programs, or to test
/// the guard.
pub const BUDGET_ENV: &str = "GENCLIP_MEMORY_BUDGET_MB";

/// The transient parts of the estimate (activations, latents) are multiplied by this: the
/// estimate follows the code's buffers, and allocators and kernels add what it cannot see.
pub const SAFETY: f64 = 1.5;

/// On the CPU in f32 the attention is a fused kernel (`models::cpu::attention`) whose score
/// blocks are 256 KiB per worker thread: no score matrix, this much for all threads.
const FUSED_ATTENTION_BYTES: f64 = 16e6;

/// Rows of text the transformer attends to (the pipeline pads every prompt to 512).
const TEXT_ROWS: usize = 512;

/// Full-resolution buffers of the VAE decoder's last stage alive at its peak, in units of
/// (4 frames × height × width × channels of the last stage × dtype size). Measured with
/// `genclip-engine bench --component vae` on the `mid` VAE (base width 16), 9 frames: 73-79
/// MiB at 128 × 192 and 275-293 MiB at 240 × 416 (12.2-13.1 and 11.3-12.0 units), since the
/// stages after the last temporal upsampler run one video frame at a time and the causal
/// caches keep copies of their two frames (first 153 and 575 MiB, 25.5 and 23.6 units). What
/// remains is mostly the causal caches themselves.
const VAE_UNITS_CPU: f64 = 14.0;
/// The same on CUDA, besides the im2col (no measurement yet: the CPU's count less the heap's
/// kept blocks, scaled as the CPU's fell).
const VAE_UNITS_CUDA: f64 = 10.0;
/// candle's CUDA conv2d materialises its im2col; the VAE convolves in bands of output rows
/// whose columns stay under this (`CONV2D_COLUMN_BYTES` in `models/wan/vae.rs`): keep equal.
const VAE_COLUMN_BYTES: f64 = (256u64 << 20) as f64;

/// What the CPU engine process needs besides the model (code, tokenizer, thread pools).
const RUNTIME_CPU: u64 = 64_000_000;
/// What a CUDA engine needs besides the model once its context exists (cuBLAS workspaces,
/// loaded kernel modules, the caching allocator's rounding).
const RUNTIME_CUDA: u64 = 512_000_000;

/// The transformer's sizes that decide its memory.
#[derive(Clone, Debug, PartialEq)]
pub struct TransformerShape {
    /// heads × head dim.
    pub width: usize,
    pub heads: usize,
    pub ffn: usize,
    /// Latent channels.
    pub in_channels: usize,
    /// [time, height, width] of a patch.
    pub patch: [usize; 3],
}

/// The umT5 encoder's sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct TextEncoderShape {
    pub width: usize,
    pub heads: usize,
    pub ffn: usize,
}

/// The VAE decoder's sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct VaeShape {
    /// The decoder's base width (`decoder_base_dim`, else `base_dim`).
    pub base: usize,
    pub dim_mult: Vec<usize>,
    pub spatial_scale: usize,
    pub temporal_scale: usize,
}

/// A model folder's sizes and weight counts (read from its configs and safetensors headers;
/// nothing is loaded).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelShape {
    pub transformer: TransformerShape,
    pub text_encoder: TextEncoderShape,
    pub vae: VaeShape,
    /// Weight elements of the transformer, the text encoder and the VAE's decoder half.
    pub transformer_weights: u64,
    pub text_encoder_weights: u64,
    pub vae_decoder_weights: u64,
    /// Bytes of the text encoder's files (bf16 for Wan's umT5).
    pub text_encoder_stored_bytes: u64,
}

impl ModelShape {
    /// Reads a Diffusers Wan2.1 folder's configs and weight headers.
    pub fn read(folder: &Path) -> Result<ModelShape, String> {
        let e = |e: candle_core::Error| e.to_string();
        let folder = ModelFolder::open(folder).map_err(e)?;
        let t = TransformerConfig::load(&folder).map_err(e)?;
        let u = umt5::Config::load(&folder).map_err(e)?;
        let v = VaeConfig::load(&folder).map_err(e)?;
        let open = |component: &str| {
            folder
                .weights(component, DType::F32, &Device::Cpu)
                .map_err(e)
        };
        let elements = |weights: &Weights, keep: &dyn Fn(&str) -> bool| -> u64 {
            weights
                .names()
                .filter(|name| keep(name))
                .filter_map(|name| weights.stored_shape(name))
                .map(|shape| shape.iter().product::<usize>() as u64)
                .sum()
        };
        let text_encoder = open("text_encoder")?;
        Ok(ModelShape {
            transformer: TransformerShape {
                width: t.inner_dim(),
                heads: t.num_attention_heads,
                ffn: t.ffn_dim,
                in_channels: t.in_channels,
                patch: t.patch_size,
            },
            text_encoder: TextEncoderShape {
                width: u.d_model,
                heads: u.num_heads,
                ffn: u.d_ff,
            },
            vae: VaeShape {
                base: v.decoder_base_dim.unwrap_or(v.base_dim),
                dim_mult: v.dim_mult.clone(),
                spatial_scale: v.spatial_scale(),
                temporal_scale: v.temporal_scale(),
            },
            transformer_weights: elements(&open("transformer")?, &|_| true),
            text_encoder_weights: elements(&text_encoder, &|_| true),
            text_encoder_stored_bytes: text_encoder.stored_bytes(),
            // The pipeline builds only the decoder (the encoder half stays on disk).
            vae_decoder_weights: elements(&open("vae")?, &|name| {
                name.starts_with("decoder.") || name.starts_with("post_quant_conv.")
            }),
        })
    }
}

/// What of a request decides its memory.
#[derive(Clone, Debug, PartialEq)]
pub struct JobShape {
    pub width: usize,
    pub height: usize,
    /// Video frames of the whole clip.
    pub frames: usize,
    /// Video frames the transformer sees at once (a context window, or the whole clip).
    pub window_frames: usize,
    /// Classifier-free guidance: batch 2 in every transformer call.
    pub guided: bool,
    /// Distinct prompts (each gets its own cross-attention when several blend).
    pub prompts: usize,
}

impl JobShape {
    pub fn of(request: &ClipRequest) -> JobShape {
        JobShape {
            width: request.width,
            height: request.height,
            frames: request.frames,
            window_frames: request
                .windows
                .map_or(request.frames, |w| w.frames.min(request.frames)),
            // As the pipeline (and Diffusers) decide: guidance only above 1.
            guided: request.guidance_scale > 1.0,
            prompts: request.prompts.len().max(1),
        }
    }
}

/// A job's estimated memory, in bytes: what stays loaded, and each stage's transient part.
/// [`MemoryPlan::peak`] adds them up for a [`Residency`].
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPlan {
    /// The transformer's and the VAE decoder's weights.
    pub denoiser_weights: u64,
    /// The text encoder's weights (in the compute dtype, wherever it runs).
    pub text_encoder_weights: u64,
    /// The same as stored, when that is less ([`Residency::TextEncoderAsStoredAlone`]).
    pub text_encoder_stored_weights: Option<u64>,
    /// What the encoder kept as stored widens at once: its largest matrix.
    pub text_encoder_widening: u64,
    pub runtime: u64,
    pub latents: u64,
    /// The text encoder's pass over 512 tokens.
    pub text_encoder: u64,
    pub transformer_step: u64,
    pub vae_decode: u64,
    /// The part of `vae_decode` that is the decoded clip, kept in several forms until it is
    /// assembled (the rest is the decoder's own working memory).
    pub decoded_frames: u64,
}

/// How the weights share memory during a job, from most to least memory: the engine picks the
/// first that fits ([`choose`]). None changes a single number of the clip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residency {
    /// Everything loaded for the whole job and kept for the next one: a new prompt costs no
    /// load. Only on the CPU; on a GPU the text encoder never stays.
    Resident,
    /// The text encoder loaded only while it encodes, beside the transformer and the VAE,
    /// and dropped before denoising.
    TextEncoderWhileEncoding,
    /// The transformer and the VAE dropped while the text encoder runs and loaded again after
    /// it, for the time of a reload (seconds, from the page cache).
    TextEncoderAlone,
    /// As [`Residency::TextEncoderAlone`], the encoder's weights kept as the files store them
    /// (bf16 in an f32 engine) and widened layer by layer: half its memory, some seconds more
    /// per prompt. Only where the files are narrower than the compute dtype.
    TextEncoderAsStoredAlone,
}

impl Residency {
    /// What a job gets when its memory cannot be estimated: everything kept on the CPU, the
    /// encoder loaded only to encode on a GPU (as [`choose`] picks with an unknown budget).
    pub fn unguarded(class: ComputeClass) -> Residency {
        match class {
            ComputeClass::Cpu => Residency::Resident,
            ComputeClass::Cuda => Residency::TextEncoderWhileEncoding,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Residency::Resident => "everything stays loaded",
            Residency::TextEncoderWhileEncoding => "the text encoder is loaded only to encode",
            Residency::TextEncoderAlone => {
                "the text encoder runs alone, the transformer is loaded after it"
            }
            Residency::TextEncoderAsStoredAlone => {
                "the text encoder runs alone with its weights as stored, the transformer is \
                 loaded after it"
            }
        }
    }

    /// Whether the transformer and the VAE are dropped while the text encoder runs.
    pub fn encodes_alone(self) -> bool {
        matches!(
            self,
            Residency::TextEncoderAlone | Residency::TextEncoderAsStoredAlone
        )
    }

    /// How the text encoder's weights are held.
    pub fn encoder_weights(self) -> EncoderWeights {
        match self {
            Residency::TextEncoderAsStoredAlone => EncoderWeights::AsStored,
            _ => EncoderWeights::Widened,
        }
    }
}

/// A job's text work, as memory sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextWork {
    /// Some prompt is not in the embedding cache: the encoder must run.
    pub encoding: bool,
    /// The encoder runs on the compute device (else on the CPU beside a GPU engine, where its
    /// memory is the host's: [`MemoryPlan::text_encoder_on_cpu`]).
    pub on_compute_device: bool,
}

impl MemoryPlan {
    /// The most the job holds at once on the compute device: the larger of the encoding
    /// phase and the denoise-and-decode phase.
    pub fn peak(&self, residency: Residency, text: TextWork) -> u64 {
        let transient = |bytes: u64| (SAFETY * bytes as f64) as u64;
        let encoder_here = if text.on_compute_device {
            self.text_encoder_weights
        } else {
            0
        };
        let encoding = if text.encoding && text.on_compute_device {
            let beside = if residency.encodes_alone() {
                0
            } else {
                self.denoiser_weights
            };
            let (encoder, widening) = match residency.encoder_weights() {
                EncoderWeights::Widened => (self.text_encoder_weights, 0),
                EncoderWeights::AsStored => (
                    self.text_encoder_stored_weights
                        .unwrap_or(self.text_encoder_weights),
                    self.text_encoder_widening,
                ),
            };
            self.runtime + beside + encoder + transient(self.text_encoder + widening)
        } else {
            0
        };
        let kept = match residency {
            Residency::Resident => encoder_here,
            _ => 0,
        };
        let largest_stage = self.transformer_step.max(self.vae_decode);
        let generating =
            self.runtime + self.denoiser_weights + kept + transient(self.latents + largest_stage);
        encoding.max(generating)
    }

    /// What the text encoder needs of the host's memory when it runs on the CPU beside a GPU
    /// engine (loaded only while it encodes).
    pub fn text_encoder_on_cpu(&self) -> u64 {
        RUNTIME_CPU + self.text_encoder_weights + (SAFETY * self.text_encoder as f64) as u64
    }
}

/// The dtype the VAE runs in (as `Pipeline::load` chooses: f32 on the CPU, whose
/// convolutions are f32-only; the compute dtype elsewhere).
pub fn vae_dtype(class: ComputeClass, dtype: DType) -> DType {
    match class {
        ComputeClass::Cpu => DType::F32,
        ComputeClass::Cuda => dtype,
    }
}

/// The estimate for `job` on `model`, computed by `class` in `dtype`.
pub fn estimate(
    model: &ModelShape,
    job: &JobShape,
    class: ComputeClass,
    dtype: DType,
) -> MemoryPlan {
    let s = dtype.size_in_bytes() as f64;
    let vae_dtype = vae_dtype(class, dtype);
    let sv = vae_dtype.size_in_bytes() as f64;
    let denoiser_weights =
        (model.transformer_weights as f64 * s + model.vae_decoder_weights as f64 * sv) as u64;
    let text_encoder_weights = (model.text_encoder_weights as f64 * s) as u64;
    let text_encoder_stored_weights =
        Some(model.text_encoder_stored_bytes).filter(|&b| b < text_encoder_weights);

    let vae = &model.vae;
    let (ts, ss) = (vae.temporal_scale.max(1), vae.spatial_scale.max(1));
    let latent_frames = |video: usize| video.saturating_sub(1) / ts + 1;
    let (lh, lw) = (job.height / ss, job.width / ss);
    let tr = &model.transformer;
    let latents = 12.0 * (tr.in_channels * latent_frames(job.frames) * lh * lw) as f64 * 4.0;

    // The text encoder over at most 512 tokens: hidden states, the gated FFN, and the
    // scores with their position bias.
    let te = &model.text_encoder;
    let l = TEXT_ROWS as f64;
    let text_encoder = l * te.width as f64 * 8.0 * s
        + l * te.ffn as f64 * 3.0 * s
        + te.heads as f64 * l * l * 4.0 * 4.0;

    // One transformer step at batch 2 (guided) over one window's tokens.
    let [pt, ph, pw] = tr.patch.map(|p| p.max(1));
    let tokens = (latent_frames(job.window_frames) / pt * (lh / ph) * (lw / pw)) as f64;
    let batch = if job.guided { 2.0 } else { 1.0 };
    let fused = class == ComputeClass::Cpu && dtype == DType::F32;
    let per_score = 8.0 + if dtype == DType::F32 { 0.0 } else { s };
    let (self_scores, cross_scores) = if fused {
        (FUSED_ATTENTION_BYTES, FUSED_ATTENTION_BYTES)
    } else {
        // The blocks `models::attention` computes in: their queries × all keys × heads.
        let rows = |samples: f64, keys: usize| -> f64 {
            let block = query_block(samples as usize, tr.heads, keys) as f64;
            samples * tr.heads as f64 * block.min(tokens) * keys as f64 * per_score
        };
        (
            rows(batch, tokens as usize),
            rows(batch * job.prompts as f64, TEXT_ROWS),
        )
    };
    let width = tr.width as f64;
    let hidden = batch * tokens * width * (10.0 * s + 2.0 * 4.0);
    let ffn = batch * tokens * tr.ffn as f64 * 2.0 * s;
    let text = batch * job.prompts as f64 * TEXT_ROWS as f64 * width * 4.0 * s;
    let blended = if job.prompts > 1 {
        2.0 * job.prompts as f64 * batch * tokens * width * s
    } else {
        0.0
    };
    let transformer_step = self_scores.max(cross_scores) + hidden + ffn + text + blended;

    // The VAE decode: one latent frame's full-resolution buffers, then every decoded frame
    // (in the VAE's dtype, then f32 copies on the way to the clip).
    let mult = |i: usize| vae.dim_mult.get(i).copied().unwrap_or(1);
    let c_full = (vae.base * mult(0)) as f64;
    let c_up = (vae.base * mult(1)) as f64;
    let pixels = (job.height * job.width) as f64;
    let unit = ts as f64 * pixels * c_full * sv;
    let chunk = match class {
        ComputeClass::Cpu => VAE_UNITS_CPU * unit,
        // candle's CUDA conv2d materialises its im2col, 9 × the input of the widest
        // full-resolution convolution (the last upsampler's, c_up channels, one frame at a
        // time), in bands of at most VAE_COLUMN_BYTES; joining the bands copies the output
        // once more.
        ComputeClass::Cuda => {
            let columns = (9.0 * pixels * c_up * sv).min(VAE_COLUMN_BYTES);
            (VAE_UNITS_CUDA + 1.0) * unit + columns
        }
    };
    let frames_out = job.frames as f64 * 3.0 * pixels * (sv + 4.0 * 4.0);
    let vae_decode = chunk + frames_out;

    let runtime = match class {
        ComputeClass::Cpu => RUNTIME_CPU,
        ComputeClass::Cuda => RUNTIME_CUDA,
    };
    MemoryPlan {
        denoiser_weights,
        text_encoder_weights,
        text_encoder_stored_weights,
        text_encoder_widening: (te.width * te.ffn) as u64 * dtype.size_in_bytes() as u64,
        runtime,
        latents: latents as u64,
        text_encoder: text_encoder as u64,
        transformer_step: transformer_step as u64,
        vae_decode: vae_decode as u64,
        decoded_frames: frames_out as u64,
    }
}

/// The memory a job may use.
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    /// Free now plus what the engine holds for its loaded model; `None` if unknown.
    pub free: Option<u64>,
    /// [`BUDGET_ENV`], in bytes.
    pub limit: Option<u64>,
    /// "" for the CPU, " on GPU 0" for a GPU: ends "… are free".
    pub place: String,
}

impl Budget {
    /// Measures the budget for `device`, counting `held` bytes the engine already holds for a
    /// model it will reuse or drop before loading.
    pub fn measure(device: &Device, held: u64) -> Budget {
        let (free, place) = match device {
            Device::Cpu => (cpu_free(), String::new()),
            #[cfg(feature = "cuda")]
            Device::Cuda(cuda) => {
                let context = cuda.cuda_stream().context().clone();
                let free = context
                    .bind_to_thread()
                    .ok()
                    .and_then(|()| {
                        candle_core::cuda_backend::cudarc::driver::result::mem_get_info().ok()
                    })
                    .map(|(free, _total)| free as u64);
                (free, format!(" on GPU {}", context.ordinal()))
            }
            #[allow(unreachable_patterns)]
            _ => (None, String::new()),
        };
        Budget {
            free: free.map(|f| f + held),
            limit: budget_from_env(),
            place,
        }
    }

    /// The bytes a job may use, if known.
    pub fn bytes(&self) -> Option<u64> {
        match (self.free, self.limit) {
            (Some(f), Some(l)) => Some(f.min(l)),
            (f, l) => f.or(l),
        }
    }
}

/// [`BUDGET_ENV`] in bytes, if set to a positive number.
pub fn budget_from_env() -> Option<u64> {
    let text = std::env::var(BUDGET_ENV).ok()?;
    match text.trim().parse::<f64>() {
        Ok(mb) if mb.is_finite() && mb > 0.0 => Some((mb * 1e6) as u64),
        _ => {
            eprintln!("genclip-engine: ignored {BUDGET_ENV}={text:?} (not a positive number)");
            None
        }
    }
}

/// Memory the system could give the engine now: `MemAvailable`, or less under a cgroup v2
/// memory limit.
pub fn cpu_free() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let available = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?
        * 1024;
    let read = |file: &str| -> Option<u64> {
        std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let cgroup = match (read("memory.max"), read("memory.current")) {
        (Some(max), Some(current)) => Some(max.saturating_sub(current)),
        _ => None,
    };
    Some(cgroup.map_or(available, |c| c.min(available)))
}

/// "35.2 GB", "512 MB" (decimal units, as operating systems show free memory).
pub fn describe_bytes(bytes: u64) -> String {
    if bytes >= 1_000_000_000 {
        format!("{:.1} GB", bytes as f64 / 1e9)
    } else {
        format!("{} MB", (bytes as f64 / 1e6).round().max(1.0) as u64)
    }
}

/// The residency for a job: the first, from most memory to least, whose peak fits `budget`
/// (on a GPU the text encoder never stays loaded), or `Err(sentence)` when even the least does
/// not fit. An unknown budget gets the first.
pub fn choose(
    plan: &MemoryPlan,
    text: TextWork,
    class: ComputeClass,
    budget: &Budget,
) -> Result<Residency, String> {
    let mut candidates = match class {
        ComputeClass::Cpu => vec![Residency::Resident],
        ComputeClass::Cuda => vec![],
    };
    candidates.extend([
        Residency::TextEncoderWhileEncoding,
        Residency::TextEncoderAlone,
    ]);
    if plan.text_encoder_stored_weights.is_some() {
        candidates.push(Residency::TextEncoderAsStoredAlone);
    }
    if let Some(residency) = candidates
        .iter()
        .copied()
        .find(|&r| fits(plan.peak(r, text), budget, "", "").is_ok())
    {
        return Ok(residency);
    }
    let least = *candidates.last().expect("at least one candidate");
    fits(plan.peak(least, text), budget, "This clip", CLIP_ADVICE).map(|()| least)
}

/// What the sentence of a clip over budget advises.
pub const CLIP_ADVICE: &str =
    "lower Resolution or Duration, use Preview quality, or close other programs";

/// `Err(sentence)` when `needed` bytes are more than `budget` allows (`subject` starts the
/// sentence: "This clip", "The text encoder on the CPU"; `advice` ends it); `Ok` when they
/// fit or the budget is unknown.
pub fn fits(needed: u64, budget: &Budget, subject: &str, advice: &str) -> Result<(), String> {
    let Some(available) = budget.bytes() else {
        return Ok(());
    };
    if needed <= available {
        return Ok(());
    }
    let from_env = budget
        .limit
        .is_some_and(|l| budget.free.is_none_or(|f| l < f));
    let why = if from_env {
        format!("{BUDGET_ENV} allows {}", describe_bytes(available))
    } else {
        format!("{} are free{}", describe_bytes(available), budget.place)
    };
    Err(format!(
        "{subject} needs about {} but {why}: {advice}.",
        describe_bytes(needed)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// The `mid` bench config (docs/benchmarks.md), weights left out.
    fn mid() -> ModelShape {
        ModelShape {
            transformer: TransformerShape {
                width: 512,
                heads: 8,
                ffn: 1536,
                in_channels: 16,
                patch: [1, 2, 2],
            },
            text_encoder: TextEncoderShape {
                width: 512,
                heads: 8,
                ffn: 1024,
            },
            vae: VaeShape {
                base: 16,
                dim_mult: vec![1, 2, 4, 4],
                spatial_scale: 8,
                temporal_scale: 4,
            },
            transformer_weights: 0,
            text_encoder_weights: 0,
            vae_decoder_weights: 0,
            text_encoder_stored_bytes: 0,
        }
    }

    /// Wan2.1-T2V-1.3B: its configs and parameter counts (docs/wan-models.md).
    fn wan_1_3b() -> ModelShape {
        ModelShape {
            transformer: TransformerShape {
                width: 1536,
                heads: 12,
                ffn: 8960,
                in_channels: 16,
                patch: [1, 2, 2],
            },
            text_encoder: TextEncoderShape {
                width: 4096,
                heads: 64,
                ffn: 10240,
            },
            vae: VaeShape {
                base: 96,
                dim_mult: vec![1, 2, 4, 4],
                spatial_scale: 8,
                temporal_scale: 4,
            },
            transformer_weights: 1_418_996_800,
            text_encoder_weights: 6_731_059_200,
            vae_decoder_weights: 73_295_603,
            // The Diffusers repository stores umT5 in bf16.
            text_encoder_stored_bytes: 13_462_118_400,
        }
    }

    fn job(width: usize, height: usize, frames: usize) -> JobShape {
        JobShape {
            width,
            height,
            frames,
            window_frames: frames,
            guided: true,
            prompts: 1,
        }
    }

    /// Measured peaks (above what the loaded component held) of `genclip-engine bench`, 2
    /// threads, f32: the estimate must cover them, without being wildly above.
    fn covers(what: &str, estimate: u64, measured_mib: u64) {
        let measured = measured_mib * MIB;
        assert!(
            estimate >= measured,
            "{what}: estimate {} MiB below the measured {measured_mib} MiB",
            estimate / MIB
        );
        assert!(
            estimate <= 2 * measured,
            "{what}: estimate {} MiB more than twice the measured {measured_mib} MiB",
            estimate / MIB
        );
    }

    #[test]
    fn the_estimate_covers_the_measured_mid_peaks() {
        let cpu = |j: &JobShape| estimate(&mid(), j, ComputeClass::Cpu, DType::F32);
        // One CFG step over 17 frames at 256 x 384 (1,920 tokens): 139 MiB (the fused CPU
        // attention holds no score matrix).
        covers("transformer", cpu(&job(384, 256, 17)).transformer_step, 139);
        // The VAE decode, frames alone (the bench decodes; the clip's copies come after).
        let vae_only = |j: &JobShape| {
            let p = cpu(j);
            p.vae_decode - p.decoded_frames
        };
        covers("vae 128 x 192", vae_only(&job(192, 128, 9)), 79);
        covers("vae 240 x 416", vae_only(&job(416, 240, 9)), 293);
        // umT5 over 512 tokens: 31 MiB.
        covers("text encoder", cpu(&job(384, 256, 17)).text_encoder, 31);
    }

    const ENCODING_HERE: TextWork = TextWork {
        encoding: true,
        on_compute_device: true,
    };

    #[test]
    fn the_real_model_on_the_cpu_needs_what_its_weights_and_steps_say() {
        let plan = estimate(
            &wan_1_3b(),
            &job(832, 480, 81),
            ComputeClass::Cpu,
            DType::F32,
        );
        // 1.42 G transformer parameters and the VAE decoder's 73 M in f32; umT5's 6.73 G.
        assert!(
            (5_900_000_000..6_000_000_000).contains(&plan.denoiser_weights),
            "{plan:?}"
        );
        assert_eq!(plan.text_encoder_weights, 26_924_236_800);
        // 32,760 tokens at batch 2: the hidden states and the FFN's buffers are 9 GB.
        assert!(plan.transformer_step > 9_000_000_000, "{plan:?}");
        let resident = plan.peak(Residency::Resident, ENCODING_HERE);
        assert!(resident > 45_000_000_000, "{plan:?}");
        // Dropping the encoder after encoding takes its 26.9 GB off the denoising phase;
        // the encoding phase (encoder beside the transformer) is then the peak.
        let while_encoding = plan.peak(Residency::TextEncoderWhileEncoding, ENCODING_HERE);
        let encoding_phase = plan.runtime
            + plan.denoiser_weights
            + plan.text_encoder_weights
            + (SAFETY * plan.text_encoder as f64) as u64;
        let generating_phase = resident - plan.text_encoder_weights;
        assert_eq!(while_encoding, encoding_phase.max(generating_phase));
        assert!(while_encoding + 15_000_000_000 < resident, "{plan:?}");
        // Alone, the encoder phase loses the transformer's 6 GB.
        let alone = plan.peak(Residency::TextEncoderAlone, ENCODING_HERE);
        assert_eq!(
            alone,
            generating_phase.max(encoding_phase - plan.denoiser_weights)
        );
        // The encoder as published (bf16) halves its 26.9 GB: generating is then the peak,
        // under 24 GB.
        let as_stored = plan.peak(Residency::TextEncoderAsStoredAlone, ENCODING_HERE);
        assert_eq!(plan.text_encoder_stored_weights, Some(13_462_118_400));
        assert_eq!(as_stored, generating_phase);
        assert!(as_stored < 24_000_000_000, "{plan:?}");
        // With every prompt cached no encoder runs: only generating counts.
        let cached = TextWork {
            encoding: false,
            on_compute_device: true,
        };
        assert_eq!(
            plan.peak(Residency::TextEncoderWhileEncoding, cached),
            generating_phase
        );
        // Without guidance the step halves.
        let unguided = estimate(
            &wan_1_3b(),
            &JobShape {
                guided: false,
                ..job(832, 480, 81)
            },
            ComputeClass::Cpu,
            DType::F32,
        );
        assert!((unguided.transformer_step as f64) < 0.51 * plan.transformer_step as f64);
        // On a GPU in bf16 the weights halve and the VAE adds its im2col.
        let gpu = estimate(
            &wan_1_3b(),
            &job(832, 480, 81),
            ComputeClass::Cuda,
            DType::BF16,
        );
        assert_eq!(gpu.text_encoder_weights * 2, plan.text_encoder_weights);
        assert!(
            (2_900_000_000..3_000_000_000).contains(&gpu.denoiser_weights),
            "{gpu:?}"
        );
        // Off the CPU the attention's score blocks count: 2 × 12 heads × 320 queries × 32,760
        // keys × 10 B = 2.5 GB.
        assert!(gpu.transformer_step > 7_000_000_000, "{gpu:?}");
        assert!(gpu.transformer_step < 8_000_000_000, "{gpu:?}");
    }

    #[test]
    fn a_context_window_bounds_the_step_not_the_latents() {
        let whole = estimate(&mid(), &job(384, 256, 161), ComputeClass::Cpu, DType::F32);
        let windowed = estimate(
            &mid(),
            &JobShape {
                window_frames: 81,
                ..job(384, 256, 161)
            },
            ComputeClass::Cpu,
            DType::F32,
        );
        // 21 of 41 latent frames: about half the tokens, so about half the step.
        assert!(windowed.transformer_step * 10 < whole.transformer_step * 6);
        assert_eq!(windowed.latents, whole.latents);
    }

    #[test]
    fn the_tiny_fixture_is_read_from_its_folder() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wan_tiny_a/model");
        let shape = ModelShape::read(&folder).unwrap();
        assert_eq!(shape.transformer.width, 32);
        assert_eq!(shape.transformer.patch, [1, 2, 2]);
        assert!(shape.transformer_weights > 0 && shape.text_encoder_weights > 0);
        // The decoder half of the VAE only: fewer elements than the VAE's file holds.
        let vae_file_elements: u64 = std::fs::read_dir(folder.join("vae"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .map(|p| std::fs::metadata(p).unwrap().len() / 4)
            .sum();
        assert!(shape.vae_decoder_weights > 0);
        assert!(shape.vae_decoder_weights < vae_file_elements);
        let plan = estimate(&shape, &job(48, 32, 9), ComputeClass::Cpu, DType::F32);
        let peak = plan.peak(Residency::Resident, ENCODING_HERE);
        assert!(
            peak > plan.denoiser_weights + plan.text_encoder_weights && peak < 200_000_000,
            "{plan:?}"
        );
    }

    fn budget(free: u64, limit: Option<u64>, place: &str) -> Budget {
        Budget {
            free: Some(free),
            limit,
            place: place.into(),
        }
    }

    #[test]
    fn over_budget_is_one_sentence_that_says_what_to_do() {
        let clip = |needed: u64, budget: &Budget| fits(needed, budget, "This clip", CLIP_ADVICE);
        assert_eq!(
            clip(35_200_000_000, &budget(12_100_000_000, None, "")).unwrap_err(),
            "This clip needs about 35.2 GB but 12.1 GB are free: lower Resolution or Duration, \
             use Preview quality, or close other programs."
        );
        assert_eq!(
            clip(35_200_000_000, &budget(12_100_000_000, None, " on GPU 0")).unwrap_err(),
            "This clip needs about 35.2 GB but 12.1 GB are free on GPU 0: lower Resolution or \
             Duration, use Preview quality, or close other programs."
        );
        let limited =
            clip(35_200_000_000, &budget(80_000_000_000, Some(1_000_000), "")).unwrap_err();
        assert!(
            limited.starts_with(
                "This clip needs about 35.2 GB but GENCLIP_MEMORY_BUDGET_MB allows 1 MB:"
            ),
            "{limited}"
        );
        assert_eq!(
            clip(35_200_000_000, &budget(40_000_000_000, None, "")),
            Ok(())
        );
        let unknown = Budget {
            free: None,
            limit: None,
            place: String::new(),
        };
        assert_eq!(clip(35_200_000_000, &unknown), Ok(()));
        assert_eq!(describe_bytes(512_300_000), "512 MB");
        assert_eq!(describe_bytes(10), "1 MB");
    }

    /// A plan whose phases are round numbers (GB): weights 6 + 27, encoder pass 1, largest
    /// stage 10 (so generating holds 6 + 1.5 × 10 = 21 without the encoder).
    fn round_plan() -> MemoryPlan {
        MemoryPlan {
            denoiser_weights: 6_000_000_000,
            text_encoder_weights: 27_000_000_000,
            text_encoder_stored_weights: None,
            text_encoder_widening: 0,
            runtime: 0,
            latents: 0,
            text_encoder: 1_000_000_000,
            transformer_step: 10_000_000_000,
            vae_decode: 2_000_000_000,
            decoded_frames: 0,
        }
    }

    #[test]
    fn the_engine_keeps_what_fits_and_drops_the_encoder_when_it_must() {
        let plan = round_plan();
        let gb = |n: f64| budget((n * 1e9) as u64, None, "");
        let choose_cpu = |free: f64| choose(&plan, ENCODING_HERE, ComputeClass::Cpu, &gb(free));
        // Resident: 6 + 27 + 15 = 48; beside: 6 + 27 + 1.5 = 34.5; alone: max(28.5, 21).
        assert_eq!(choose_cpu(64.0), Ok(Residency::Resident));
        assert_eq!(choose_cpu(40.0), Ok(Residency::TextEncoderWhileEncoding));
        assert_eq!(choose_cpu(30.0), Ok(Residency::TextEncoderAlone));
        assert_eq!(
            choose_cpu(20.0).unwrap_err(),
            "This clip needs about 28.5 GB but 20.0 GB are free: lower Resolution or Duration, \
             use Preview quality, or close other programs."
        );
        // On a GPU the encoder never stays.
        assert_eq!(
            choose(&plan, ENCODING_HERE, ComputeClass::Cuda, &gb(200.0)),
            Ok(Residency::TextEncoderWhileEncoding)
        );
        // Every prompt cached: no encoding phase, 21 GB is enough without dropping anything
        // but the encoder.
        let cached = TextWork {
            encoding: false,
            on_compute_device: true,
        };
        assert_eq!(
            choose(&plan, cached, ComputeClass::Cpu, &gb(22.0)),
            Ok(Residency::TextEncoderWhileEncoding)
        );
        // The encoder on the CPU beside a GPU engine: the GPU holds only the generating phase,
        // the host the encoder while it encodes.
        let on_cpu = TextWork {
            encoding: true,
            on_compute_device: false,
        };
        assert_eq!(
            choose(&plan, on_cpu, ComputeClass::Cuda, &gb(22.0)),
            Ok(Residency::TextEncoderWhileEncoding)
        );
        assert_eq!(plan.text_encoder_on_cpu(), RUNTIME_CPU + 28_500_000_000);
        // Encoder files in bf16 for an f32 engine: held as stored (13.5 GB, widening 1 GB at
        // a time) it needs max(13.5 + 1.5 × 2, 21) = 21 GB.
        let as_stored = MemoryPlan {
            text_encoder_stored_weights: Some(13_500_000_000),
            text_encoder_widening: 1_000_000_000,
            ..round_plan()
        };
        let choose_as_stored =
            |free: f64| choose(&as_stored, ENCODING_HERE, ComputeClass::Cpu, &gb(free));
        assert_eq!(choose_as_stored(30.0), Ok(Residency::TextEncoderAlone));
        assert_eq!(
            choose_as_stored(22.0),
            Ok(Residency::TextEncoderAsStoredAlone)
        );
        assert!(choose_as_stored(20.0)
            .unwrap_err()
            .starts_with("This clip needs about 21.0 GB"));
        // Never offered where the files are as wide as the compute dtype.
        assert!(choose(&plan, ENCODING_HERE, ComputeClass::Cpu, &gb(22.0)).is_err());
        // Unknown budget: the first choice of each class.
        let unknown = Budget {
            free: None,
            limit: None,
            place: String::new(),
        };
        for class in [ComputeClass::Cpu, ComputeClass::Cuda] {
            assert_eq!(
                choose(&plan, ENCODING_HERE, class, &unknown),
                Ok(Residency::unguarded(class))
            );
        }
    }

    #[test]
    fn the_cpu_budget_is_measured_here() {
        let budget = Budget::measure(&Device::Cpu, 1000);
        if let Some(free) = budget.free {
            assert!(free > 1000, "{budget:?}");
        }
    }
}
