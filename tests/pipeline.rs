//! The whole Wan2.1 pipeline against Diffusers' `WanPipeline` on the tiny fixtures: noise,
//! prompt embeddings, the guided denoising loop, de-normalisation and decoding, and the
//! final frames; plus the request checks a user meets first.
//!
//! Tolerances: tensors within 1e-4 of the reference's largest magnitude (f32 on both sides;
//! see tests/reference/mod.rs), final 8-bit frames equal within ±1 for at least 99.9 % of the
//! values (a value sitting on a rounding edge may land either side).

use candle_core::{DType, Device, Tensor};
use genclip::engine::{GenerateError, Pipeline, Request, Stage};
use genclip::models::torch_rng::{NormalForm, TorchGenerator};

mod reference;

use reference::{assert_close, fixture, plain_request as request, relative_error, Fixture};

/// The fixtures' initial noise: torch's CPU randn as its AVX2 kernel draws it (the kernel
/// torch ran when the fixtures were made), whatever CPU runs the test.
fn fixture_noise(req: &Request, shape: &[usize]) -> Tensor {
    TorchGenerator::with_form(req.seed, NormalForm::Avx2)
        .randn_tensor(shape, &Device::Cpu)
        .unwrap()
}

/// Whether `generate` on this CPU draws the noise the fixtures hold (it draws what torch
/// would draw here); end-to-end tests skip, saying so, where it does not.
fn cpu_draws_the_fixtures_noise() -> bool {
    let same = NormalForm::of_this_cpu() == NormalForm::Avx2;
    if !same {
        eprintln!("skipped: this CPU draws torch's portable noise; the fixtures hold AVX2 noise");
    }
    same
}

fn pipeline(f: &Fixture) -> Pipeline {
    Pipeline::load(f.root.join("model"), &Device::Cpu, DType::F32).unwrap()
}

/// Share of 8-bit values that differ by more than 1 between two frame sets in [0, 1].
fn eight_bit_mismatch(ours: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(ours.len(), reference.len());
    assert!(
        ours.iter().all(|v| v.is_finite()),
        "frames hold NaN or infinite values"
    );
    let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as i32;
    let bad = ours
        .iter()
        .zip(reference)
        .filter(|(a, b)| (q(**a) - q(**b)).abs() > 1)
        .count();
    bad as f64 / ours.len() as f64
}

fn check_stages(name: &str) {
    let f = fixture(name);
    let pipeline = pipeline(&f);
    let req = request(&f);

    // Noise: torch's CPU randn (the fixtures were drawn by torch's AVX2 kernel).
    let shape = pipeline.latent_shape(&req).unwrap();
    let noise = fixture_noise(&req, &shape);
    assert_eq!(
        relative_error(&noise, f.get("latents.initial")),
        0.0,
        "{name}: initial noise not bit-exact"
    );

    // Prompt embeddings from the raw prompt text (cleaning, tokenizing, encoding, padding).
    let cond = pipeline.encode_prompt(&req.prompt).unwrap();
    assert_close(
        &format!("{name} prompt embeds"),
        &cond,
        f.get("prompt.embeds"),
    );
    let uncond = pipeline.encode_prompt(&req.negative_prompt).unwrap();
    assert_close(
        &format!("{name} negative embeds"),
        &uncond,
        f.get("negative.embeds"),
    );

    // Denoising from the reference noise, with our embeddings.
    let mut steps = Vec::new();
    let latents = pipeline
        .denoise(
            noise,
            &cond,
            Some(&uncond),
            &req,
            &mut |s| steps.push(s),
            &|| false,
        )
        .unwrap();
    assert_close(
        &format!("{name} final latents"),
        &latents,
        f.get("latents.final"),
    );
    assert_eq!(
        steps.last(),
        Some(&Stage::Denoising {
            step: req.steps,
            of: req.steps
        })
    );

    // Decoding to frames.
    let video = pipeline.decode(&latents, &mut |_| {}, &|| false).unwrap();
    let reference = f
        .get("frames")
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let mismatch = eight_bit_mismatch(&video.rgb, &reference);
    eprintln!(
        "{name}: 8-bit values off by more than 1: {:.4} %",
        mismatch * 100.0
    );
    assert!(
        mismatch <= 0.001,
        "{name}: {:.3} % of 8-bit values differ by more than 1",
        mismatch * 100.0
    );
    assert_eq!(
        (video.frames, video.height, video.width),
        (req.frames, req.height, req.width)
    );
}

#[test]
fn every_stage_matches_wan_pipeline_a() {
    check_stages("wan_tiny_a");
}

#[test]
fn every_stage_matches_wan_pipeline_b() {
    check_stages("wan_tiny_b");
}

/// `generate` end to end, on the noise form this CPU gets (torch would draw the same here).
#[test]
fn generate_end_to_end_matches_wan_pipeline() {
    if !cpu_draws_the_fixtures_noise() {
        return;
    }
    let f = fixture("wan_tiny_a");
    let req = request(&f);
    let mut stages = Vec::new();
    let video = pipeline(&f)
        .generate(&req, &mut |s| stages.push(s), &|| false)
        .unwrap();
    let reference = f
        .get("frames")
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(eight_bit_mismatch(&video.rgb, &reference) <= 0.001);
    assert_eq!(stages.first(), Some(&Stage::EncodingText));
    assert!(
        stages.contains(&Stage::Decoding { frame: 3, of: 3 }),
        "{stages:?}"
    );
}

#[test]
fn abort_ends_the_job_between_steps() {
    let f = fixture("wan_tiny_a");
    let pipeline = pipeline(&f);
    let req = request(&f);
    let steps = std::cell::Cell::new(0);
    let result = pipeline.generate(
        &req,
        &mut |s| {
            if let Stage::Denoising { .. } = s {
                steps.set(steps.get() + 1)
            }
        },
        &|| steps.get() >= 2,
    );
    assert!(matches!(result, Err(GenerateError::Aborted)), "{result:?}");
    assert_eq!(steps.get(), 2, "stopped within one step of the request");
}

#[test]
fn bad_requests_say_what_to_use() {
    let f = fixture("wan_tiny_a");
    let pipeline = pipeline(&f);
    let base = request(&f);
    let err = |req: Request| pipeline.latent_shape(&req).unwrap_err().to_string();
    let e = err(Request {
        frames: 8,
        ..base.clone()
    });
    assert!(e.contains("4k+1") && e.contains("use 5 or 9"), "{e}");
    let e = err(Request {
        width: 50,
        ..base.clone()
    });
    assert!(e.contains("multiples of 16"), "{e}");
    let e = err(Request {
        steps: 0,
        ..base.clone()
    });
    assert!(e.contains("steps"), "{e}");
    let e = err(Request {
        guidance_scale: f64::NAN,
        ..base
    });
    assert!(e.contains("guidance"), "{e}");
}

/// `genclip-engine generate` writes the clip as 16-bit RGB PNGs equal to Diffusers' frames.
#[test]
fn genclip_engine_generate_writes_the_frames() {
    if !cpu_draws_the_fixtures_noise() {
        return;
    }
    let f = fixture("wan_tiny_a");
    let req = request(&f);
    let out = std::env::temp_dir().join(format!("genclip-engine-cli-{}", std::process::id()));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_genclip-engine"))
        .arg("generate")
        .arg("--model")
        .arg(f.root.join("model"))
        .args([
            "--prompt",
            &req.prompt,
            "--negative-prompt",
            &req.negative_prompt,
        ])
        .args([
            "--seed",
            &req.seed.to_string(),
            "--steps",
            &req.steps.to_string(),
        ])
        .args([
            "--guidance",
            &req.guidance_scale.to_string(),
            "--width",
            &req.width.to_string(),
        ])
        .args([
            "--height",
            &req.height.to_string(),
            "--frames",
            &req.frames.to_string(),
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let mut ours = Vec::new();
    for i in 0..req.frames {
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(out.join(format!("frame.{i:04}.png"))).unwrap(),
        ));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(
            (info.width as usize, info.height as usize),
            (req.width, req.height)
        );
        assert_eq!(
            (info.color_type, info.bit_depth),
            (png::ColorType::Rgb, png::BitDepth::Sixteen)
        );
        ours.extend(
            buf[..info.buffer_size()]
                .chunks_exact(2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]) as f32 / 65535.0),
        );
    }
    let reference = f
        .get("frames")
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(eight_bit_mismatch(&ours, &reference) <= 0.001);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn genclip_engine_explains_a_broken_model_folder() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_genclip-engine"))
        .args([
            "generate",
            "--model",
            "/nonexistent/wan",
            "--prompt",
            "x",
            "--out",
            "/tmp/never",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("is not a folder") && text.contains("Model folder"),
        "{text}"
    );
}

/// bf16 weights and activations (what GPUs will run) load and generate; the frames stay
/// close to the f32 reference (bf16 keeps ~3 significant digits, so this is a sanity bound,
/// not parity).
#[test]
fn bf16_generates_close_to_the_f32_reference() {
    let f = fixture("wan_tiny_a");
    let pipeline = Pipeline::load(f.root.join("model"), &Device::Cpu, DType::BF16).unwrap();
    let req = request(&f);
    let shape = pipeline.latent_shape(&req).unwrap();
    let noise = fixture_noise(&req, &shape);
    let cond = pipeline.encode_prompt(&req.prompt).unwrap();
    let uncond = pipeline.encode_prompt(&req.negative_prompt).unwrap();
    let latents = pipeline
        .denoise(noise, &cond, Some(&uncond), &req, &mut |_| {}, &|| false)
        .unwrap();
    assert_eq!(
        latents.dtype(),
        DType::F32,
        "the scheduler keeps f32 latents"
    );
    let video = pipeline.decode(&latents, &mut |_| {}, &|| false).unwrap();
    let reference = f
        .get("frames")
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let worst = video
        .rgb
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        // A NaN must fail the test, not vanish in the max.
        .fold(0f32, |worst, d| {
            if d.is_nan() {
                f32::INFINITY
            } else {
                worst.max(d)
            }
        });
    eprintln!("bf16 vs f32 reference: worst frame difference {worst}");
    assert!(
        worst < 0.1,
        "bf16 frames differ from the f32 reference by {worst}"
    );
}
