//! `Pipeline::generate_clip` on the tiny fixture model: several prompts blended per latent
//! frame (cross-attention outputs blended per token), the text-embedding cache, the sampler
//! and flow-shift choices, and the request checks.
//!
//! Exactness, f32 on the CPU: a one-prompt clip is `Pipeline::generate` bit for bit; a
//! per-frame blend whose rows are one-hot is that prompt's clip bit for bit (1·x + 0·y = x);
//! in the first block, a token's output depends on the text only through its own frame's
//! blend, so a switch between prompts at latent frame j shows exactly at frame j.

use candle_core::{Device, Tensor};
use genclip::client::protocol::{ClipRequest, ContextWindows, Sampler};
use genclip::models::schedulers::Scheduler;
use genclip::models::torch_rng::TorchGenerator;
use genclip::models::wan::config::TransformerConfig;
use genclip::models::wan::transformer::{TextConditioning, WanTransformer};

mod clip;
mod reference;

use clip::{
    clip_request, generate, max_difference, pipeline, plain_request, same_bits,
    single_prompt_request, PROMPT_B,
};
use reference::fixture;

/// (a) One prompt runs the shared-text path: exactly `generate`.
#[test]
fn one_prompt_is_generate_bit_for_bit() {
    for name in ["wan_tiny_a", "wan_tiny_b"] {
        let f = fixture(name);
        let pipeline = pipeline(&f);
        let plain = pipeline
            .generate(&plain_request(&f), &mut |_| {}, &|| false)
            .unwrap();
        let clip = generate(&pipeline, &single_prompt_request(&f));
        assert!(same_bits(&clip.rgb, &plain.rgb), "{name}");
        assert_eq!(
            (clip.frames, clip.height, clip.width),
            (plain.frames, plain.height, plain.width)
        );
    }
}

/// (b) Two prompts with one-hot rows are the chosen prompt's clip, bit for bit, through the
/// per-frame path (both prompts encoded, both cross-attentions run).
#[test]
fn one_hot_rows_are_that_prompts_clip_bit_for_bit() {
    let f = fixture("wan_tiny_a");
    let pipeline = pipeline(&f);
    let a = plain_request(&f).prompt;
    let frames = 3;
    let only_a = generate(&pipeline, &clip_request(&f, &[&a], vec![vec![1.0]; frames]));
    let only_b = generate(
        &pipeline,
        &clip_request(&f, &[PROMPT_B], vec![vec![1.0]; frames]),
    );
    assert!(max_difference(&only_a.rgb, &only_b.rgb) > 1e-3);

    let blend_a = generate(
        &pipeline,
        &clip_request(&f, &[&a, PROMPT_B], vec![vec![1.0, 0.0]; frames]),
    );
    assert!(same_bits(&blend_a.rgb, &only_a.rgb));
    let blend_b = generate(
        &pipeline,
        &clip_request(&f, &[&a, PROMPT_B], vec![vec![0.0, 1.0]; frames]),
    );
    assert!(same_bits(&blend_b.rgb, &only_b.rgb));
    // Unnormalised rows mean the same after normalisation.
    let scaled = generate(
        &pipeline,
        &clip_request(&f, &[&a, PROMPT_B], vec![vec![0.0, 7.0]; frames]),
    );
    assert!(same_bits(&scaled.rgb, &only_b.rgb));
}

fn transformer(name: &str) -> (WanTransformer, reference::Fixture) {
    let f = fixture(name);
    let cfg = TransformerConfig::load(&f.folder).unwrap();
    (
        WanTransformer::new(&cfg, f.var_builder("transformer")).unwrap(),
        f,
    )
}

/// Per-frame weights [1, 2, frames]: prompt A before `switch`, prompt B from it on.
fn switch_weights(frames: usize, switch: usize) -> Tensor {
    let a: Vec<f32> = (0..frames).map(|i| (i < switch) as u8 as f32).collect();
    let b: Vec<f32> = a.iter().map(|w| 1.0 - w).collect();
    Tensor::from_vec([a, b].concat(), (1, 2, frames), &Device::Cpu).unwrap()
}

/// The tokens of latent frame `frame` ([tokens, dim] rows of a [1, tokens, dim] tensor).
fn frame_tokens(hidden: &Tensor, frame: usize, per_frame: usize) -> Vec<f32> {
    hidden
        .squeeze(0)
        .unwrap()
        .narrow(0, frame * per_frame, per_frame)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// (c) A switch from prompt A to prompt B at latent frame j: after the first block, the
/// tokens of frames before j are prompt A's alone, bit for bit, and those from j on are prompt
/// B's (so they differ from A's). Self-attention comes before cross-attention in a block, so
/// in the first block no token sees another frame's text.
#[test]
fn a_switch_at_frame_j_shows_exactly_from_frame_j() {
    let (model, f) = transformer("wan_tiny_a");
    let (frames, h, w) = (4, 4, 6);
    let per_frame = (h / 2) * (w / 2);
    let latents = TorchGenerator::manual_seed(7)
        .randn_tensor(&[1, 4, frames, h, w], &Device::Cpu)
        .unwrap();
    let timestep = Tensor::new(&[500f32], &Device::Cpu).unwrap();
    let (a, b) = (f.get("prompt.embeds"), f.get("negative.embeds"));
    let contexts = Tensor::stack(&[a, b], 1).unwrap();
    let first_block =
        |text: &TextConditioning| model.hidden_states(&latents, &timestep, text, 1).unwrap();
    let only_a = first_block(&TextConditioning::Shared(a.clone()));
    let only_b = first_block(&TextConditioning::Shared(b.clone()));
    for switch in 1..frames {
        let blended = first_block(&TextConditioning::PerFrame {
            contexts: contexts.clone(),
            weights: switch_weights(frames, switch),
        });
        for frame in 0..frames {
            let ours = frame_tokens(&blended, frame, per_frame);
            let (a, b) = (
                frame_tokens(&only_a, frame, per_frame),
                frame_tokens(&only_b, frame, per_frame),
            );
            if frame < switch {
                assert!(same_bits(&ours, &a), "switch {switch}, frame {frame}");
            } else {
                assert!(
                    max_difference(&ours, &a) > 1e-4,
                    "switch {switch}, frame {frame}"
                );
                assert!(same_bits(&ours, &b), "switch {switch}, frame {frame}");
            }
        }
    }
}

/// The whole transformer: one-hot rows everywhere are the shared path bit for bit, and a
/// half-and-half frame is neither prompt.
#[test]
fn per_frame_forward_reduces_to_the_shared_forward() {
    let (model, f) = transformer("wan_tiny_b");
    let latents = f.get("step0.latent_model_input");
    let timestep = f.get("step0.timestep");
    let frames = latents.dim(2).unwrap();
    let (a, b) = (f.get("prompt.embeds"), f.get("negative.embeds"));
    let contexts = Tensor::stack(&[a, b], 1).unwrap();
    let flat = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let shared = flat(model.forward(latents, timestep, a).unwrap());
    let per_frame = |weights: Tensor| {
        flat(
            model
                .forward_conditioned(
                    latents,
                    timestep,
                    &TextConditioning::PerFrame {
                        contexts: contexts.clone(),
                        weights,
                    },
                )
                .unwrap(),
        )
    };
    assert!(same_bits(
        &per_frame(switch_weights(frames, frames)),
        &shared
    ));
    let half = Tensor::full(0.5f32, (1, 2, frames), &Device::Cpu).unwrap();
    let halfway = per_frame(half);
    assert!(max_difference(&halfway, &shared) > 1e-4);
    assert!(
        max_difference(
            &halfway,
            &flat(model.forward(latents, timestep, b).unwrap())
        ) > 1e-4
    );
}

/// Two clips that differ only in the seed encode each distinct prompt once in all.
#[test]
fn the_text_encoder_runs_once_per_distinct_prompt() {
    // The cache sits behind a lock: the pipeline can still be handed to a worker thread.
    fn shareable<T: Send + Sync>() {}
    shareable::<genclip::engine::Pipeline>();
    let f = fixture("wan_tiny_a");
    let pipeline = pipeline(&f);
    let a = plain_request(&f).prompt;
    let mut req = clip_request(
        &f,
        &[&a, PROMPT_B],
        vec![vec![1.0, 0.0], vec![0.5, 0.5], vec![0.0, 1.0]],
    );
    assert_eq!(pipeline.text_encoder_runs(), 0);
    let first = generate(&pipeline, &req);
    // Prompt A, prompt B and the negative prompt.
    assert_eq!(pipeline.text_encoder_runs(), 3);
    req.seed += 1;
    let second = generate(&pipeline, &req);
    assert_eq!(pipeline.text_encoder_runs(), 3);
    assert!(max_difference(&first.rgb, &second.rgb) > 1e-3);
    // The same text after cleaning (HTML entities, spacing) is the same entry.
    req.prompts[1] = format!("  {PROMPT_B} ");
    generate(&pipeline, &req);
    assert_eq!(pipeline.text_encoder_runs(), 3);
    // And a cached embedding is the encoder's output, bit for bit.
    let fresh = self::pipeline(&f);
    let cached = pipeline.encode_prompt(&a).unwrap();
    let encoded = fresh.encode_prompt(&a).unwrap();
    let flat = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(same_bits(&flat(cached), &flat(encoded)));
}

/// The Diffusers schedules of tests/fixtures/schedulers ("{case}/n{steps}/sigmas").
fn diffusers_sigmas(case: &str, steps: usize) -> Vec<f32> {
    let path = reference::fixtures_dir().join("schedulers/schedulers.safetensors");
    let tensors = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    tensors[&format!("{case}/n{steps}/sigmas")]
        .to_vec1()
        .unwrap()
}

fn schedule(scheduler: &Scheduler, steps: usize) -> (Vec<f64>, Vec<f32>) {
    let mut s = scheduler.clone();
    s.set_timesteps(steps).unwrap();
    (s.timesteps().to_vec(), s.sigmas().to_vec())
}

/// A shift override and the other sampler give the schedules Diffusers computes for those
/// configs (the fixtures hold UniPC at shift 5 and FlowMatchEuler at shifts 3 and 5; the
/// model's config is UniPC at shift 3).
#[test]
fn shift_and_sampler_overrides_give_diffusers_schedules() {
    let f = fixture("wan_tiny_a");
    let pipeline = pipeline(&f);
    for steps in [1, 3, 10, 50] {
        for (sampler, shift, case) in [
            (Sampler::ModelDefault, Some(5.0), "unipc_shift5"),
            (Sampler::UniPc, Some(5.0), "unipc_shift5"),
            (Sampler::ModelDefault, None, "unipc_shift3"),
            (Sampler::FlowEuler, None, "flow_euler_shift3"),
            (Sampler::FlowEuler, Some(5.0), "flow_euler_shift5"),
        ] {
            let scheduler = pipeline.scheduler_for(sampler, shift).unwrap();
            let (timesteps, sigmas) = schedule(&scheduler, steps);
            assert_eq!(sigmas, diffusers_sigmas(case, steps), "{case} n{steps}");
            assert_eq!(timesteps.len(), steps);
        }
    }
    // UniPC's sigmas are the unshifted ones (shift 1) mapped by s' = k·s / (1 + (k - 1)·s).
    let steps = 10;
    let (_, unshifted) = schedule(
        &pipeline.scheduler_for(Sampler::UniPc, Some(1.0)).unwrap(),
        steps,
    );
    let (timesteps, shifted) = schedule(
        &pipeline.scheduler_for(Sampler::UniPc, Some(7.0)).unwrap(),
        steps,
    );
    // The first sigma is 1 either way (kept just under it); the last is 0.
    for i in 1..steps {
        let s = unshifted[i] as f64;
        let expected = 7.0 * s / (1.0 + 6.0 * s);
        assert!(
            (shifted[i] as f64 - expected).abs() < 1e-6,
            "sigma {i}: {} vs {expected}",
            shifted[i]
        );
        assert_eq!(
            timesteps[i],
            (shifted[i] as f64 * 1000.0).trunc(),
            "timestep {i}"
        );
    }
    assert_eq!(shifted[steps], 0.0);
}

#[test]
fn samplers_and_shifts_change_the_clip_as_asked() {
    let f = fixture("wan_tiny_a");
    let pipeline = pipeline(&f);
    let base = single_prompt_request(&f);
    let default = generate(&pipeline, &base);
    let with = |sampler: Sampler, shift: Option<f64>| {
        let mut req = base.clone();
        req.sampler = sampler;
        req.shift = shift;
        generate(&pipeline, &req).rgb
    };
    // The model's own class and its own shift are the default clip.
    assert!(same_bits(&with(Sampler::UniPc, None), &default.rgb));
    assert!(same_bits(
        &with(Sampler::ModelDefault, Some(3.0)),
        &default.rgb
    ));
    let euler = with(Sampler::FlowEuler, None);
    assert!(euler.iter().all(|v| v.is_finite()));
    let d = max_difference(&euler, &default.rgb);
    eprintln!("FlowMatchEuler vs UniPC, 3 steps: largest frame difference {d}");
    assert!(d > 1e-3);
    assert!(max_difference(&with(Sampler::ModelDefault, Some(5.0)), &default.rgb) > 1e-3);
}

/// Every request error is a sentence saying what to fix, and comes before any work.
#[test]
fn bad_clip_requests_say_what_to_fix_before_any_work() {
    let f = fixture("wan_tiny_a");
    let pipeline = pipeline(&f);
    let base = single_prompt_request(&f);
    let err = |change: &dyn Fn(&mut ClipRequest)| {
        let mut req = base.clone();
        change(&mut req);
        pipeline
            .generate_clip(&req, &mut |_| {}, &|| false)
            .unwrap_err()
            .to_string()
    };
    type Change = Box<dyn Fn(&mut ClipRequest)>;
    let cases: Vec<(Change, &[&str])> = vec![
        (
            Box::new(|r| {
                r.weights.pop();
            }),
            &["2 rows", "one row per latent frame"],
        ),
        (
            Box::new(|r| r.weights[1] = vec![1.0, 1.0]),
            &["2 values for 1 prompts"],
        ),
        (
            Box::new(|r| r.weights[2] = vec![f64::NAN]),
            &["latent frame 2", "0 or more"],
        ),
        (
            Box::new(|r| r.weights[0] = vec![0.0]),
            &["latent frame 0", "raise the weight"],
        ),
        (
            Box::new(|r| r.prompts = vec![" ".into()]),
            &["prompt 1 of 1 is empty"],
        ),
        (
            Box::new(|r| r.shift = Some(0.0)),
            &["flow shift", "above 0"],
        ),
        (
            Box::new(|r| r.shift = Some(f64::NAN)),
            &["flow shift", "above 0"],
        ),
        (
            Box::new(|r| {
                r.windows = Some(ContextWindows {
                    frames: 8,
                    overlap: 4,
                })
            }),
            &["4k+1"],
        ),
        (
            Box::new(|r| {
                r.windows = Some(ContextWindows {
                    frames: 9,
                    overlap: 2,
                })
            }),
            &["multiple of 4"],
        ),
    ];
    for (change, words) in &cases {
        let e = err(change.as_ref());
        for word in *words {
            assert!(e.contains(word), "{e:?} lacks {word:?}");
        }
    }
    let e = err(&|r| r.frames = 8);
    assert!(e.contains("use 5 or 9"), "{e}");
    assert_eq!(
        pipeline.text_encoder_runs(),
        0,
        "a bad request encoded text"
    );
}
