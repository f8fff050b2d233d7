//! `Pipeline`: text in, frames out, step for step what Diffusers' `WanPipeline` does: clean
//! and tokenize the prompts, encode them (zero-padded to 512 rows), draw the initial noise
//! with torch's CPU generator, denoise with classifier-free guidance and the scheduler the
//! model folder names, de-normalise, decode one latent frame at a time, and map [-1, 1] to
//! [0, 1].
//!
//! [`Pipeline::generate_clip`] adds what the engine protocol asks for: several prompts blended
//! per latent frame (`conditioning.rs`), context windows for long clips denoised together
//! (`windows.rs`), another sampler or flow shift (`sampler.rs`), and prompt embeddings kept
//! between jobs (`text_cache.rs`). One prompt in one window with the model's scheduler is
//! exactly [`Pipeline::generate`].

use super::conditioning::PromptWeights;
use super::prompt_encoder::PromptEncoder;
pub use super::prompt_encoder::MAX_SEQUENCE_LENGTH;
use super::sampler;
use super::windows::LatentWindows;
use crate::client::protocol::{ClipRequest, Sampler};
use crate::models::diffusers::ModelFolder;
use crate::models::schedulers::Scheduler;
use crate::models::torch_rng::TorchGenerator;
use crate::models::wan::config::{TransformerConfig, VaeConfig};
use crate::models::wan::transformer::{TextConditioning, WanTransformer};
use crate::models::wan::vae::WanVaeDecoder;
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use std::fmt;
use std::path::Path;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub prompt: String,
    pub negative_prompt: String,
    pub seed: u64,
    pub steps: usize,
    pub guidance_scale: f64,
    pub width: usize,
    pub height: usize,
    pub frames: usize,
}

/// Where a generation is, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    EncodingText,
    Denoising { step: usize, of: usize },
    Decoding { frame: usize, of: usize },
}

/// Frames in [0, 1], RGB interleaved, row-major from the top-left, frame after frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Video {
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    pub rgb: Vec<f32>,
}

#[derive(Debug)]
pub enum GenerateError {
    /// The caller's abort flag stopped the job (between steps).
    Aborted,
    /// Bad input or a failure, with the sentence to show.
    Failed(candle_core::Error),
}

impl fmt::Display for GenerateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenerateError::Aborted => f.write_str("generation aborted"),
            GenerateError::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for GenerateError {}

impl From<candle_core::Error> for GenerateError {
    fn from(e: candle_core::Error) -> Self {
        GenerateError::Failed(e)
    }
}

pub struct Pipeline {
    folder: ModelFolder,
    /// Tokenizer, umT5 encoder (loaded on demand) and the embeddings kept between jobs.
    text: PromptEncoder,
    transformer_config: TransformerConfig,
    vae_config: VaeConfig,
    vae_dtype: DType,
    /// The transformer and the VAE decoder, while loaded.
    denoiser: Option<Denoiser>,
    /// The model's scheduler, and the config it was built from (other samplers derive theirs).
    scheduler: Scheduler,
    scheduler_config: Value,
    device: Device,
    /// The text encoder's and the transformer's dtype.
    dtype: DType,
}

/// The weights the denoising loop and the decode need, loaded and dropped together.
struct Denoiser {
    transformer: WanTransformer,
    vae: WanVaeDecoder,
}

impl Pipeline {
    /// Loads every component of a Diffusers Wan2.1 folder (weights memory-mapped), the text
    /// encoder beside the rest on `device`.
    pub fn load(
        folder: impl AsRef<Path>,
        device: &Device,
        dtype: DType,
    ) -> candle_core::Result<Pipeline> {
        let mut pipeline = Pipeline::open(folder, device, dtype, device)?;
        pipeline.text.load()?;
        pipeline.load_denoiser()?;
        Ok(pipeline)
    }

    /// Reads a Diffusers Wan2.1 folder's configs, tokenizer and scheduler, and loads no weights:
    /// [`Pipeline::load_denoiser`] and the text encoder (on `text_device`, on demand) do.
    pub fn open(
        folder: impl AsRef<Path>,
        device: &Device,
        dtype: DType,
        text_device: &Device,
    ) -> candle_core::Result<Pipeline> {
        let folder = ModelFolder::open(folder)?;
        if folder.pipeline_class() != "WanPipeline" {
            candle_core::bail!(
                "{} is a {} model; GenClip runs Wan2.1 text-to-video (WanPipeline) models",
                folder.root().display(),
                folder.pipeline_class()
            );
        }
        let text = PromptEncoder::open(&folder, text_device, dtype)?;
        let transformer_config = TransformerConfig::load(&folder)?;
        let vae_config = VaeConfig::load(&folder)?;
        // candle's CPU convolutions are f32-only, and the VAE is small: f32 there.
        let vae_dtype = if device.is_cpu() { DType::F32 } else { dtype };
        let scheduler_path = folder
            .component_dir("scheduler")?
            .join("scheduler_config.json");
        let scheduler_config = Scheduler::read_config_file(&scheduler_path)?;
        let scheduler = Scheduler::from_config(&scheduler_config)
            .map_err(|e| candle_core::Error::msg(format!("{}: {e}", scheduler_path.display())))?;
        Ok(Pipeline {
            folder,
            text,
            transformer_config,
            vae_config,
            vae_dtype,
            denoiser: None,
            scheduler,
            scheduler_config,
            device: device.clone(),
            dtype,
        })
    }

    /// Loads the transformer and the VAE decoder unless they are loaded.
    pub fn load_denoiser(&mut self) -> candle_core::Result<()> {
        if self.denoiser.is_none() {
            let weights = |component: &str, dtype: DType| {
                self.folder
                    .weights(component, dtype, &self.device)
                    .map(|w| w.var_builder())
            };
            let transformer = WanTransformer::new(
                &self.transformer_config,
                weights("transformer", self.dtype)?,
            )?;
            let vae = WanVaeDecoder::new(&self.vae_config, weights("vae", self.vae_dtype)?)?;
            self.denoiser = Some(Denoiser { transformer, vae });
        }
        Ok(())
    }

    /// Drops the transformer and the VAE decoder (their memory goes back).
    pub fn release_denoiser(&mut self) {
        self.denoiser = None;
    }

    pub fn denoiser_loaded(&self) -> bool {
        self.denoiser.is_some()
    }

    fn denoiser(&self) -> candle_core::Result<&Denoiser> {
        self.denoiser.as_ref().ok_or_else(|| {
            candle_core::Error::msg("the transformer is not loaded (Pipeline::load_denoiser)")
        })
    }

    /// The text side: tokenizer, encoder, cached embeddings.
    pub fn text(&self) -> &PromptEncoder {
        &self.text
    }

    /// The latent shape [1, z, frames, h, w] for a request, after checking its sizes.
    pub fn latent_shape(&self, req: &Request) -> candle_core::Result<[usize; 5]> {
        let t = self.vae_config.temporal_scale();
        let s = self.vae_config.spatial_scale();
        let [_, ph, pw] = self.transformer_config.patch_size;
        if req.frames == 0 || (req.frames - 1) % t != 0 {
            let below = (req.frames.saturating_sub(1) / t) * t + 1;
            candle_core::bail!(
                "Wan generates {t}k+1 frames; {} is not such a count: use {below} or {}",
                req.frames,
                below + t
            );
        }
        let (sh, sw) = (s * ph, s * pw);
        if req.width == 0 || req.height == 0 || req.width % sw != 0 || req.height % sh != 0 {
            candle_core::bail!(
                "width and height must be positive multiples of {sw} and {sh} for this model, not {} x {}",
                req.width,
                req.height
            );
        }
        if req.steps == 0 {
            candle_core::bail!("steps must be at least 1");
        }
        if !req.guidance_scale.is_finite() {
            candle_core::bail!("the guidance scale {} is not a number", req.guidance_scale);
        }
        Ok([
            1,
            self.vae_config.z_dim,
            (req.frames - 1) / t + 1,
            req.height / s,
            req.width / s,
        ])
    }

    /// A prompt's embeddings as the transformer sees them, on the pipeline's device (see
    /// [`PromptEncoder::encode`]).
    pub fn encode_prompt(&self, prompt: &str) -> candle_core::Result<Tensor> {
        self.text.encode(prompt, &self.device)
    }

    /// Text-encoder forward passes this pipeline has run (prompts found in the embedding
    /// cache cost none).
    pub fn text_encoder_runs(&self) -> u64 {
        self.text.runs()
    }

    /// The initial noise: torch's CPU `randn` for the seed, bit for bit.
    pub fn initial_noise(&self, shape: [usize; 5], seed: u64) -> candle_core::Result<Tensor> {
        TorchGenerator::manual_seed(seed).randn_tensor(&shape, &self.device)
    }

    /// Denoises `latents` with classifier-free guidance (when the scale is above 1, as
    /// Diffusers decides), cond and uncond batched into one transformer call.
    pub fn denoise(
        &self,
        latents: Tensor,
        cond: &Tensor,
        uncond: Option<&Tensor>,
        req: &Request,
        progress: &mut dyn FnMut(Stage),
        abort: &dyn Fn() -> bool,
    ) -> Result<Tensor, GenerateError> {
        let text = self.batched_text(cond, uncond)?;
        let windows = LatentWindows::whole(latents.dim(2)?);
        let guide = Guide {
            scale: req.guidance_scale,
            steps: req.steps,
            scheduler: self.scheduler.clone(),
        };
        self.denoise_windows(latents, &[text], &windows, guide, progress, abort)
    }

    /// The denoising loop over context windows: at every step each window predicts the noise
    /// of its latent slice (with its own text), the predictions are blended per latent frame,
    /// and the scheduler steps the whole latent once. One window is the plain loop.
    fn denoise_windows(
        &self,
        mut latents: Tensor,
        texts: &[TextConditioning],
        windows: &LatentWindows,
        guide: Guide,
        progress: &mut dyn FnMut(Stage),
        abort: &dyn Fn() -> bool,
    ) -> Result<Tensor, GenerateError> {
        let Guide {
            scale,
            steps,
            mut scheduler,
        } = guide;
        scheduler.set_timesteps(steps)?;
        let timesteps = scheduler.timesteps().to_vec();
        let latent_frames = latents.dim(2)?;
        let blends = (0..windows.windows().len())
            .map(|k| windows.blend_tensor(k, &self.device))
            .collect::<candle_core::Result<Vec<_>>>()?;
        for (i, &t) in timesteps.iter().enumerate() {
            if abort() {
                return Err(GenerateError::Aborted);
            }
            progress(Stage::Denoising {
                step: i,
                of: timesteps.len(),
            });
            let noise_pred = if windows.is_single() {
                self.predict_noise(&latents, t, &texts[0], scale)?
            } else {
                let mut blended: Option<Tensor> = None;
                for (k, window) in windows.windows().iter().enumerate() {
                    if abort() {
                        return Err(GenerateError::Aborted);
                    }
                    let slice = latents.narrow(2, window.start, window.frames)?;
                    let pred = self
                        .predict_noise(&slice, t, &texts[k], scale)?
                        .broadcast_mul(&blends[k])?
                        .pad_with_zeros(2, window.start, latent_frames - window.end())?;
                    blended = Some(match blended {
                        None => pred,
                        Some(sum) => (sum + pred)?,
                    });
                }
                blended.expect("a plan has at least one window")
            };
            latents = scheduler.step(&noise_pred, t, &latents)?;
        }
        progress(Stage::Denoising {
            step: timesteps.len(),
            of: timesteps.len(),
        });
        Ok(latents)
    }

    /// The guided noise prediction (f32) for `latents` at timestep `t`. `text` has a batch
    /// of 2 (cond, uncond) when guiding, else 1.
    fn predict_noise(
        &self,
        latents: &Tensor,
        t: f64,
        text: &TextConditioning,
        scale: f64,
    ) -> candle_core::Result<Tensor> {
        let batch = text.batch()?;
        let input = latents.to_dtype(self.dtype)?;
        let input = if batch == 2 {
            Tensor::cat(&[&input, &input], 0)?
        } else {
            input
        };
        // Diffusers passes the scheduler's timestep as it is: UniPC's integers, FlowMatchEuler's
        // float32 values (both exact in f32).
        let timestep = Tensor::full(t as f32, batch, &self.device)?;
        let pred = self
            .denoiser()?
            .transformer
            .forward_conditioned(&input, &timestep, text)?
            .to_dtype(DType::F32)?;
        if batch == 2 {
            let (c, u) = (pred.narrow(0, 0, 1)?, pred.narrow(0, 1, 1)?);
            &u + ((c - &u)? * scale)?
        } else {
            Ok(pred)
        }
    }

    /// Cond (and uncond) as one batch in the model's dtype.
    fn batched_text(
        &self,
        cond: &Tensor,
        uncond: Option<&Tensor>,
    ) -> candle_core::Result<TextConditioning> {
        let context = match uncond {
            Some(u) => Tensor::cat(&[cond, u], 0)?.to_dtype(self.dtype)?,
            None => cond.to_dtype(self.dtype)?,
        };
        Ok(TextConditioning::Shared(context))
    }

    /// Per-frame prompts (and the uncond) as one batch in the model's dtype, for each window.
    /// The uncond sample is a per-frame text too, every frame the negative prompt alone (in
    /// every prompt slot, weighted 1, 0, …): the batch then has the shapes of the shared
    /// path, and a one-hot clip computes what that prompt alone computes, bit for bit.
    fn per_frame_texts(
        &self,
        prompts: &[Tensor],
        uncond: Option<&Tensor>,
        weights: &PromptWeights,
        windows: &LatentWindows,
    ) -> candle_core::Result<Vec<TextConditioning>> {
        let count = prompts.len();
        let mut contexts = Tensor::stack(prompts, 1)?;
        if let Some(u) = uncond {
            let negative = Tensor::stack(&vec![u.clone(); count], 1)?;
            contexts = Tensor::cat(&[&contexts, &negative], 0)?;
        }
        let contexts = contexts.to_dtype(self.dtype)?;
        windows
            .windows()
            .iter()
            .map(|w| {
                let mut frame_weights = weights.tensor(w.start, w.frames, &self.device)?;
                if uncond.is_some() {
                    let mut first_only = vec![0f32; count * w.frames];
                    first_only[..w.frames].fill(1.0);
                    let first_only =
                        Tensor::from_vec(first_only, (1, count, w.frames), &self.device)?;
                    frame_weights = Tensor::cat(&[&frame_weights, &first_only], 0)?;
                }
                Ok(TextConditioning::PerFrame {
                    contexts: contexts.clone(),
                    weights: frame_weights,
                })
            })
            .collect()
    }

    /// De-normalises and decodes final latents to frames in [0, 1].
    pub fn decode(
        &self,
        latents: &Tensor,
        progress: &mut dyn FnMut(Stage),
        abort: &dyn Fn() -> bool,
    ) -> Result<Video, GenerateError> {
        let vae = &self.denoiser()?.vae;
        let z = vae.denormalize(&latents.to_dtype(self.vae_dtype)?)?;
        let video = vae
            .decode(&z, |frame, of| {
                progress(Stage::Decoding { frame, of });
                if abort() {
                    candle_core::bail!("aborted");
                }
                Ok(())
            })
            .map_err(|e| {
                if abort() {
                    GenerateError::Aborted
                } else {
                    GenerateError::Failed(e)
                }
            })?;
        // [1, 3, F, H, W] in [-1, 1] -> [F, H, W, 3] in [0, 1]
        let video = ((video.to_dtype(DType::F32)? / 2.0)? + 0.5)?.clamp(0f32, 1f32)?;
        let (_, _, frames, height, width) = video.dims5()?;
        let rgb = video
            .squeeze(0)?
            .permute((1, 2, 3, 0))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(Video {
            frames,
            height,
            width,
            rgb,
        })
    }

    /// The whole generation. `progress` hears each stage; `abort` is polled between steps
    /// (and decoded frames) and ends the job cleanly.
    pub fn generate(
        &self,
        req: &Request,
        progress: &mut dyn FnMut(Stage),
        abort: &dyn Fn() -> bool,
    ) -> Result<Video, GenerateError> {
        let shape = self.latent_shape(req)?;
        progress(Stage::EncodingText);
        let cond = self.encode_prompt(&req.prompt)?;
        // Diffusers guides only above 1; the negative prompt defaults to "".
        let uncond = if req.guidance_scale > 1.0 {
            Some(self.encode_prompt(&req.negative_prompt)?)
        } else {
            None
        };
        if abort() {
            return Err(GenerateError::Aborted);
        }
        let noise = self.initial_noise(shape, req.seed)?;
        let latents = self.denoise(noise, &cond, uncond.as_ref(), req, progress, abort)?;
        self.decode(&latents, progress, abort)
    }
}

impl Pipeline {
    /// One clip of the engine protocol ([`ClipRequest`]): the entry point of the engine
    /// process. A single prompt in one window, with the model's own scheduler, is exactly
    /// [`Pipeline::generate`].
    pub fn generate_clip(
        &self,
        req: &ClipRequest,
        progress: &mut dyn FnMut(Stage),
        abort: &dyn Fn() -> bool,
    ) -> Result<Video, GenerateError> {
        let plan = self.plan_clip(req)?;
        let noise = self.initial_noise(plan.shape, req.seed)?;
        let latents = self.denoise_planned(noise, req, plan, progress, abort)?;
        self.decode(&latents, progress, abort)
    }

    /// The denoised latents of a clip from the given initial noise (the shape
    /// [`Pipeline::clip_latent_shape`] gives): [`Pipeline::generate_clip`] without drawing the
    /// noise or decoding.
    pub fn denoise_clip(
        &self,
        noise: Tensor,
        req: &ClipRequest,
        progress: &mut dyn FnMut(Stage),
        abort: &dyn Fn() -> bool,
    ) -> Result<Tensor, GenerateError> {
        let plan = self.plan_clip(req)?;
        if noise.dims() != plan.shape {
            return Err(GenerateError::Failed(candle_core::Error::msg(format!(
                "the initial noise has the shape {:?}, not the clip's latent shape {:?}",
                noise.dims(),
                plan.shape
            ))));
        }
        self.denoise_planned(noise, req, plan, progress, abort)
    }

    /// The latent shape [1, z, latent frames, h, w] of a clip, after checking its sizes.
    pub fn clip_latent_shape(&self, req: &ClipRequest) -> candle_core::Result<[usize; 5]> {
        self.latent_shape(&Request::from(req))
    }

    /// The scheduler for a sampler choice and an optional flow shift: the model's own when
    /// neither changes it, else one built from the model's config (see `sampler.rs`).
    pub fn scheduler_for(
        &self,
        sampler: Sampler,
        shift: Option<f64>,
    ) -> candle_core::Result<Scheduler> {
        if sampler == Sampler::ModelDefault && shift.is_none() {
            return Ok(self.scheduler.clone());
        }
        sampler::scheduler(&self.scheduler_config, sampler, shift)
    }

    /// The texts a clip encodes: the prompts its frames use, then the negative prompt when it
    /// is guided. The engine encodes them before it loads the transformer, when memory asks
    /// for that (`memory_plan::Residency`).
    pub fn clip_texts(&self, req: &ClipRequest) -> candle_core::Result<Vec<String>> {
        Ok(texts_to_encode(&self.plan_clip(req)?.weights, req))
    }

    /// Checks everything in a request that can be checked before any work starts.
    fn plan_clip(&self, req: &ClipRequest) -> candle_core::Result<ClipPlan> {
        let shape = self.clip_latent_shape(req)?;
        let weights = PromptWeights::from_request(req, shape[2])?;
        let windows =
            LatentWindows::plan(req.frames, req.windows, self.vae_config.temporal_scale())?;
        let scheduler = self.scheduler_for(req.sampler, req.shift)?;
        Ok(ClipPlan {
            shape,
            weights,
            windows,
            scheduler,
        })
    }

    fn denoise_planned(
        &self,
        noise: Tensor,
        req: &ClipRequest,
        plan: ClipPlan,
        progress: &mut dyn FnMut(Stage),
        abort: &dyn Fn() -> bool,
    ) -> Result<Tensor, GenerateError> {
        progress(Stage::EncodingText);
        let mut embeddings = texts_to_encode(&plan.weights, req)
            .iter()
            .map(|p| self.encode_prompt(p))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let uncond = if guided(req) { embeddings.pop() } else { None };
        let prompts = embeddings;
        if abort() {
            return Err(GenerateError::Aborted);
        }
        let texts = if plan.weights.is_single_prompt() {
            // The reference path: one shared text, cond and uncond batched.
            let text = self.batched_text(&prompts[0], uncond.as_ref())?;
            vec![text; plan.windows.windows().len()]
        } else {
            self.per_frame_texts(&prompts, uncond.as_ref(), &plan.weights, &plan.windows)?
        };
        let guide = Guide {
            scale: req.guidance_scale,
            steps: req.steps,
            scheduler: plan.scheduler,
        };
        self.denoise_windows(noise, &texts, &plan.windows, guide, progress, abort)
    }
}

/// What a clip request needs, checked.
struct ClipPlan {
    shape: [usize; 5],
    weights: PromptWeights,
    windows: LatentWindows,
    scheduler: Scheduler,
}

/// How the denoising loop steps: guidance scale, step count, scheduler.
struct Guide {
    scale: f64,
    steps: usize,
    scheduler: Scheduler,
}

/// As in `generate`: the prompts, then the negative prompt if Diffusers would guide.
fn texts_to_encode(weights: &PromptWeights, req: &ClipRequest) -> Vec<String> {
    let mut texts = weights.prompts().to_vec();
    if guided(req) {
        texts.push(req.negative_prompt.clone());
    }
    texts
}

/// Diffusers guides only above 1.
fn guided(req: &ClipRequest) -> bool {
    req.guidance_scale > 1.0
}

/// A clip request's first prompt with its size, step and guidance fields: the plain request
/// [`Pipeline::generate`] takes for it (and the checks `latent_shape` makes).
impl From<&ClipRequest> for Request {
    fn from(req: &ClipRequest) -> Request {
        Request {
            prompt: req.prompts.first().cloned().unwrap_or_default(),
            negative_prompt: req.negative_prompt.clone(),
            seed: req.seed,
            steps: req.steps,
            guidance_scale: req.guidance_scale,
            width: req.width,
            height: req.height,
            frames: req.frames,
        }
    }
}
