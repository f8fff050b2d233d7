//! Wan2.1 transformer checkpoints in one `.safetensors` file, in the original layout: as
//! Wan-AI's own repositories hold them (keys `blocks.0.self_attn.q.weight`, `head.head.weight`,
//! ...) or as ComfyUI's `models/diffusion_models` holds them (the same keys, optionally under
//! `model.diffusion_model.`).
//!
//! [`WanSingleFile`] reads such a file through a key map, so [`WanTransformer::new`] loads it
//! unchanged, asking for the Diffusers names it always asks for. The map is the inverse of the
//! renaming in Diffusers' `convert_wan_transformer_to_diffusers` (0.42.1); the text-to-video
//! weights need renaming only, no reshaping (`patch_embedding.weight` is the same Conv3d
//! kernel, `modulation` the same `[1, 6, dim]` table on both sides).
//!
//! The file holds no config. What the tensor shapes tell (width, channels, patch size, text and
//! timestep widths, FFN width, block count, which norms exist) is read from the header and
//! checked against the config the caller gives ([`WanSingleFile::check_config`]); the head count
//! (the width is heads × head width) and `eps` are not in the file and come from the caller
//! alone. Every tensor's shape is checked again as it is read.
//!
//! [`WanTransformer::new`]: super::transformer::WanTransformer::new

use super::config::TransformerConfig;
use crate::models::diffusers::Weights;
use candle_core::{DType, Device, Error, Result};
use candle_nn::VarBuilder;
use std::path::{Path, PathBuf};

/// The prefix ComfyUI may put before every key.
pub const COMFYUI_PREFIX: &str = "model.diffusion_model.";

/// What to do when a weight is missing from a single-file checkpoint.
const USE_T2V_FILE: &str = "choose a Wan2.1 text-to-video transformer checkpoint (Wan-AI's original file, or one from ComfyUI's models/diffusion_models) that matches the transformer config";

/// How the keys of a recognised file are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Wan-AI's original names, e.g. `blocks.0.self_attn.q.weight`.
    Original,
    /// The original names under `model.diffusion_model.` (ComfyUI).
    ComfyUi,
}

impl Layout {
    pub fn prefix(self) -> &'static str {
        match self {
            Layout::Original => "",
            Layout::ComfyUi => COMFYUI_PREFIX,
        }
    }
}

/// Recognises an original-layout Wan transformer by its keys: `head.modulation` (the key
/// Diffusers recognises Wan by) and `patch_embedding.weight`, both with or both without the
/// ComfyUI prefix. `None` for anything else (a Diffusers-layout transformer has neither).
pub fn recognise<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Layout> {
    let (mut plain, mut prefixed) = ([false; 2], [false; 2]);
    for name in names {
        let (seen, key) = match name.strip_prefix(COMFYUI_PREFIX) {
            Some(rest) => (&mut prefixed, rest),
            None => (&mut plain, name),
        };
        match key {
            "head.modulation" => seen[0] = true,
            "patch_embedding.weight" => seen[1] = true,
            _ => {}
        }
    }
    if prefixed == [true; 2] {
        Some(Layout::ComfyUi)
    } else if plain == [true; 2] {
        Some(Layout::Original)
    } else {
        None
    }
}

/// (Diffusers name, original name) of the weights outside the blocks.
const TOP: &[(&str, &str)] = &[
    ("patch_embedding.weight", "patch_embedding.weight"),
    ("patch_embedding.bias", "patch_embedding.bias"),
    (
        "condition_embedder.time_embedder.linear_1.weight",
        "time_embedding.0.weight",
    ),
    (
        "condition_embedder.time_embedder.linear_1.bias",
        "time_embedding.0.bias",
    ),
    (
        "condition_embedder.time_embedder.linear_2.weight",
        "time_embedding.2.weight",
    ),
    (
        "condition_embedder.time_embedder.linear_2.bias",
        "time_embedding.2.bias",
    ),
    (
        "condition_embedder.time_proj.weight",
        "time_projection.1.weight",
    ),
    (
        "condition_embedder.time_proj.bias",
        "time_projection.1.bias",
    ),
    (
        "condition_embedder.text_embedder.linear_1.weight",
        "text_embedding.0.weight",
    ),
    (
        "condition_embedder.text_embedder.linear_1.bias",
        "text_embedding.0.bias",
    ),
    (
        "condition_embedder.text_embedder.linear_2.weight",
        "text_embedding.2.weight",
    ),
    (
        "condition_embedder.text_embedder.linear_2.bias",
        "text_embedding.2.bias",
    ),
    ("proj_out.weight", "head.head.weight"),
    ("proj_out.bias", "head.head.bias"),
    // [1, 2, dim]: the head's shift and scale.
    ("scale_shift_table", "head.modulation"),
];

/// (Diffusers name, original name) inside `blocks.N.`.
const BLOCK: &[(&str, &str)] = &[
    ("attn1.to_q.weight", "self_attn.q.weight"),
    ("attn1.to_q.bias", "self_attn.q.bias"),
    ("attn1.to_k.weight", "self_attn.k.weight"),
    ("attn1.to_k.bias", "self_attn.k.bias"),
    ("attn1.to_v.weight", "self_attn.v.weight"),
    ("attn1.to_v.bias", "self_attn.v.bias"),
    ("attn1.to_out.0.weight", "self_attn.o.weight"),
    ("attn1.to_out.0.bias", "self_attn.o.bias"),
    ("attn1.norm_q.weight", "self_attn.norm_q.weight"),
    ("attn1.norm_k.weight", "self_attn.norm_k.weight"),
    ("attn2.to_q.weight", "cross_attn.q.weight"),
    ("attn2.to_q.bias", "cross_attn.q.bias"),
    ("attn2.to_k.weight", "cross_attn.k.weight"),
    ("attn2.to_k.bias", "cross_attn.k.bias"),
    ("attn2.to_v.weight", "cross_attn.v.weight"),
    ("attn2.to_v.bias", "cross_attn.v.bias"),
    ("attn2.to_out.0.weight", "cross_attn.o.weight"),
    ("attn2.to_out.0.bias", "cross_attn.o.bias"),
    ("attn2.norm_q.weight", "cross_attn.norm_q.weight"),
    ("attn2.norm_k.weight", "cross_attn.norm_k.weight"),
    // The affine norm before cross-attention: Diffusers' norm2 is the original norm3 (the
    // original norm2, before the FFN, is Diffusers' norm3; neither has weights).
    ("norm2.weight", "norm3.weight"),
    ("norm2.bias", "norm3.bias"),
    ("ffn.net.0.proj.weight", "ffn.0.weight"),
    ("ffn.net.0.proj.bias", "ffn.0.bias"),
    ("ffn.net.2.weight", "ffn.2.weight"),
    ("ffn.net.2.bias", "ffn.2.bias"),
    // [1, 6, dim]: the block's shift, scale and gate for attention and FFN.
    ("scale_shift_table", "modulation"),
];

/// `blocks.N.rest` -> (N, rest), N written as Rust writes it (no leading zeros).
fn split_block(name: &str) -> Option<(usize, &str)> {
    let rest = name.strip_prefix("blocks.")?;
    let (n, rest) = rest.split_once('.')?;
    let index: usize = n.parse().ok()?;
    (index.to_string() == n).then_some((index, rest))
}

/// Looks `name` up in column `from` of the tables and returns column `to`.
fn translate(name: &str, from: usize, to: usize) -> Option<String> {
    let pick = |pair: &(&'static str, &'static str), i: usize| if i == 0 { pair.0 } else { pair.1 };
    if let Some(pair) = TOP.iter().find(|p| pick(p, from) == name) {
        return Some(pick(pair, to).to_string());
    }
    let (index, rest) = split_block(name)?;
    let pair = BLOCK.iter().find(|p| pick(p, from) == rest)?;
    Some(format!("blocks.{index}.{}", pick(pair, to)))
}

/// The original name (without prefix) of a weight the Diffusers model reads.
pub fn original_name(diffusers_name: &str) -> Option<String> {
    translate(diffusers_name, 0, 1)
}

/// The Diffusers name of an original-layout weight (without prefix).
pub fn diffusers_name(original_name: &str) -> Option<String> {
    translate(original_name, 1, 0)
}

/// What the tensor shapes of a checkpoint say about its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileShapes {
    /// Model width, heads × head width (`patch_embedding.weight` rows).
    pub dim: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub patch_size: [usize; 3],
    pub text_dim: usize,
    pub freq_dim: usize,
    pub ffn_dim: usize,
    pub num_layers: usize,
    /// `blocks.N.norm3` (the affine norm before cross-attention) exists.
    pub cross_attn_norm: bool,
    /// `blocks.N.self_attn.norm_q` exists.
    pub qk_norm: bool,
}

/// An original-layout or ComfyUI Wan transformer file, recognised and read through the key map.
pub struct WanSingleFile {
    path: PathBuf,
    layout: Layout,
    shapes: FileShapes,
    weights: Weights,
}

impl WanSingleFile {
    /// Opens `path` (memory-mapped; only the header is read), recognises its layout, refuses
    /// keys the text-to-video transformer has no place for, and reads the shapes.
    pub fn open(path: impl AsRef<Path>, dtype: DType, device: &Device) -> Result<WanSingleFile> {
        let path = path.as_ref().to_path_buf();
        let weights = Weights::open_file(&path, dtype, device)?;
        let Some(layout) = recognise(weights.names()) else {
            return Err(not_wan(&path, &weights));
        };
        let prefix = layout.prefix();
        for stored in weights.names() {
            let known = stored
                .strip_prefix(prefix)
                .is_some_and(|key| diffusers_name(key).is_some());
            if !known {
                return Err(Error::msg(format!(
                    "{} holds weight {stored}, which {}",
                    path.display(),
                    unknown_key_advice(stored)
                )));
            }
        }
        let shapes = read_shapes(&path, &weights, prefix)?;
        let weights = weights.with_key_map(
            Box::new(move |name| original_name(name).map(|key| format!("{prefix}{key}"))),
            USE_T2V_FILE,
        );
        Ok(WanSingleFile {
            path,
            layout,
            shapes,
            weights,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn shapes(&self) -> &FileShapes {
        &self.shapes
    }

    /// Checks everything the file says about the config against `cfg`, naming each mismatch.
    pub fn check_config(&self, cfg: &TransformerConfig) -> Result<()> {
        let s = &self.shapes;
        let mut wrong = Vec::new();
        if s.dim != cfg.inner_dim() {
            wrong.push(format!(
                "width (patch_embedding.weight rows): the file has {}, the config {} (num_attention_heads {} × attention_head_dim {})",
                s.dim,
                cfg.inner_dim(),
                cfg.num_attention_heads,
                cfg.attention_head_dim
            ));
        }
        let mut differ = |what: &str, file: String, config: String| {
            if file != config {
                wrong.push(format!("{what}: the file has {file}, the config {config}"));
            }
        };
        differ(
            "in_channels (patch_embedding.weight)",
            s.in_channels.to_string(),
            cfg.in_channels.to_string(),
        );
        differ(
            "patch_size (patch_embedding.weight)",
            format!("{:?}", s.patch_size),
            format!("{:?}", cfg.patch_size),
        );
        differ(
            "out_channels (head.head.weight)",
            s.out_channels.to_string(),
            cfg.out_channels().to_string(),
        );
        differ(
            "text_dim (text_embedding.0.weight)",
            s.text_dim.to_string(),
            cfg.text_dim.to_string(),
        );
        differ(
            "freq_dim (time_embedding.0.weight)",
            s.freq_dim.to_string(),
            cfg.freq_dim.to_string(),
        );
        differ(
            "ffn_dim (blocks.0.ffn.0.weight)",
            s.ffn_dim.to_string(),
            cfg.ffn_dim.to_string(),
        );
        differ(
            "num_layers (blocks.N)",
            s.num_layers.to_string(),
            cfg.num_layers.to_string(),
        );
        differ(
            "cross_attn_norm (blocks.0.norm3)",
            s.cross_attn_norm.to_string(),
            cfg.cross_attn_norm.to_string(),
        );
        differ(
            "qk_norm (blocks.0.self_attn.norm_q)",
            if s.qk_norm {
                "rms_norm_across_heads"
            } else {
                "none"
            }
            .into(),
            cfg.qk_norm.as_deref().unwrap_or("none").into(),
        );
        differ(
            "image conditioning (image_dim, added_kv_proj_dim)",
            "none".into(),
            if cfg.image_dim.is_some() || cfg.added_kv_proj_dim.is_some() {
                "some"
            } else {
                "none"
            }
            .into(),
        );
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(Error::msg(format!(
                "{} does not match the transformer config: {}; use the config of the model the file holds",
                self.path.display(),
                wrong.join("; ")
            )))
        }
    }

    /// A `VarBuilder` that serves the Diffusers names `WanTransformer::new` reads from this
    /// file, after [`WanSingleFile::check_config`].
    pub fn var_builder(self, cfg: &TransformerConfig) -> Result<VarBuilder<'static>> {
        self.check_config(cfg)?;
        Ok(self.weights.var_builder())
    }
}

/// Why a file that is not recognised is refused.
fn not_wan(path: &Path, weights: &Weights) -> Error {
    let names: Vec<&str> = weights.names().collect();
    let diffusers = names.contains(&"scale_shift_table")
        && names.contains(&"condition_embedder.time_proj.weight");
    if diffusers {
        Error::msg(format!(
            "{} holds a Wan transformer in the Diffusers layout (condition_embedder.*, scale_shift_table), not an original or ComfyUI checkpoint: load it as the transformer of a Diffusers model folder",
            path.display()
        ))
    } else {
        Error::msg(format!(
            "{} is not a Wan transformer checkpoint: it has neither head.modulation nor {COMFYUI_PREFIX}head.modulation with a patch_embedding.weight beside it; {USE_T2V_FILE}",
            path.display()
        ))
    }
}

/// The end of the sentence refusing a key the text-to-video transformer has no place for.
fn unknown_key_advice(key: &str) -> &'static str {
    let has = |part: &str| key.contains(part);
    if has("img_emb") || has(".k_img.") || has(".v_img.") || has(".norm_k_img.") {
        "belongs to an image-to-video (or first-last-frame) Wan model; GenClip generates from text only for now: use a Wan2.1 text-to-video checkpoint"
    } else if has("vace_") {
        "belongs to a Wan VACE model, which GenClip does not support: use a Wan2.1 text-to-video checkpoint"
    } else if has("motion_encoder") || has("face_adapter") {
        "belongs to a Wan Animate model, which GenClip does not support: use a Wan2.1 text-to-video checkpoint"
    } else if has("scale_weight") || has("scale_input") || has("scaled_fp8") {
        "marks a ComfyUI fp8_scaled checkpoint, whose weights need per-tensor scales GenClip does not apply: use the fp16 or bf16 file of the model"
    } else {
        "the Wan2.1 text-to-video transformer has no place for: the file holds another model, or a Wan variant GenClip does not support"
    }
}

/// Reads the config-bearing shapes from the header of a recognised file.
fn read_shapes(path: &Path, weights: &Weights, prefix: &str) -> Result<FileShapes> {
    let shape = |key: &str, rank: usize, meaning: &str| -> Result<Vec<usize>> {
        let stored = format!("{prefix}{key}");
        match weights.stored_shape(&stored) {
            Some(s) if s.len() == rank => Ok(s),
            Some(s) => Err(Error::msg(format!(
                "weight {stored} in {} has shape {s:?}; a Wan transformer's is {meaning}: the file is not a Wan2.1 transformer",
                path.display()
            ))),
            None => Err(Error::msg(format!(
                "weight {stored} is missing from {}: this is not the model GenClip expects; {USE_T2V_FILE}",
                path.display()
            ))),
        }
    };
    let patch = shape(
        "patch_embedding.weight",
        5,
        "[width, channels, frames, height, width] (a Conv3d)",
    )?;
    let [dim, in_channels, pt, ph, pw] = patch[..] else {
        unreachable!("rank checked")
    };
    let head = shape("head.head.weight", 2, "[out channels × patch, width]")?;
    let per_patch = pt * ph * pw;
    if per_patch == 0 || head[0] % per_patch != 0 {
        return Err(Error::msg(format!(
            "weight {prefix}head.head.weight in {} has {} rows, not a multiple of the patch size {:?}: the file is damaged or not a Wan2.1 transformer",
            path.display(),
            head[0],
            [pt, ph, pw]
        )));
    }
    let text = shape("text_embedding.0.weight", 2, "[width, text width]")?;
    let time = shape("time_embedding.0.weight", 2, "[width, timestep width]")?;
    let ffn = shape("blocks.0.ffn.0.weight", 2, "[FFN width, width]")?;
    let num_layers = weights
        .names()
        .filter_map(|n| split_block(n.strip_prefix(prefix)?))
        .map(|(index, _)| index + 1)
        .max()
        .unwrap_or(0);
    let has = |key: &str| weights.stored_shape(&format!("{prefix}{key}")).is_some();
    Ok(FileShapes {
        dim,
        in_channels,
        out_channels: head[0] / per_patch,
        patch_size: [pt, ph, pw],
        text_dim: text[1],
        freq_dim: time[1],
        ffn_dim: ffn[0],
        num_layers,
        cross_attn_norm: has("blocks.0.norm3.weight"),
        qk_norm: has("blocks.0.self_attn.norm_q.weight"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_map_follows_diffusers_converter() {
        // Pairs as Diffusers' convert_wan_transformer_to_diffusers renames them.
        for (original, diffusers) in [
            ("blocks.0.self_attn.q.weight", "blocks.0.attn1.to_q.weight"),
            (
                "blocks.12.cross_attn.o.bias",
                "blocks.12.attn2.to_out.0.bias",
            ),
            (
                "blocks.3.cross_attn.norm_k.weight",
                "blocks.3.attn2.norm_k.weight",
            ),
            ("blocks.3.norm3.weight", "blocks.3.norm2.weight"),
            ("blocks.7.ffn.0.weight", "blocks.7.ffn.net.0.proj.weight"),
            ("blocks.7.ffn.2.bias", "blocks.7.ffn.net.2.bias"),
            ("blocks.29.modulation", "blocks.29.scale_shift_table"),
            ("head.modulation", "scale_shift_table"),
            ("head.head.weight", "proj_out.weight"),
            (
                "time_projection.1.weight",
                "condition_embedder.time_proj.weight",
            ),
            (
                "text_embedding.2.bias",
                "condition_embedder.text_embedder.linear_2.bias",
            ),
            ("patch_embedding.weight", "patch_embedding.weight"),
        ] {
            assert_eq!(diffusers_name(original).as_deref(), Some(diffusers));
            assert_eq!(original_name(diffusers).as_deref(), Some(original));
        }
        for unknown in [
            "blocks.0.norm2.weight",
            "blocks.01.modulation",
            "blocks.x.modulation",
            "img_emb.proj.0.weight",
            "blocks.0.cross_attn.k_img.weight",
        ] {
            assert_eq!(diffusers_name(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn recognition_needs_both_keys_under_one_prefix() {
        let original = ["head.modulation", "patch_embedding.weight"];
        assert_eq!(recognise(original), Some(Layout::Original));
        let comfy = original.map(|k| format!("{COMFYUI_PREFIX}{k}"));
        assert_eq!(
            recognise(comfy.iter().map(String::as_str)),
            Some(Layout::ComfyUi)
        );
        assert_eq!(recognise(["head.modulation"]), None);
        assert_eq!(
            recognise([
                "head.modulation",
                "model.diffusion_model.patch_embedding.weight"
            ]),
            None
        );
        assert_eq!(
            recognise(["scale_shift_table", "patch_embedding.weight"]),
            None
        );
    }
}
