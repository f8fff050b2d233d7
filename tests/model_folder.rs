//! Loading Diffusers model folders: what works, and the clear error each broken case gives.

use candle_core::{DType, Device, Tensor};
use genclip::models::diffusers::ModelFolder;
use genclip::models::wan::config::{TransformerConfig, VaeConfig};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("genclip-model-folder-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_json(path: &Path, value: serde_json::Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

fn transformer_config() -> serde_json::Value {
    json!({
        "_class_name": "WanTransformer3DModel", "_diffusers_version": "0.42.1",
        "patch_size": [1, 2, 2], "num_attention_heads": 2, "attention_head_dim": 12,
        "in_channels": 4, "out_channels": 4, "text_dim": 32, "freq_dim": 16, "ffn_dim": 32,
        "num_layers": 2, "cross_attn_norm": true, "qk_norm": "rms_norm_across_heads", "eps": 1e-6,
        "image_dim": null, "added_kv_proj_dim": null, "rope_max_seq_len": 1024, "pos_embed_seq_len": null
    })
}

fn vae_config() -> serde_json::Value {
    json!({
        "_class_name": "AutoencoderKLWan", "base_dim": 8, "z_dim": 4, "dim_mult": [1, 2, 2, 2],
        "num_res_blocks": 1, "attn_scales": [], "temperal_downsample": [false, true, true], "dropout": 0.0,
        "latents_mean": [0.1, -0.2, 0.3, 0.0], "latents_std": [1.5, 2.0, 1.0, 0.5]
    })
}

/// A minimal model folder: model_index.json, a transformer with a sharded checkpoint and a VAE.
fn model(name: &str) -> PathBuf {
    let root = scratch(name);
    write_json(
        &root.join("model_index.json"),
        json!({"_class_name": "WanPipeline", "transformer": ["diffusers", "WanTransformer3DModel"], "vae": ["diffusers", "AutoencoderKLWan"], "text_encoder": ["transformers", "UMT5EncoderModel"]}),
    );
    write_json(&root.join("transformer/config.json"), transformer_config());
    write_json(&root.join("vae/config.json"), vae_config());
    let dev = Device::Cpu;
    let a = HashMap::from([(
        "blocks.0.weight".to_string(),
        Tensor::arange(0f32, 6., &dev)
            .unwrap()
            .reshape((2, 3))
            .unwrap(),
    )]);
    let b = HashMap::from([(
        "proj_out.bias".to_string(),
        Tensor::ones(4, DType::F32, &dev).unwrap(),
    )]);
    candle_core::safetensors::save(
        &a,
        root.join("transformer/diffusion_pytorch_model-00001-of-00002.safetensors"),
    )
    .unwrap();
    candle_core::safetensors::save(
        &b,
        root.join("transformer/diffusion_pytorch_model-00002-of-00002.safetensors"),
    )
    .unwrap();
    write_json(
        &root.join("transformer/diffusion_pytorch_model.safetensors.index.json"),
        json!({"metadata": {}, "weight_map": {
            "blocks.0.weight": "diffusion_pytorch_model-00001-of-00002.safetensors",
            "proj_out.bias": "diffusion_pytorch_model-00002-of-00002.safetensors"}}),
    );
    candle_core::safetensors::save(&b, root.join("vae/diffusion_pytorch_model.safetensors"))
        .unwrap();
    root
}

fn error_of<T>(r: candle_core::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_sound_folder_loads_configs_and_sharded_weights() {
    let root = model("sound");
    let folder = ModelFolder::open(&root).unwrap();
    assert_eq!(folder.pipeline_class(), "WanPipeline");
    assert_eq!(folder.component_class("vae"), Some("AutoencoderKLWan"));
    let t = TransformerConfig::load(&folder).unwrap();
    assert_eq!(
        (t.inner_dim(), t.out_channels(), t.patch_size),
        (24, 4, [1, 2, 2])
    );
    let v = VaeConfig::load(&folder).unwrap();
    assert_eq!((v.spatial_scale(), v.temporal_scale()), (8, 4));

    let weights = folder
        .weights("transformer", DType::F32, &Device::Cpu)
        .unwrap();
    assert_eq!(weights.files().len(), 2);
    let vb = weights.var_builder();
    let w = vb.get((2, 3), "blocks.0.weight").unwrap();
    assert_eq!(
        w.to_vec2::<f32>().unwrap(),
        vec![vec![0., 1., 2.], vec![3., 4., 5.]]
    );
    let b16 = vb
        .pp("proj_out")
        .to_dtype(DType::BF16)
        .get(4, "bias")
        .unwrap();
    assert_eq!(b16.dtype(), DType::BF16);
}

#[test]
fn missing_folders_and_files_say_what_to_do() {
    let nowhere = scratch("absent").join("nothing-here");
    assert!(error_of(ModelFolder::open(&nowhere)).contains("is not a folder"));
    let empty = scratch("empty");
    assert!(error_of(ModelFolder::open(&empty)).contains("has no model_index.json"));

    let root = model("no-vae-dir");
    std::fs::remove_dir_all(root.join("vae")).unwrap();
    let folder = ModelFolder::open(&root).unwrap();
    let e = error_of(VaeConfig::load(&folder));
    assert!(
        e.contains("vae") && e.contains("download is incomplete"),
        "{e}"
    );
    let e = error_of(folder.component_dir("scheduler"));
    assert!(e.contains("lists no scheduler component"), "{e}");
}

#[test]
fn broken_weights_name_the_file_and_the_key() {
    let root = model("broken-weights");
    let folder = ModelFolder::open(&root).unwrap();

    // A key the model needs but the checkpoint lacks.
    let vb = folder
        .weights("transformer", DType::F32, &Device::Cpu)
        .unwrap()
        .var_builder();
    let e = error_of(vb.get((2, 3), "blocks.1.weight"));
    assert!(
        e.contains("blocks.1.weight") && e.contains("missing"),
        "{e}"
    );
    // A shape that disagrees with the config.
    let e = error_of(vb.get((3, 2), "blocks.0.weight"));
    assert!(
        e.contains("blocks.0.weight") && e.contains("[2, 3]") && e.contains("00001-of-00002"),
        "{e}"
    );

    // A shard the index lists is gone.
    std::fs::remove_file(
        root.join("transformer/diffusion_pytorch_model-00002-of-00002.safetensors"),
    )
    .unwrap();
    let e = error_of(folder.weights("transformer", DType::F32, &Device::Cpu));
    assert!(e.contains("00002-of-00002.safetensors is missing"), "{e}");

    // A truncated file.
    let vae = root.join("vae/diffusion_pytorch_model.safetensors");
    let bytes = std::fs::read(&vae).unwrap();
    std::fs::write(&vae, &bytes[..bytes.len() - 5]).unwrap();
    let e = error_of(folder.weights("vae", DType::F32, &Device::Cpu));
    assert!(
        e.contains("diffusion_pytorch_model.safetensors") && e.contains("truncated or damaged"),
        "{e}"
    );

    // Garbage instead of a safetensors header.
    std::fs::write(&vae, b"not a safetensors file at all").unwrap();
    let e = error_of(folder.weights("vae", DType::F32, &Device::Cpu));
    assert!(e.contains("truncated or damaged"), "{e}");

    // Pickled PyTorch weights only.
    std::fs::remove_file(&vae).unwrap();
    std::fs::write(root.join("vae/diffusion_pytorch_model.bin"), b"pickle").unwrap();
    let e = error_of(folder.weights("vae", DType::F32, &Device::Cpu));
    assert!(e.contains("pickle") && e.contains("safetensors"), "{e}");
}

#[test]
fn configs_refuse_settings_we_do_not_implement() {
    let root = model("configs");
    let folder = ModelFolder::open(&root).unwrap();

    let mut t = transformer_config();
    t["image_dim"] = json!(1280);
    write_json(&root.join("transformer/config.json"), t);
    assert!(error_of(TransformerConfig::load(&folder)).contains("image-to-video"));

    let mut t = transformer_config();
    t["use_magic"] = json!(true);
    write_json(&root.join("transformer/config.json"), t);
    let e = error_of(TransformerConfig::load(&folder));
    assert!(
        e.contains("use_magic") && e.contains("transformer/config.json"),
        "{e}"
    );

    let mut v = vae_config();
    v["latents_mean"] = json!([0.0, 0.0]);
    write_json(&root.join("vae/config.json"), v);
    assert!(error_of(VaeConfig::load(&folder)).contains("z_dim = 4 entries"));

    std::fs::write(root.join("vae/config.json"), "{ not json").unwrap();
    let e = error_of(VaeConfig::load(&folder));
    assert!(e.contains("not valid JSON"), "{e}");
}
