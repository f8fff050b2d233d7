//! The text side of the pipeline: the tokenizer, the umT5 encoder, and the embeddings of the
//! prompts it has encoded.
//!
//! The encoder is the largest component of a Wan2.1 folder (umT5-XXL: 6.7 G parameters, 13.5
//! GB in bf16, 27 GB in f32) and runs once per new prompt, so it is loaded only when a prompt
//! is not in the embedding cache, and the engine decides per job whether it stays loaded
//! afterwards (`memory_plan::Residency`): on a GPU it never does, since the host's own GPU work
//! and the transformer need that memory. It may run on another device than the transformer
//! (the CPU, by choice: `TextEncoderDevice`); the embeddings are handed over on the device
//! asked for.

use super::text_cache::{TextEmbeddingCache, TEXT_CACHE_ENTRIES};
use crate::models::diffusers::ModelFolder;
use crate::models::prompt::{clean_prompt, PromptTokenizer};
use crate::models::umt5::{self, Umt5Encoder};
use candle_core::{DType, Device, Result, Tensor};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Text tokens encoded at most, and the rows the transformer always sees.
pub const MAX_SEQUENCE_LENGTH: usize = 512;

/// How the encoder's weights are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncoderWeights {
    /// In the compute dtype (bf16 files widened to f32 on the CPU once, at load).
    Widened,
    /// As the files store them when that is narrower (umT5's bf16 files: half the memory in
    /// an f32 engine), each layer widening its weights where it computes: the same numbers,
    /// some seconds more per prompt.
    AsStored,
}

pub struct PromptEncoder {
    folder: ModelFolder,
    config: umt5::Config,
    tokenizer: PromptTokenizer,
    /// Where and in what precision the encoder runs.
    device: Device,
    dtype: DType,
    /// The weights while loaded, and in which form.
    encoder: Mutex<Option<(Umt5Encoder, EncoderWeights)>>,
    cache: TextEmbeddingCache,
    runs: AtomicU64,
}

impl PromptEncoder {
    /// Reads the tokenizer and the encoder's config; loads no weights.
    pub fn open(folder: &ModelFolder, device: &Device, dtype: DType) -> Result<PromptEncoder> {
        let tokenizer =
            PromptTokenizer::load(folder.component_dir("tokenizer")?.join("tokenizer.json"))?;
        Ok(PromptEncoder {
            folder: folder.clone(),
            config: umt5::Config::load(folder)?,
            tokenizer,
            device: device.clone(),
            dtype,
            encoder: Mutex::new(None),
            cache: TextEmbeddingCache::new(TEXT_CACHE_ENTRIES),
            runs: AtomicU64::new(0),
        })
    }

    /// Loads the encoder's weights unless they are loaded (in either form).
    pub fn load(&self) -> Result<()> {
        if self.is_loaded() {
            return Ok(());
        }
        self.load_as(EncoderWeights::Widened)
    }

    /// Loads the encoder's weights in the form `form`, unless they are loaded so (weights
    /// loaded in the other form are dropped first, so the two never share the memory).
    pub fn load_as(&self, form: EncoderWeights) -> Result<()> {
        let mut encoder = self.encoder.lock();
        if encoder.as_ref().is_some_and(|(_, f)| *f == form) {
            return Ok(());
        }
        encoder.take();
        let weights = self
            .folder
            .weights("text_encoder", self.dtype, &self.device)?;
        let weights = match form {
            EncoderWeights::Widened => weights,
            EncoderWeights::AsStored => weights.as_stored(),
        };
        *encoder = Some((Umt5Encoder::new(&self.config, weights.var_builder())?, form));
        Ok(())
    }

    /// Drops the encoder's weights (their memory goes back); the embeddings stay cached.
    pub fn release(&self) {
        self.encoder.lock().take();
    }

    pub fn is_loaded(&self) -> bool {
        self.encoder.lock().is_some()
    }

    /// The device the encoder runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether encoding `prompt` needs the encoder (it is not in the embedding cache).
    pub fn needs_encoding(&self, prompt: &str) -> bool {
        !self.cache.contains(&clean_prompt(prompt))
    }

    /// A prompt's embeddings as the transformer sees them, on `target`: [1, 512, text_dim],
    /// the encoder's output for the real tokens followed by zero rows. From the cache when
    /// the cleaned prompt is there (the last [`TEXT_CACHE_ENTRIES`] distinct ones), else
    /// encoded (loading the encoder if needed; it stays loaded until [`PromptEncoder::release`]).
    pub fn encode(&self, prompt: &str, target: &Device) -> Result<Tensor> {
        let cleaned = clean_prompt(prompt);
        if let Some(embeds) = self.cache.get(&cleaned) {
            return embeds.to_device(target);
        }
        self.load()?;
        let ids = self.tokenizer.encode(&cleaned, MAX_SEQUENCE_LENGTH)?;
        let len = ids.len();
        let ids = Tensor::from_vec(ids, (1, len), &self.device)?;
        let embeds = {
            let encoder = self.encoder.lock();
            let (encoder, _) = encoder.as_ref().expect("loaded just above");
            encoder.forward(&ids, None)?
        };
        self.runs.fetch_add(1, Ordering::Relaxed);
        let embeds = embeds.pad_with_zeros(1, 0, MAX_SEQUENCE_LENGTH - len)?;
        self.cache.insert(cleaned, embeds.to_device(&Device::Cpu)?);
        embeds.to_device(target)
    }

    /// Encoder forward passes so far (prompts found in the cache cost none).
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }
}
