//! `Pipeline`: text in, frames out, step for step what Diffusers' `WanPipeline` does: clean
//! and tokenize the prompts, encode them (zero-padded to 512 rows), draw the initial noise
//! with torch's CPU generator, denoise with classifier-free guidance and the scheduler the
//! model folder names, de-normalise, decode one latent frame at a time, and map [-1, 1] to
//! [0, 1].

use crate::client::protocol::{ClipRequest, Sampler};
use crate::models::diffusers::ModelFolder;
use crate::models::prompt::{clean_prompt, PromptTokenizer};
use crate::models::schedulers::Scheduler;
use crate::models::torch_rng::TorchGenerator;
use crate::models::umt5::{self, Umt5Encoder};
use crate::models::wan::config::{TransformerConfig, VaeConfig};
use crate::models::wan::transformer::WanTransformer;
use crate::models::wan::vae::WanVaeDecoder;
use candle_core::{DType, Device, Tensor};
use std::fmt;
use std::path::Path;

/// Text tokens the pipeline encodes at most, and the rows the transformer always sees.
pub const MAX_SEQUENCE_LENGTH: usize = 512;

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
    tokenizer: PromptTokenizer,
    text_encoder: Umt5Encoder,
    transformer: WanTransformer,
    vae: WanVaeDecoder,
    vae_config: VaeConfig,
    vae_dtype: DType,
    scheduler: Scheduler,
    device: Device,
    /// The text encoder's and the transformer's dtype.
    dtype: DType,
}

impl Pipeline {
    /// Loads every component of a Diffusers Wan2.1 folder (weights memory-mapped).
    pub fn load(
        folder: impl AsRef<Path>,
        device: &Device,
        dtype: DType,
    ) -> candle_core::Result<Pipeline> {
        let folder = ModelFolder::open(folder)?;
        if folder.pipeline_class() != "WanPipeline" {
            candle_core::bail!(
                "{} is a {} model; GenClip runs Wan2.1 text-to-video (WanPipeline) models",
                folder.root().display(),
                folder.pipeline_class()
            );
        }
        let tokenizer =
            PromptTokenizer::load(folder.component_dir("tokenizer")?.join("tokenizer.json"))?;
        let text_config = umt5::Config::load(&folder)?;
        let text_encoder = Umt5Encoder::new(
            &text_config,
            folder.weights("text_encoder", dtype, device)?.var_builder(),
        )?;
        let transformer_config = TransformerConfig::load(&folder)?;
        let transformer = WanTransformer::new(
            &transformer_config,
            folder.weights("transformer", dtype, device)?.var_builder(),
        )?;
        let vae_config = VaeConfig::load(&folder)?;
        // candle's CPU convolutions are f32-only, and the VAE is small: f32 there.
        let vae_dtype = if device.is_cpu() { DType::F32 } else { dtype };
        let vae = WanVaeDecoder::new(
            &vae_config,
            folder.weights("vae", vae_dtype, device)?.var_builder(),
        )?;
        let scheduler = Scheduler::from_model_dir(folder.root())?;
        Ok(Pipeline {
            tokenizer,
            text_encoder,
            transformer,
            vae,
            vae_config,
            vae_dtype,
            scheduler,
            device: device.clone(),
            dtype,
        })
    }

    /// The latent shape [1, z, frames, h, w] for a request, after checking its sizes.
    pub fn latent_shape(&self, req: &Request) -> candle_core::Result<[usize; 5]> {
        let t = self.vae_config.temporal_scale();
        let s = self.vae_config.spatial_scale();
        let [_, ph, pw] = self.transformer.config().patch_size;
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

    /// A prompt's embeddings as the transformer sees them: [1, 512, text_dim], the encoder's
    /// output for the real tokens followed by zero rows.
    pub fn encode_prompt(&self, prompt: &str) -> candle_core::Result<Tensor> {
        let ids = self
            .tokenizer
            .encode(&clean_prompt(prompt), MAX_SEQUENCE_LENGTH)?;
        let len = ids.len();
        let ids = Tensor::from_vec(ids, (1, len), &self.device)?;
        let embeds = self.text_encoder.forward(&ids, None)?;
        embeds.pad_with_zeros(1, 0, MAX_SEQUENCE_LENGTH - len)
    }

    /// The initial noise: torch's CPU `randn` for the seed, bit for bit.
    pub fn initial_noise(&self, shape: [usize; 5], seed: u64) -> candle_core::Result<Tensor> {
        TorchGenerator::manual_seed(seed).randn_tensor(&shape, &self.device)
    }

    /// Denoises `latents` with classifier-free guidance (when the scale is above 1, as
    /// Diffusers decides), cond and uncond batched into one transformer call.
    pub fn denoise(
        &self,
        mut latents: Tensor,
        cond: &Tensor,
        uncond: Option<&Tensor>,
        req: &Request,
        progress: &mut dyn FnMut(Stage),
        abort: &dyn Fn() -> bool,
    ) -> Result<Tensor, GenerateError> {
        let mut scheduler = self.scheduler.clone();
        scheduler.set_timesteps(req.steps)?;
        let timesteps = scheduler.timesteps().to_vec();
        let context = match uncond {
            Some(u) => Tensor::cat(&[cond, u], 0)?.to_dtype(self.dtype)?,
            None => cond.to_dtype(self.dtype)?,
        };
        let batch = context.dim(0)?;
        for (i, &t) in timesteps.iter().enumerate() {
            if abort() {
                return Err(GenerateError::Aborted);
            }
            progress(Stage::Denoising {
                step: i,
                of: timesteps.len(),
            });
            let input = latents.to_dtype(self.dtype)?;
            let input = if batch == 2 {
                Tensor::cat(&[&input, &input], 0)?
            } else {
                input
            };
            let timestep = Tensor::full(t as i64, batch, &self.device)?;
            let pred = self
                .transformer
                .forward(&input, &timestep, &context)?
                .to_dtype(DType::F32)?;
            let noise_pred = if batch == 2 {
                let (c, u) = (pred.narrow(0, 0, 1)?, pred.narrow(0, 1, 1)?);
                (&u + ((c - &u)? * req.guidance_scale)?)?
            } else {
                pred
            };
            latents = scheduler.step(&noise_pred, t, &latents)?;
        }
        progress(Stage::Denoising {
            step: timesteps.len(),
            of: timesteps.len(),
        });
        Ok(latents)
    }

    /// De-normalises and decodes final latents to frames in [0, 1].
    pub fn decode(
        &self,
        latents: &Tensor,
        progress: &mut dyn FnMut(Stage),
        abort: &dyn Fn() -> bool,
    ) -> Result<Video, GenerateError> {
        let z = self.vae.denormalize(&latents.to_dtype(self.vae_dtype)?)?;
        let video = self
            .vae
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
        let single = req.prompts.len() == 1 && req.windows.is_none();
        if !single || req.shift.is_some() || req.sampler != Sampler::ModelDefault {
            return Err(GenerateError::Failed(candle_core::Error::Msg(
                "this engine generates one prompt in one window with the model's scheduler only"
                    .into(),
            )));
        }
        let plain = Request {
            prompt: req.prompts[0].clone(),
            negative_prompt: req.negative_prompt.clone(),
            seed: req.seed,
            steps: req.steps,
            guidance_scale: req.guidance_scale,
            width: req.width,
            height: req.height,
            frames: req.frames,
        };
        self.generate(&plain, progress, abort)
    }
}
