//! Parity of the engine's model components with Diffusers/Transformers (PyTorch, CPU, f32) on
//! the tiny random-weight Wan pipelines in `tests/fixtures/wan_tiny_*` (made by
//! `tools/make_wan_fixtures.py`; two different configs so nothing is hard-wired to a shape).
//!
//! Tolerance: see tests/reference/mod.rs (1e-4 of the reference's largest magnitude).

use candle_core::DType;
use genclip::models::umt5::{self, Umt5Encoder};
use genclip::models::wan::config::TransformerConfig;
use genclip::models::wan::transformer::WanTransformer;

mod reference;

use reference::{assert_close, fixture, Fixture};

fn encoder(f: &Fixture) -> Umt5Encoder {
    let cfg = umt5::Config::load(&f.folder).unwrap();
    let vb = f.var_builder("text_encoder");
    Umt5Encoder::new(&cfg, vb).unwrap()
}

fn check_encoder(name: &str) {
    let f = fixture(name);
    let enc = encoder(&f);
    let ids = f
        .get("encoder_check.input_ids")
        .to_dtype(DType::U32)
        .unwrap();
    let mask = f.get("encoder_check.attention_mask");
    let out = enc.forward(&ids, Some(mask)).unwrap();
    assert_close(
        &format!("{name} umT5 last_hidden_state"),
        &out,
        f.get("encoder_check.last_hidden_state"),
    );
}

#[test]
fn umt5_encoder_matches_transformers_a() {
    check_encoder("wan_tiny_a");
}

#[test]
fn umt5_encoder_matches_transformers_b() {
    check_encoder("wan_tiny_b");
}

/// The pipeline's prompt embeddings: the encoder on the real tokens, zero-padded to 512 rows.
fn check_prompt_embeds(name: &str) {
    let f = fixture(name);
    let enc = encoder(&f);
    for which in ["prompt", "negative"] {
        let ids = f.get(&format!("{which}.input_ids"));
        let mask = f.get(&format!("{which}.attention_mask"));
        let len = mask.sum_all().unwrap().to_scalar::<i64>().unwrap() as usize;
        let real = ids.narrow(1, 0, len).unwrap().to_dtype(DType::U32).unwrap();
        let out = enc.forward(&real, None).unwrap();
        let padded = out.pad_with_zeros(1, 0, 512 - len).unwrap();
        assert_close(
            &format!("{name} {which}.embeds"),
            &padded,
            f.get(&format!("{which}.embeds")),
        );
    }
}

#[test]
fn prompt_embeddings_match_the_pipeline_a() {
    check_prompt_embeds("wan_tiny_a");
}

#[test]
fn prompt_embeddings_match_the_pipeline_b() {
    check_prompt_embeds("wan_tiny_b");
}

fn check_transformer(name: &str) {
    let f = fixture(name);
    let cfg = TransformerConfig::load(&f.folder).unwrap();
    let vb = f.var_builder("transformer");
    let model = WanTransformer::new(&cfg, vb).unwrap();
    let out = model
        .forward(
            f.get("transformer_check.hidden_states"),
            f.get("transformer_check.timestep"),
            f.get("transformer_check.encoder_hidden_states"),
        )
        .unwrap();
    assert_close(
        &format!("{name} transformer output"),
        &out,
        f.get("transformer_check.output"),
    );
    // And the first denoising step of the real pipeline run (cond and uncond).
    for (which, text) in [("cond", "prompt.embeds"), ("uncond", "negative.embeds")] {
        let pred = model
            .forward(
                f.get("step0.latent_model_input"),
                f.get("step0.timestep"),
                f.get(text),
            )
            .unwrap();
        assert_close(
            &format!("{name} step0 noise_pred_{which}"),
            &pred,
            f.get(&format!("step0.noise_pred_{which}")),
        );
    }
}

#[test]
fn transformer_matches_diffusers_a() {
    check_transformer("wan_tiny_a");
}

#[test]
fn transformer_matches_diffusers_b() {
    check_transformer("wan_tiny_b");
}

fn check_vae(name: &str) {
    use genclip::models::wan::{config::VaeConfig, vae::WanVaeDecoder};
    let f = fixture(name);
    let cfg = VaeConfig::load(&f.folder).unwrap();
    let vb = f.var_builder("vae");
    let vae = WanVaeDecoder::new(&cfg, vb).unwrap();
    let z = f.get("vae_check.z");
    assert_close(
        &format!("{name} post_quant_conv"),
        &vae.post_quant_conv(z).unwrap(),
        f.get("vae_check.post_quant_conv"),
    );
    let mut frames_done = Vec::new();
    let video = vae
        .decode(z, |done, total| {
            frames_done.push((done, total));
            Ok(())
        })
        .unwrap();
    assert_close(
        &format!("{name} VAE decode"),
        &video,
        f.get("vae_check.video"),
    );
    assert_eq!(frames_done.last(), Some(&(3, 3)));
    // The pipeline's de-normalisation and decode of its final latents.
    let denormalized = vae.denormalize(f.get("latents.final")).unwrap();
    assert_close(
        &format!("{name} de-normalised latents"),
        &denormalized,
        f.get("vae.input"),
    );
    let video = vae.decode(f.get("vae.input"), |_, _| Ok(())).unwrap();
    assert_close(
        &format!("{name} pipeline VAE output"),
        &video,
        f.get("vae.output"),
    );
}

#[test]
fn vae_decoder_matches_diffusers_a() {
    check_vae("wan_tiny_a");
}

#[test]
fn vae_decoder_matches_diffusers_b() {
    check_vae("wan_tiny_b");
}

fn check_vae_encoder(name: &str) {
    use genclip::models::wan::{config::VaeConfig, vae_encoder::WanVaeEncoder};
    let f = fixture(name);
    let cfg = VaeConfig::load(&f.folder).unwrap();
    let vb = f.var_builder("vae");
    let vae = WanVaeEncoder::new(&cfg, vb).unwrap();
    let video = f.get("vae_encode_check.video");
    let mut chunks_done = Vec::new();
    let mean = vae
        .encode_mean(video, |done, total| {
            chunks_done.push((done, total));
            Ok(())
        })
        .unwrap();
    assert_close(
        &format!("{name} VAE encode mean"),
        &mean,
        f.get("vae_encode_check.mean"),
    );
    // The first frame alone, then chunks of four.
    let chunks = 1 + (video.dim(2).unwrap() - 1) / 4;
    assert_eq!(chunks_done.last(), Some(&(chunks, chunks)));
    // The image-to-video pipeline's normalisation, from the reference mean.
    assert_close(
        &format!("{name} normalised encoded latents"),
        &vae.normalize(f.get("vae_encode_check.mean")).unwrap(),
        f.get("vae_encode_check.normalized"),
    );
}

#[test]
fn vae_encoder_matches_diffusers_a() {
    check_vae_encoder("wan_tiny_a");
}

#[test]
fn vae_encoder_matches_diffusers_b() {
    check_vae_encoder("wan_tiny_b");
}
