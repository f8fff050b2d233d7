//! Denoising schedulers, numerically equal to Hugging Face Diffusers (0.42.1) on the CPU.
//!
//! A model folder names its scheduler in `scheduler/scheduler_config.json` (`_class_name`);
//! [`Scheduler::from_config`] builds it, refusing any setting that would make Diffusers
//! compute something we do not (see `docs/schedulers.md`). The engine then runs:
//!
//! ```text
//! scheduler.set_timesteps(steps)?;
//! for t in scheduler.timesteps().to_vec() {
//!     let velocity = transformer.forward(&latents, t)?; // after classifier-free guidance
//!     latents = scheduler.step(&velocity, t, &latents)?;
//! }
//! ```
//!
//! Steps run in order from the first timestep, as `WanPipeline` runs them (it calls
//! `set_begin_index(0)`); `step` checks that it is given the timestep it expects.

pub mod flow_euler;
pub mod unipc;

pub use flow_euler::FlowMatchEulerDiscreteScheduler;
pub use unipc::UniPcMultistepScheduler;

use candle_core::{bail, DType, Error, Result, Tensor};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::path::Path;

/// A scheduler built from a Diffusers `scheduler_config.json`.
#[derive(Debug, Clone)]
pub enum Scheduler {
    UniPc(Box<UniPcMultistepScheduler>),
    FlowMatchEuler(FlowMatchEulerDiscreteScheduler),
}

impl Scheduler {
    /// Reads `<model_dir>/scheduler/scheduler_config.json`.
    pub fn from_model_dir(model_dir: &Path) -> Result<Scheduler> {
        Scheduler::from_config_file(&model_dir.join("scheduler").join("scheduler_config.json"))
    }

    pub fn from_config_file(path: &Path) -> Result<Scheduler> {
        let config = Scheduler::read_config_file(path)?;
        Scheduler::from_config(&config).map_err(|e| Error::msg(format!("{}: {e}", path.display())))
    }

    /// A `scheduler_config.json` as JSON, unchecked (the engine derives other schedulers'
    /// configs from the model's).
    pub fn read_config_file(path: &Path) -> Result<Value> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::msg(format!("cannot read {}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::msg(format!("{} is not valid JSON: {e}", path.display())))
    }

    /// Builds the scheduler `_class_name` names from a config object.
    pub fn from_config(config: &Value) -> Result<Scheduler> {
        let class = config
            .get("_class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::msg("scheduler config has no `_class_name`"))?;
        match class {
            UniPcMultistepScheduler::CLASS_NAME => Ok(Scheduler::UniPc(Box::new(
                UniPcMultistepScheduler::from_config(config)?,
            ))),
            FlowMatchEulerDiscreteScheduler::CLASS_NAME => Ok(Scheduler::FlowMatchEuler(
                FlowMatchEulerDiscreteScheduler::from_config(config)?,
            )),
            other => bail!(
                "scheduler `_class_name` {other:?} is not supported; GenClip implements {} and {}",
                UniPcMultistepScheduler::CLASS_NAME,
                FlowMatchEulerDiscreteScheduler::CLASS_NAME
            ),
        }
    }

    pub fn class_name(&self) -> &'static str {
        match self {
            Scheduler::UniPc(_) => UniPcMultistepScheduler::CLASS_NAME,
            Scheduler::FlowMatchEuler(_) => FlowMatchEulerDiscreteScheduler::CLASS_NAME,
        }
    }

    /// Prepares a run of `num_inference_steps` steps and resets the step state.
    pub fn set_timesteps(&mut self, num_inference_steps: usize) -> Result<()> {
        match self {
            Scheduler::UniPc(s) => s.set_timesteps(num_inference_steps),
            Scheduler::FlowMatchEuler(s) => s.set_timesteps(num_inference_steps),
        }
    }

    /// The timesteps to give the model, one per step, with the values Diffusers has (UniPC's
    /// integers and FlowMatchEuler's float32 values are both exact in f64).
    pub fn timesteps(&self) -> &[f64] {
        match self {
            Scheduler::UniPc(s) => s.timesteps(),
            Scheduler::FlowMatchEuler(s) => s.timesteps(),
        }
    }

    /// The noise levels, one per step plus the final one (float32, as in Diffusers).
    pub fn sigmas(&self) -> &[f32] {
        match self {
            Scheduler::UniPc(s) => s.sigmas(),
            Scheduler::FlowMatchEuler(s) => s.sigmas(),
        }
    }

    /// One denoising step: the sample at the next (lower) noise level.
    pub fn step(
        &mut self,
        model_output: &Tensor,
        timestep: f64,
        sample: &Tensor,
    ) -> Result<Tensor> {
        match self {
            Scheduler::UniPc(s) => s.step(model_output, timestep, sample),
            Scheduler::FlowMatchEuler(s) => s.step(model_output, timestep, sample),
        }
    }
}

/// Parses a scheduler config into `T` (which denies unknown fields), after dropping the
/// bookkeeping keys that start with `_`. A key `T` does not know is an error: it comes from a
/// Diffusers version we were not checked against, and could change the results.
fn parse_config<T: DeserializeOwned>(config: &Value, class: &str) -> Result<T> {
    let Value::Object(map) = config else {
        bail!("{class} config is not a JSON object");
    };
    let kept: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_json::from_value(Value::Object(kept)).map_err(|e| {
        Error::msg(format!(
            "{class} config: {e}; GenClip's scheduler follows Diffusers 0.42.1 and does not guess what other settings do"
        ))
    })
}

/// The error for a config value that changes what Diffusers computes in a way we do not.
fn unsupported(class: &str, key: &str, value: impl std::fmt::Debug, supported: &str) -> Error {
    Error::msg(format!(
        "{class} config: `{key}` = {value:?} is not supported ({supported})"
    ))
}

/// `numpy.linspace(start, stop, num)` in float64, rounded step by step as numpy computes it:
/// `i * step + start`, with the last value set to `stop`.
fn numpy_linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let delta = stop - start;
    if num <= 1 {
        return (0..num).map(|i| i as f64 * delta + start).collect();
    }
    let div = (num - 1) as f64;
    let step = delta / div;
    let mut values: Vec<f64> = (0..num)
        .map(|i| {
            let i = i as f64;
            // numpy divides first when the step underflows to zero.
            let offset = if step == 0.0 {
                i / div * delta
            } else {
                i * step
            };
            offset + start
        })
        .collect();
    values[num - 1] = stop;
    values
}

/// `coefficient * tensor` with an f32 coefficient, as torch multiplies by a 0-dim tensor.
fn scale(tensor: &Tensor, coefficient: f32) -> Result<Tensor> {
    tensor.broadcast_mul(&Tensor::new(coefficient, tensor.device())?)
}

/// `tensor / divisor`, a true division like torch's (not a multiplication by the reciprocal).
fn divide(tensor: &Tensor, divisor: f32) -> Result<Tensor> {
    tensor.broadcast_div(&Tensor::new(divisor, tensor.device())?)
}

/// `coefficient * model_output` as Diffusers computes it, returned in f32.
///
/// The coefficient is a 0-dim float32 tensor. Multiplying a bf16/f16 tensor by it, torch
/// keeps the tensor's dtype, rounds the coefficient to that dtype first (it is the left
/// operand), multiplies in f32 and rounds the product back; the f32 sample it is then added
/// to promotes the sum to f32.
fn scale_model_output(model_output: &Tensor, coefficient: f32) -> Result<Tensor> {
    match model_output.dtype() {
        DType::F32 => scale(model_output, coefficient),
        dtype @ (DType::BF16 | DType::F16) => {
            let device = model_output.device();
            let rounded = Tensor::new(coefficient, device)?
                .to_dtype(dtype)?
                .to_dtype(DType::F32)?;
            model_output
                .to_dtype(DType::F32)?
                .broadcast_mul(&rounded)?
                .to_dtype(dtype)?
                .to_dtype(DType::F32)
        }
        other => bail!(
            "scheduler step: model output dtype {other:?} is not supported (f32, bf16 or f16)"
        ),
    }
}

/// Where a step starts: the index of the next step, checked against what the caller passed.
fn expect_timestep(
    class: &str,
    timesteps: &[f64],
    next: Option<usize>,
    timestep: f64,
) -> Result<usize> {
    let Some(index) = next else {
        bail!("{class}: call set_timesteps before step");
    };
    let Some(&expected) = timesteps.get(index) else {
        bail!(
            "{class}: all {} steps have been taken; call set_timesteps to start again",
            timesteps.len()
        );
    };
    if timestep != expected {
        bail!("{class}: step {index} expects timestep {expected}, got {timestep}");
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_matches_numpy() {
        // repr() of numpy.linspace(1, 0.001, 4), of numpy.linspace(1, 0.001, 51)[17] and of
        // numpy.linspace(5.0, 7.0, 1).
        assert_eq!(
            numpy_linspace(1.0, 0.001, 4),
            [1.0, 0.667, 0.33399999999999996, 0.001]
        );
        assert_eq!(numpy_linspace(1.0, 0.001, 51)[17], 0.6603399999999999);
        assert_eq!(numpy_linspace(5.0, 7.0, 1), [5.0]);
        assert!(numpy_linspace(1.0, 2.0, 0).is_empty());
    }

    #[test]
    fn bf16_products_round_like_torch() {
        let device = candle_core::Device::Cpu;
        let output = Tensor::new(&[1.0f32, 3.0, 9.0], &device)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap();
        let product: Vec<f32> = scale_model_output(&output, 0.1).unwrap().to_vec1().unwrap();
        // torch rounds the coefficient 0.1 to bf16 first (205/2048), multiplies in f32 and
        // rounds the product to bf16: 3 * 205/2048 -> 154/512, 9 * 205/2048 -> 231/256 (rounding
        // only the exact 9 * 0.1 would give 230/256).
        assert_eq!(product, [205.0 / 2048.0, 154.0 / 512.0, 231.0 / 256.0]);
    }
}
