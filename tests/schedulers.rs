//! The schedulers of src/models/schedulers against Diffusers 0.42.1 on the CPU, on the
//! fixtures `tools/scheduler_fixtures.py` made (tests/fixtures/schedulers): the same configs,
//! the same schedules, and whole denoising loops fed the same model outputs.
//!
//! Tolerances. Schedules must be equal: timesteps exactly (UniPC's are integers,
//! FlowMatchEuler's float32), sigmas exactly (Diffusers stores them as float32). Samples are
//! float32 latents of unit scale, so an element is compared relative to max(|reference|, 1):
//! - FlowMatchEuler does one multiply-add per step, which we round exactly as torch does: equal.
//! - UniPC computes its step coefficients in float32 from log-SNRs, log(1 - sigma) - log(sigma),
//!   with torch's CPU `log` (MKL's, faithfully but not always correctly rounded; ours is
//!   correctly rounded). One float32 ulp of a log-SNR near 4 is 5e-7, and a step of 50 spans
//!   only ~0.1 in log-SNR, so the coefficients can differ by ~5e-6 relative and a step's
//!   output by ~1e-6. Runs of up to 10 steps stay within RUN_TOLERANCE at every step; the
//!   50-step run accumulates ~3e-6, checked against LONG_RUN_TOLERANCE. Diffusers itself
//!   moves by as much between CPU and GPU (CUDA's logf rounds differently again).

use candle_core::{DType, Device, Tensor};
use genclip::models::schedulers::{Scheduler, UniPcMultistepScheduler};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Runs of up to 10 steps, every step: see the module comment.
const RUN_TOLERANCE: f32 = 1e-6;
/// The final sample of a 50-step run: see the module comment.
const LONG_RUN_TOLERANCE: f32 = 1e-5;

struct Fixtures {
    meta: Value,
    tensors: HashMap<String, Tensor>,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schedulers")
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = fixture_dir();
        let meta = serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap())
            .unwrap();
        let tensors =
            candle_core::safetensors::load(dir.join("schedulers.safetensors"), &Device::Cpu)
                .unwrap();
        Fixtures { meta, tensors }
    })
}

impl Fixtures {
    fn tensor(&self, key: &str) -> &Tensor {
        self.tensors
            .get(key)
            .unwrap_or_else(|| panic!("fixture tensor {key} is missing"))
    }

    fn cases(&self) -> Vec<(String, Value)> {
        let cases = self.meta["cases"].as_object().unwrap();
        cases.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn step_counts(&self, key: &str) -> Vec<usize> {
        self.meta[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect()
    }

    fn model_output(&self, step: usize) -> Tensor {
        self.tensor("model_outputs").get(step).unwrap()
    }
}

/// Largest absolute error and largest error relative to max(|reference|, 1).
#[derive(Debug, Default, Clone, Copy)]
struct Error {
    abs: f32,
    rel: f32,
}

impl Error {
    fn of(ours: &Tensor, reference: &Tensor) -> Error {
        assert_eq!(ours.dtype(), reference.dtype(), "dtype");
        assert_eq!(ours.dims(), reference.dims(), "shape");
        let flat = |t: &Tensor| -> Vec<f32> {
            t.to_dtype(DType::F32)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let mut error = Error::default();
        for (a, b) in flat(ours).into_iter().zip(flat(reference)) {
            assert!(a.is_finite() && b.is_finite(), "{a} vs {b}");
            let abs = (a - b).abs();
            error.abs = error.abs.max(abs);
            error.rel = error.rel.max(abs / b.abs().max(1.0));
        }
        error
    }

    fn max(self, other: Error) -> Error {
        Error {
            abs: self.abs.max(other.abs),
            rel: self.rel.max(other.rel),
        }
    }
}

fn scheduler(config: &Value, steps: usize) -> Scheduler {
    let mut scheduler = Scheduler::from_config(config).unwrap();
    scheduler.set_timesteps(steps).unwrap();
    scheduler
}

#[test]
fn schedules_equal_diffusers() {
    let f = fixtures();
    for (case, config) in f.cases() {
        for steps in f.step_counts("step_counts") {
            let prefix = format!("{case}/n{steps}");
            let s = scheduler(&config, steps);
            let timesteps = f.tensor(&format!("{prefix}/timesteps"));
            match &s {
                Scheduler::UniPc(unipc) => {
                    let reference: Vec<i64> = timesteps.to_vec1().unwrap();
                    assert_eq!(unipc.integer_timesteps(), reference, "{prefix} timesteps");
                }
                Scheduler::FlowMatchEuler(_) => {
                    let reference: Vec<f32> = timesteps.to_vec1().unwrap();
                    let reference: Vec<f64> = reference.into_iter().map(f64::from).collect();
                    assert_eq!(s.timesteps(), reference, "{prefix} timesteps");
                }
            }
            assert_eq!(s.timesteps().len(), steps);
            let sigmas: Vec<f32> = f.tensor(&format!("{prefix}/sigmas")).to_vec1().unwrap();
            assert_eq!(s.sigmas(), sigmas, "{prefix} sigmas");
        }
    }
}

/// Runs the loop from the fixtures' initial sample on our own outputs, comparing every
/// recorded step; returns the error of the final sample and the worst step error.
fn run_and_compare(
    config: &Value,
    prefix: &str,
    steps: usize,
    record: bool,
    bf16: bool,
) -> (Error, Error) {
    let f = fixtures();
    let mut s = scheduler(config, steps);
    let mut sample = f.tensor("initial_sample").clone();
    let mut worst = Error::default();
    for (i, &t) in s.timesteps().to_vec().iter().enumerate() {
        let mut model_output = f.model_output(i);
        if bf16 {
            model_output = model_output.to_dtype(DType::BF16).unwrap();
        }
        if record {
            let step = format!("{prefix}/step{i:02}");
            let reference_input = f.tensor(&format!("{step}/sample"));
            worst = worst.max(Error::of(&sample, reference_input));
            assert_eq!(
                Error::of(&model_output, f.tensor(&format!("{step}/model_output"))).abs,
                0.0
            );
        }
        sample = s.step(&model_output, t, &sample).unwrap();
        if record {
            let error = Error::of(
                &sample,
                f.tensor(&format!("{prefix}/step{i:02}/prev_sample")),
            );
            assert!(error.rel <= RUN_TOLERANCE, "{prefix} step {i}: {error:?}");
            worst = worst.max(error);
        }
    }
    (
        Error::of(&sample, f.tensor(&format!("{prefix}/final_sample"))),
        worst,
    )
}

#[test]
fn denoising_loops_equal_diffusers() {
    let f = fixtures();
    let recorded = f.step_counts("recorded_step_counts");
    let mut report = Vec::new();
    for (case, config) in f.cases() {
        for steps in f.step_counts("step_counts") {
            let prefix = format!("{case}/n{steps}");
            let record = recorded.contains(&steps);
            let (end, worst) = run_and_compare(&config, &prefix, steps, record, false);
            let tolerance = if steps <= 10 {
                RUN_TOLERANCE
            } else {
                LONG_RUN_TOLERANCE
            };
            assert!(end.rel <= tolerance, "{prefix} final sample: {end:?}");
            report.push(format!("{prefix}: final {end:?}, worst step {worst:?}"));
        }
    }
    for (case, steps) in f.meta["bf16_runs"].as_object().unwrap() {
        let steps = steps.as_u64().unwrap() as usize;
        let prefix = format!("{case}/n{steps}_bf16");
        let config = &f.meta["cases"][case];
        let (end, worst) = run_and_compare(config, &prefix, steps, true, true);
        assert!(end.rel <= RUN_TOLERANCE, "{prefix} final sample: {end:?}");
        report.push(format!("{prefix}: final {end:?}, worst step {worst:?}"));
    }
    println!("{}", report.join("\n"));
}

#[test]
fn flow_euler_is_exact() {
    // One rounding per operation, the same ones torch does: nothing may differ.
    let f = fixtures();
    for (case, config) in f.cases() {
        if config["_class_name"] != "FlowMatchEulerDiscreteScheduler" {
            continue;
        }
        for steps in [10, 50] {
            let (end, _) = run_and_compare(
                &config,
                &format!("{case}/n{steps}"),
                steps,
                steps == 10,
                false,
            );
            assert_eq!(end.abs, 0.0, "{case}/n{steps}");
        }
        if f.meta["bf16_runs"].get(&case).is_some() {
            let (end, _) = run_and_compare(&config, &format!("{case}/n10_bf16"), 10, true, true);
            assert_eq!(end.abs, 0.0, "{case}/n10_bf16");
        }
    }
}

fn wan_unipc_config() -> Value {
    fixtures().meta["cases"]["unipc_shift3"].clone()
}

#[test]
fn unipc_final_step_is_first_order() {
    let f = fixtures();
    for steps in 1..=12 {
        let Scheduler::UniPc(mut s) = scheduler(&wan_unipc_config(), steps) else {
            panic!("not UniPC");
        };
        assert_eq!(s.last_step_order(), None);
        let mut sample = f.tensor("initial_sample").clone();
        let mut orders = Vec::new();
        for (i, &t) in s.timesteps().to_vec().iter().enumerate() {
            let model_output = f.model_output(i);
            let next = s.step(&model_output, t, &sample).unwrap();
            orders.push(s.last_step_order().unwrap());
            if i == steps - 1 {
                // First order into sigma = 0 lands exactly on the x0 prediction of the sample
                // the step was given: sample - sigma * velocity.
                let sigma = s.sigmas()[i];
                let x0 = (&sample - (model_output * sigma as f64).unwrap()).unwrap();
                assert_eq!(Error::of(&next, &x0).abs, 0.0, "{steps} steps");
            }
            sample = next;
        }
        // Warm-up at first order, second order after, first order at the end.
        let mut expected = vec![2; steps];
        expected[0] = 1;
        expected[steps - 1] = 1;
        assert_eq!(orders, expected, "{steps} steps");
    }
}

#[test]
fn without_lower_order_final_the_last_step_stays_second_order() {
    let mut config = wan_unipc_config();
    config["lower_order_final"] = json!(false);
    config["final_sigmas_type"] = json!("sigma_min");
    let Scheduler::UniPc(mut s) = scheduler(&config, 4) else {
        panic!("not UniPC");
    };
    let f = fixtures();
    let mut sample = f.tensor("initial_sample").clone();
    for (i, &t) in s.timesteps().to_vec().iter().enumerate() {
        sample = s.step(&f.model_output(i), t, &sample).unwrap();
    }
    assert_eq!(s.last_step_order(), Some(2));
}

fn config_error(config: Value) -> String {
    Scheduler::from_config(&config).unwrap_err().to_string()
}

#[test]
fn configs_we_do_not_implement_are_refused() {
    let unipc = wan_unipc_config();
    let with = |key: &str, value: Value| {
        let mut config = unipc.clone();
        config[key] = value;
        config
    };
    for (key, value) in [
        ("use_karras_sigmas", json!(true)),
        ("use_exponential_sigmas", json!(true)),
        ("use_beta_sigmas", json!(true)),
        ("thresholding", json!(true)),
        ("prediction_type", json!("epsilon")),
        ("prediction_type", json!("v_prediction")),
        ("use_flow_sigmas", json!(false)),
        ("predict_x0", json!(false)),
        ("solver_order", json!(3)),
        ("solver_type", json!("bh3")),
        ("final_sigmas_type", json!("sigma_max")),
        ("use_dynamic_shifting", json!(true)),
        ("shift_terminal", json!(0.1)),
        ("timestep_spacing", json!("cosine")),
        ("beta_schedule", json!("sigmoid")),
        ("solver_p", json!({"_class_name": "DDIMScheduler"})),
        ("flow_shift", json!(-1.0)),
        ("rescale_zero_terminal_snr", json!(false)),
    ] {
        let message = config_error(with(key, value.clone()));
        assert!(message.contains(key), "{key} = {value}: {message}");
        assert!(message.contains("UniPCMultistepScheduler"), "{message}");
    }

    let flow: Value = fixtures().meta["cases"]["flow_euler_shift3"].clone();
    for (key, value) in [
        ("use_dynamic_shifting", json!(true)),
        ("stochastic_sampling", json!(true)),
        ("invert_sigmas", json!(true)),
        ("use_karras_sigmas", json!(true)),
        ("shift_terminal", json!(0.02)),
        ("time_shift_type", json!("cubic")),
        ("shift", json!(0.0)),
        ("flow_shift", json!(3.0)),
    ] {
        let mut config = flow.clone();
        config[key] = value.clone();
        let message = config_error(config);
        assert!(message.contains(key), "{key} = {value}: {message}");
        assert!(
            message.contains("FlowMatchEulerDiscreteScheduler"),
            "{message}"
        );
    }
}

#[test]
fn unknown_or_missing_class_is_refused() {
    let mut config = wan_unipc_config();
    config["_class_name"] = json!("DPMSolverMultistepScheduler");
    let message = config_error(config);
    assert!(message.contains("DPMSolverMultistepScheduler"), "{message}");
    assert!(message.contains("not supported"), "{message}");

    let mut config = wan_unipc_config();
    config.as_object_mut().unwrap().remove("_class_name");
    assert!(config_error(config).contains("_class_name"));
}

#[test]
fn settings_without_effect_on_flow_sigmas_are_accepted() {
    // Diffusers reads these only for the variance-preserving schedule or not at all here.
    let mut config = wan_unipc_config();
    config["beta_schedule"] = json!("scaled_linear");
    config["rescale_betas_zero_snr"] = json!(true);
    config["timestep_spacing"] = json!("trailing");
    config["steps_offset"] = json!(1);
    config["sigma_min"] = json!(0.002);
    config["_diffusers_version"] = json!("0.99.0");
    let changed = scheduler(&config, 10);
    let wan = scheduler(&wan_unipc_config(), 10);
    assert_eq!(changed.timesteps(), wan.timesteps());
    assert_eq!(changed.sigmas(), wan.sigmas());
}

#[test]
fn steps_must_follow_the_schedule() {
    let f = fixtures();
    let sample = f.tensor("initial_sample").clone();
    let output = f.model_output(0);
    for (_, config) in f.cases() {
        let mut s = Scheduler::from_config(&config).unwrap();
        let message = s.step(&output, 999.0, &sample).unwrap_err().to_string();
        assert!(message.contains("set_timesteps"), "{message}");

        s.set_timesteps(2).unwrap();
        let [t0, t1] = [s.timesteps()[0], s.timesteps()[1]];
        let message = s.step(&output, t1, &sample).unwrap_err().to_string();
        assert!(message.contains("expects timestep"), "{message}");
        s.step(&output, t0, &sample).unwrap();
        s.step(&output, t1, &sample).unwrap();
        let message = s.step(&output, t1, &sample).unwrap_err().to_string();
        assert!(message.contains("all 2 steps"), "{message}");

        // set_timesteps starts over, and gives the same results.
        s.set_timesteps(2).unwrap();
        let again = s.step(&output, t0, &sample).unwrap();
        let mut fresh = scheduler(&config, 2);
        let first = fresh.step(&output, t0, &sample).unwrap();
        assert_eq!(Error::of(&again, &first).abs, 0.0);
        assert!(s.set_timesteps(0).is_err());
    }
}

#[test]
fn reads_the_model_folder_config() {
    let dir = std::env::temp_dir().join(format!("genclip-schedulers-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("scheduler")).unwrap();
    let file = dir.join("scheduler/scheduler_config.json");
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&wan_unipc_config()).unwrap(),
    )
    .unwrap();
    let s = Scheduler::from_model_dir(&dir).unwrap();
    assert_eq!(s.class_name(), UniPcMultistepScheduler::CLASS_NAME);

    std::fs::write(
        &file,
        "{\"_class_name\": \"UniPCMultistepScheduler\", \"thresholding\": true",
    )
    .unwrap();
    let message = Scheduler::from_model_dir(&dir).unwrap_err().to_string();
    assert!(message.contains("scheduler_config.json"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}
