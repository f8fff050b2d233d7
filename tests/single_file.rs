//! Original-layout (Wan-AI) and ComfyUI single-file Wan transformer checkpoints
//! (`src/models/wan/single_file.rs`), on `tests/fixtures/single_file/`: fixture a's transformer
//! renamed by `tools/make_single_file_fixtures.py`, which proved with Diffusers' own
//! single-file converter and `from_single_file` that the files convert back exactly.
//!
//! Tolerance as in tests/reference/mod.rs: max |ours - reference| <= 1e-4 · max |reference|.

use candle_core::{DType, Device, Tensor};
use genclip::models::diffusers::ModelFolder;
use genclip::models::wan::config::TransformerConfig;
use genclip::models::wan::single_file::{self, Layout, WanSingleFile, COMFYUI_PREFIX};
use genclip::models::wan::transformer::WanTransformer;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod reference;

use reference::{fixture, fixtures_dir, relative_error, TOLERANCE};

fn original_file() -> PathBuf {
    fixtures_dir().join("single_file/wan_tiny_a_original.safetensors")
}

fn comfyui_file() -> PathBuf {
    fixtures_dir().join("single_file/wan_tiny_a_comfyui.safetensors")
}

fn folder() -> ModelFolder {
    fixture("wan_tiny_a").folder
}

fn config() -> TransformerConfig {
    TransformerConfig::load(&folder()).unwrap()
}

fn expected() -> HashMap<String, Tensor> {
    fixture("wan_tiny_a").expected
}

fn run(model: &WanTransformer, expected: &HashMap<String, Tensor>) -> Tensor {
    model
        .forward(
            &expected["transformer_check.hidden_states"],
            &expected["transformer_check.timestep"],
            &expected["transformer_check.encoder_hidden_states"],
        )
        .unwrap()
}

fn open(path: &Path) -> candle_core::Result<WanSingleFile> {
    WanSingleFile::open(path, DType::F32, &Device::Cpu)
}

/// Loads the transformer from a single file; the error as text.
fn load(path: &Path, cfg: &TransformerConfig) -> Result<WanTransformer, String> {
    let file = open(path).map_err(|e| e.to_string())?;
    let vb = file.var_builder(cfg).map_err(|e| e.to_string())?;
    WanTransformer::new(cfg, vb).map_err(|e| e.to_string())
}

#[test]
fn original_and_comfyui_files_give_the_diffusers_output() {
    let cfg = config();
    let expected = expected();
    let vb = fixture("wan_tiny_a").var_builder("transformer");
    let from_folder = run(&WanTransformer::new(&cfg, vb).unwrap(), &expected);
    for (path, layout) in [
        (original_file(), Layout::Original),
        (comfyui_file(), Layout::ComfyUi),
    ] {
        let file = open(&path).unwrap();
        assert_eq!(file.layout(), layout);
        let s = file.shapes();
        assert_eq!(
            (s.dim, s.in_channels, s.out_channels, s.patch_size),
            (
                cfg.inner_dim(),
                cfg.in_channels,
                cfg.out_channels(),
                cfg.patch_size
            )
        );
        assert_eq!(
            (s.text_dim, s.freq_dim, s.ffn_dim, s.num_layers),
            (cfg.text_dim, cfg.freq_dim, cfg.ffn_dim, cfg.num_layers)
        );
        assert!(s.cross_attn_norm && s.qk_norm);
        let model = WanTransformer::new(&cfg, file.var_builder(&cfg).unwrap()).unwrap();
        let out = run(&model, &expected);
        let err = relative_error(&out, &expected["transformer_check.output"]);
        eprintln!("{layout:?} single file: relative error {err:e} against Diffusers");
        assert!(err <= TOLERANCE, "{layout:?}: relative error {err:e}");
        // The same weights through the same code: the same numbers as from the folder.
        assert_eq!(relative_error(&out, &from_folder), 0.0, "{layout:?}");
    }
}

/// Every Diffusers weight of fixture a sits in each file under its original name, equal; and
/// nothing else does. (Fails if fixture a was regenerated without the single files: run
/// tools/make_single_file_fixtures.py.)
#[test]
fn the_files_hold_exactly_the_diffusers_weights() {
    let diffusers = candle_core::safetensors::load(
        fixtures_dir().join("wan_tiny_a/model/transformer/diffusion_pytorch_model.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    for (path, prefix) in [(original_file(), ""), (comfyui_file(), COMFYUI_PREFIX)] {
        let stored = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(stored.len(), diffusers.len(), "{}", path.display());
        for (name, tensor) in &diffusers {
            let key = format!("{prefix}{}", single_file::original_name(name).unwrap());
            let theirs = stored.get(&key).unwrap_or_else(|| {
                panic!(
                    "{key} missing from {}: run tools/make_single_file_fixtures.py",
                    path.display()
                )
            });
            assert_eq!(
                relative_error(theirs, tensor),
                0.0,
                "{key} differs from {name}: run tools/make_single_file_fixtures.py"
            );
            let back = single_file::diffusers_name(key.strip_prefix(prefix).unwrap());
            assert_eq!(back.as_deref(), Some(name.as_str()));
        }
    }
}

/// Writes the original fixture's tensors, changed by `edit`, to a file of its own.
fn variant(name: &str, prefix: &str, edit: impl FnOnce(&mut HashMap<String, Tensor>)) -> PathBuf {
    let mut tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(original_file(), &Device::Cpu)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (format!("{prefix}{k}"), v))
            .collect();
    edit(&mut tensors);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("single_file");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.safetensors"));
    candle_core::safetensors::save(&tensors, &path).unwrap();
    path
}

fn assert_mentions(err: &str, parts: &[&str]) {
    for part in parts {
        assert!(err.contains(part), "{part:?} not in: {err}");
    }
    eprintln!("{err}");
}

#[test]
fn a_missing_weight_names_file_and_key() {
    let cfg = config();
    for (name, prefix) in [
        ("missing_original", ""),
        ("missing_comfyui", COMFYUI_PREFIX),
    ] {
        let key = format!("{prefix}blocks.1.cross_attn.v.weight");
        let path = variant(name, prefix, |t| {
            t.remove(&key).unwrap();
        });
        let err = load(&path, &cfg).expect_err("loaded without a weight");
        assert_mentions(
            &err,
            &[
                &path.display().to_string(),
                &format!("weight {key} (Diffusers name blocks.1.attn2.to_v.weight) is missing"),
            ],
        );
    }
    // A weight the config is read from is missed when the file is opened.
    let path = variant("missing_ffn", "", |t| {
        t.remove("blocks.0.ffn.0.weight").unwrap();
    });
    let err = open(&path)
        .err()
        .expect("opened without a weight")
        .to_string();
    assert_mentions(
        &err,
        &[
            &path.display().to_string(),
            "weight blocks.0.ffn.0.weight is missing",
        ],
    );
}

#[test]
fn a_wrong_shape_names_file_key_and_shapes() {
    let cfg = config();
    let path = variant("wrong_shape", COMFYUI_PREFIX, |t| {
        let key = format!("{COMFYUI_PREFIX}blocks.0.self_attn.k.weight");
        t.insert(
            key,
            Tensor::zeros((32, 16), DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let err = load(&path, &cfg).expect_err("loaded a misshapen weight");
    assert_mentions(
        &err,
        &[
            &path.display().to_string(),
            "weight model.diffusion_model.blocks.0.self_attn.k.weight (Diffusers name blocks.0.attn1.to_k.weight)",
            "has shape [32, 16], the config says [32, 32]",
        ],
    );
}

#[test]
fn the_config_is_checked_against_the_file() {
    let path = original_file();
    // Heads are not in the file: 4 heads of 8 are as good as 2 of 16 to the checker.
    let mut cfg = config();
    (cfg.num_attention_heads, cfg.attention_head_dim) = (4, 8);
    open(&path).unwrap().check_config(&cfg).unwrap();
    // But the width, the block count and the norms are.
    let mut cfg = config();
    cfg.attention_head_dim = 32;
    cfg.num_layers = 3;
    cfg.cross_attn_norm = false;
    let err = load(&path, &cfg).expect_err("loaded with a wrong config");
    assert_mentions(
        &err,
        &[
            &path.display().to_string(),
            "width (patch_embedding.weight rows): the file has 32, the config 64 (num_attention_heads 2 × attention_head_dim 32)",
            "num_layers (blocks.N): the file has 2, the config 3",
            "cross_attn_norm (blocks.0.norm3): the file has true, the config false",
        ],
    );
}

#[test]
fn other_files_are_refused_with_a_sentence() {
    let cfg = config();
    // A text encoder.
    let path = fixtures_dir().join("wan_tiny_a/model/text_encoder/model.safetensors");
    let err = load(&path, &cfg).expect_err("loaded a text encoder");
    assert_mentions(
        &err,
        &[
            &path.display().to_string(),
            "is not a Wan transformer checkpoint",
        ],
    );
    // A Wan transformer, but in the Diffusers layout.
    let path =
        fixtures_dir().join("wan_tiny_a/model/transformer/diffusion_pytorch_model.safetensors");
    let err = load(&path, &cfg).expect_err("loaded a Diffusers file");
    assert_mentions(
        &err,
        &[&path.display().to_string(), "in the Diffusers layout"],
    );
    // An image-to-video model: its extra weights have no place in the text-to-video model.
    let path = variant("i2v", "", |t| {
        let w = Tensor::zeros((32, 32), DType::F32, &Device::Cpu).unwrap();
        t.insert("blocks.0.cross_attn.k_img.weight".into(), w);
    });
    let err = load(&path, &cfg).expect_err("loaded an I2V file");
    assert_mentions(
        &err,
        &[
            &path.display().to_string(),
            "blocks.0.cross_attn.k_img.weight",
            "image-to-video",
        ],
    );
    // A weight outside the ComfyUI prefix in a ComfyUI file.
    let path = variant("stray", COMFYUI_PREFIX, |t| {
        let w = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
        t.insert("first_stage_model.conv.bias".into(), w);
    });
    let err = load(&path, &cfg).expect_err("loaded a stray weight");
    assert_mentions(
        &err,
        &[
            &path.display().to_string(),
            "first_stage_model.conv.bias",
            "has no place for",
        ],
    );
}
