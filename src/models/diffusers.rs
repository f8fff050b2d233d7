//! A Hugging Face Diffusers model folder as it sits on disk after a download: the pipeline's
//! `model_index.json`, one folder per component with its config, and safetensors weights
//! (one file, or shards listed in a `*.safetensors.index.json`), memory-mapped.
//!
//! Everything here fails with a sentence that names the file (and the key) and says what to
//! do; nothing panics on a broken folder. Nothing is ever downloaded.

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Error, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What a person should do when the folder is not a usable model.
const POINT_AT_MODEL: &str =
    "point Model folder at a Diffusers Wan2.1 directory (the one holding model_index.json)";

/// An opened model folder.
#[derive(Debug, Clone)]
pub struct ModelFolder {
    root: PathBuf,
    pipeline_class: String,
    /// Component name -> (library, class), e.g. "vae" -> ("diffusers", "AutoencoderKLWan").
    components: BTreeMap<String, (String, String)>,
}

impl ModelFolder {
    pub fn open(root: impl AsRef<Path>) -> Result<ModelFolder> {
        // A Hugging Face hub cache entry stands for its snapshot.
        let root = super::hub_cache::resolve(root.as_ref()).unwrap_or(root.as_ref().to_path_buf());
        if !root.is_dir() {
            return Err(Error::msg(format!(
                "{} is not a folder: {POINT_AT_MODEL}",
                root.display()
            )));
        }
        let index_path = root.join("model_index.json");
        if !index_path.is_file() {
            return Err(Error::msg(format!(
                "{} has no model_index.json: {POINT_AT_MODEL}",
                root.display()
            )));
        }
        let index = read_json(&index_path)?;
        let Value::Object(index) = index else {
            return Err(Error::msg(format!(
                "{} is not a JSON object",
                index_path.display()
            )));
        };
        let pipeline_class = index
            .get("_class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::msg(format!(
                    "{} names no pipeline (_class_name)",
                    index_path.display()
                ))
            })?
            .to_string();
        let mut components = BTreeMap::new();
        for (name, value) in &index {
            if name.starts_with('_') {
                continue;
            }
            // ["library", "Class"] for a component; null for an optional one that is absent.
            if let Some([Value::String(library), Value::String(class)]) =
                value.as_array().map(Vec::as_slice)
            {
                components.insert(name.clone(), (library.clone(), class.clone()));
            }
        }
        Ok(ModelFolder {
            root,
            pipeline_class,
            components,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pipeline_class(&self) -> &str {
        &self.pipeline_class
    }

    /// The class model_index.json gives a component, if it lists it.
    pub fn component_class(&self, component: &str) -> Option<&str> {
        self.components
            .get(component)
            .map(|(_, class)| class.as_str())
    }

    /// A component's folder; it must be listed in model_index.json and exist.
    pub fn component_dir(&self, component: &str) -> Result<PathBuf> {
        if !self.components.contains_key(component) {
            return Err(Error::msg(format!(
                "{} lists no {component} component: {POINT_AT_MODEL}",
                self.root.join("model_index.json").display()
            )));
        }
        let dir = self.root.join(component);
        if !dir.is_dir() {
            return Err(Error::msg(format!(
                "{} is missing: the download is incomplete; {POINT_AT_MODEL}",
                dir.display()
            )));
        }
        Ok(dir)
    }

    /// A component's `config.json` as a typed config (see [`parse_config`]).
    pub fn config<T: DeserializeOwned>(&self, component: &str, harmless: &[&str]) -> Result<T> {
        let path = self.component_dir(component)?.join("config.json");
        parse_config(&path, harmless)
    }

    /// The raw JSON of a file in a component folder (e.g. the scheduler's config).
    pub fn json(&self, component: &str, file: &str) -> Result<Value> {
        read_json(&self.component_dir(component)?.join(file))
    }

    /// A component's weights, memory-mapped, read as `dtype` on `device`.
    pub fn weights(&self, component: &str, dtype: DType, device: &Device) -> Result<Weights> {
        Weights::open(&self.component_dir(component)?, dtype, device)
    }
}

pub fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::msg(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::msg(format!(
            "{} is not valid JSON ({e}): the file is damaged; download it again",
            path.display()
        ))
    })
}

/// Parses a config file into `T`, which must deny unknown fields.
///
/// Keys starting with `_` (`_class_name`, `_diffusers_version`, ...) and the `harmless` ones
/// (fields that do not change what the model computes, such as training-only settings) are
/// dropped first; any other field `T` does not know is an error, because silently ignoring a
/// setting that changes the model would give wrong pictures without a word.
pub fn parse_config<T: DeserializeOwned>(path: &Path, harmless: &[&str]) -> Result<T> {
    let Value::Object(map) = read_json(path)? else {
        return Err(Error::msg(format!(
            "{} is not a JSON object",
            path.display()
        )));
    };
    let kept: Map<String, Value> = map
        .into_iter()
        .filter(|(k, _)| !k.starts_with('_') && !harmless.contains(&k.as_str()))
        .collect();
    serde_json::from_value(Value::Object(kept)).map_err(|e| {
        Error::msg(format!(
            "{}: {e}. This GenClip version does not support that setting; use a model it supports (Wan2.1 text-to-video) or a newer GenClip",
            path.display()
        ))
    })
}

/// Turns the name model code reads (a Diffusers name) into the name stored in the files;
/// `None` when the stored layout has no such weight.
pub type KeyMap = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A component's safetensors files, memory-mapped, with errors that name the file and key.
pub struct Weights {
    files: Vec<PathBuf>,
    /// One memory map per file, in the order of `files`.
    shards: Vec<MmapedSafetensors>,
    /// Tensor name (as stored) -> index in `files`.
    owner: BTreeMap<String, usize>,
    dtype: DType,
    device: Device,
    /// For files in another layout than Diffusers' (see [`Weights::with_key_map`]).
    key_map: Option<KeyMap>,
    /// Keep floats stored narrower than `dtype` as stored ([`Weights::as_stored`]).
    as_stored: bool,
    /// What a person should do when a weight is missing.
    advice: &'static str,
}

impl Weights {
    /// Finds the weights of a component folder: the shards an index file lists, or the one
    /// safetensors file there is.
    pub fn open(dir: &Path, dtype: DType, device: &Device) -> Result<Weights> {
        Self::map(weight_files(dir)?, dtype, device)
    }

    /// One safetensors file, wherever it is (a single-file checkpoint).
    pub fn open_file(file: &Path, dtype: DType, device: &Device) -> Result<Weights> {
        if !file.is_file() {
            return Err(Error::msg(format!(
                "{} is not a file: choose a .safetensors checkpoint",
                file.display()
            )));
        }
        Self::map(vec![file.to_path_buf()], dtype, device)
    }

    /// Reads the weights through `key_map` (model code keeps asking for Diffusers names);
    /// `advice` ends the message for a missing weight.
    pub fn with_key_map(self, key_map: KeyMap, advice: &'static str) -> Weights {
        Weights {
            key_map: Some(key_map),
            advice,
            ..self
        }
    }

    fn map(files: Vec<PathBuf>, dtype: DType, device: &Device) -> Result<Weights> {
        let mut shards = Vec::with_capacity(files.len());
        let mut owner = BTreeMap::new();
        for (i, file) in files.iter().enumerate() {
            // SAFETY: memory-mapping is unsafe only if the file changes while mapped; model
            // files are read-only inputs, and the engine runs in its own process.
            let shard = unsafe { MmapedSafetensors::new(file) }.map_err(|e| {
                Error::msg(format!(
                    "{e}: the weights are truncated or damaged; download the model again"
                ))
            })?;
            for (name, _) in shard.tensors() {
                owner.insert(name, i);
            }
            shards.push(shard);
        }
        Ok(Weights {
            files,
            shards,
            owner,
            dtype,
            device: device.clone(),
            key_map: None,
            as_stored: false,
            advice: POINT_AT_MODEL,
        })
    }

    /// Hands out floats stored narrower than the weights' dtype (bf16 or f16 files read for
    /// f32) as stored, half the memory: the model code widens them where it computes, which
    /// gives the same numbers (widening is exact).
    pub fn as_stored(self) -> Weights {
        Weights {
            as_stored: true,
            ..self
        }
    }

    /// Bytes the tensors take as stored (from the file headers: nothing is read).
    pub fn stored_bytes(&self) -> u64 {
        self.owner
            .iter()
            .filter_map(|(name, &i)| self.shards[i].get(name).ok())
            .map(|view| view.data().len() as u64)
            .sum()
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The names stored in the files (before any key map).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.owner.keys().map(String::as_str)
    }

    /// The shape of the stored tensor `stored_name`, from the file header (nothing is read).
    pub fn stored_shape(&self, stored_name: &str) -> Option<Vec<usize>> {
        let &i = self.owner.get(stored_name)?;
        let view = self.shards[i].get(stored_name).ok()?;
        Some(view.shape().to_vec())
    }

    /// The stored name of what model code calls `name`.
    fn stored_name<'a>(&self, name: &'a str) -> Option<Cow<'a, str>> {
        match &self.key_map {
            None => Some(Cow::Borrowed(name)),
            Some(map) => map(name).map(Cow::Owned),
        }
    }

    /// "weight X", or "weight X (Diffusers name Y)" where the file names it otherwise.
    fn describe(name: &str, stored: &str) -> String {
        if name == stored {
            format!("weight {name}")
        } else {
            format!("weight {stored} (Diffusers name {name})")
        }
    }

    fn file_of(&self, name: &str) -> String {
        match self.owner.get(name) {
            Some(&i) => self.files[i].display().to_string(),
            None => self
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Reads `name` as stored (dtype and device converted by the caller).
    fn load(&self, name: &str, device: &Device) -> Result<Tensor> {
        let Some(stored) = self.stored_name(name) else {
            return Err(Error::msg(format!(
                "the layout of {} has no name for weight {name}: this is not the model GenClip expects; {}",
                self.file_of(name),
                self.advice
            )));
        };
        let Some(&i) = self.owner.get(&*stored) else {
            return Err(Error::msg(format!(
                "{} is missing from {}: this is not the model GenClip expects; {}",
                Self::describe(name, &stored),
                self.file_of(&stored),
                self.advice
            )));
        };
        self.shards[i].load(&stored, device).map_err(|e| {
            Error::msg(format!(
                "cannot read {} from {}: {e}",
                Self::describe(name, &stored),
                self.file_of(&stored)
            ))
        })
    }

    /// The tensor `name`, checked against `shape`, converted to the weights' dtype.
    pub fn get(&self, name: &str, shape: impl Into<Shape>) -> Result<Tensor> {
        self.get_as(name, shape.into(), self.dtype)
    }

    fn get_as(&self, name: &str, shape: Shape, dtype: DType) -> Result<Tensor> {
        let tensor = self.load(name, &self.device)?;
        if tensor.shape() != &shape {
            let stored = self.stored_name(name).unwrap_or(Cow::Borrowed(name));
            return Err(Error::msg(format!(
                "{} in {} has shape {:?}, the config says {:?}: the config and the weights do not belong together",
                Self::describe(name, &stored),
                self.file_of(&stored),
                tensor.dims(),
                shape.dims()
            )));
        }
        let narrower = tensor.dtype().is_float()
            && dtype.is_float()
            && tensor.dtype().size_in_bytes() < dtype.size_in_bytes();
        if self.as_stored && narrower {
            return Ok(tensor);
        }
        tensor.to_dtype(dtype)
    }

    /// A candle `VarBuilder` over these weights (model code reads its keys through it).
    pub fn var_builder(self) -> VarBuilder<'static> {
        let (dtype, device) = (self.dtype, self.device.clone());
        VarBuilder::from_backend(Box::new(self), dtype, device)
    }
}

impl SimpleBackend for Weights {
    fn get(&self, s: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        self.get_as(name, s, dtype)?.to_device(dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        self.load(name, dev)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.stored_name(name)
            .is_some_and(|stored| self.owner.contains_key(&*stored))
    }
}

/// The safetensors files of a component folder.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::msg(format!("cannot list {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let named = |suffix: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = entries
            .iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(suffix))
            })
            .cloned()
            .collect();
        v.sort();
        v
    };
    if let Some(index) = named(".safetensors.index.json").first() {
        return shards_of(index, dir);
    }
    match named(".safetensors").as_slice() {
        [one] => Ok(vec![one.clone()]),
        [] if !named(".bin").is_empty() || !named(".pt").is_empty() => Err(Error::msg(format!(
            "{} holds PyTorch pickle weights (.bin/.pt); GenClip reads only safetensors (they cannot run code): download the safetensors version of the model",
            dir.display()
        ))),
        [] => Err(Error::msg(format!("{} holds no .safetensors weights: the download is incomplete; {POINT_AT_MODEL}", dir.display()))),
        many => Err(Error::msg(format!(
            "{} holds {} .safetensors files and no index naming the shards: remove the stray files or download the model again",
            dir.display(),
            many.len()
        ))),
    }
}

/// The shard files a `*.safetensors.index.json` names, each checked to exist.
fn shards_of(index: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let json = read_json(index)?;
    let map = json
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Error::msg(format!(
                "{} has no weight_map: the file is damaged; download it again",
                index.display()
            ))
        })?;
    let files: BTreeSet<&str> = map.values().filter_map(Value::as_str).collect();
    if files.is_empty() {
        return Err(Error::msg(format!(
            "{} lists no weight files",
            index.display()
        )));
    }
    files
        .into_iter()
        .map(|f| {
            let path = dir.join(f);
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::msg(format!(
                    "{} is missing (listed in {}): the download is incomplete; download the model again",
                    path.display(),
                    index.display()
                )))
            }
        })
        .collect()
}
