//! `FlowMatchEulerDiscreteScheduler`: Euler steps along the flow-matching velocity,
//! x(sigma_next) = x(sigma) + (sigma_next - sigma) * velocity.
//!
//! Numerics follow Diffusers: the constructor computes the training schedule's end sigmas in
//! float32; `set_timesteps` spaces timesteps linearly between them in float64, applies the
//! shift (a second time: the ends were already shifted), and stores float32 sigmas and
//! float32 timesteps = sigma * num_train_timesteps. `step` works in f32 and returns the
//! model output's dtype, as Diffusers does.

use super::{expect_timestep, numpy_linspace, parse_config, scale_model_output, unsupported};
use candle_core::{bail, DType, Result, Tensor};
use serde::Deserialize;
use serde_json::Value;

/// The keys of Diffusers 0.42.1's `FlowMatchEulerDiscreteScheduler.__init__`, with its
/// defaults. `base_shift`, `max_shift`, `base_image_seq_len` and `max_image_seq_len` only
/// matter with dynamic shifting, which is refused.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowMatchEulerConfig {
    pub num_train_timesteps: usize,
    pub shift: f64,
    pub use_dynamic_shifting: bool,
    pub base_shift: Option<f64>,
    pub max_shift: Option<f64>,
    pub base_image_seq_len: usize,
    pub max_image_seq_len: usize,
    pub invert_sigmas: bool,
    pub shift_terminal: Option<f64>,
    pub use_karras_sigmas: bool,
    pub use_exponential_sigmas: bool,
    pub use_beta_sigmas: bool,
    pub time_shift_type: String,
    pub stochastic_sampling: bool,
}

impl Default for FlowMatchEulerConfig {
    fn default() -> Self {
        FlowMatchEulerConfig {
            num_train_timesteps: 1000,
            shift: 1.0,
            use_dynamic_shifting: false,
            base_shift: Some(0.5),
            max_shift: Some(1.15),
            base_image_seq_len: 256,
            max_image_seq_len: 4096,
            invert_sigmas: false,
            shift_terminal: None,
            use_karras_sigmas: false,
            use_exponential_sigmas: false,
            use_beta_sigmas: false,
            time_shift_type: "exponential".into(),
            stochastic_sampling: false,
        }
    }
}

impl FlowMatchEulerConfig {
    /// Refuses every setting that makes Diffusers compute something this module does not.
    fn check(&self) -> Result<()> {
        let class = FlowMatchEulerDiscreteScheduler::CLASS_NAME;
        let no = |key: &str, value: &dyn std::fmt::Debug, supported: &str| {
            Err(unsupported(class, key, value, supported))
        };
        if self.num_train_timesteps == 0 {
            return no("num_train_timesteps", &0, "it must be positive");
        }
        // Diffusers validates this in its constructor; without dynamic shifting it is unused.
        if !matches!(self.time_shift_type.as_str(), "exponential" | "linear") {
            return no(
                "time_shift_type",
                &self.time_shift_type,
                "exponential or linear",
            );
        }
        if self.use_dynamic_shifting {
            return no(
                "use_dynamic_shifting",
                &true,
                "resolution-dependent shifting is not implemented; use shift",
            );
        }
        if self.invert_sigmas {
            return no(
                "invert_sigmas",
                &true,
                "inverted schedules are not implemented",
            );
        }
        if self.shift_terminal.is_some_and(|v| v != 0.0) {
            return no(
                "shift_terminal",
                &self.shift_terminal,
                "stretching the schedule to a terminal value is not implemented",
            );
        }
        for (key, on) in [
            ("use_karras_sigmas", self.use_karras_sigmas),
            ("use_exponential_sigmas", self.use_exponential_sigmas),
            ("use_beta_sigmas", self.use_beta_sigmas),
        ] {
            if on {
                return no(
                    key,
                    &true,
                    "only the shifted linear schedule is implemented",
                );
            }
        }
        if self.stochastic_sampling {
            return no(
                "stochastic_sampling",
                &true,
                "stochastic sampling is not implemented",
            );
        }
        if !(self.shift.is_finite() && self.shift > 0.0) {
            return no("shift", &self.shift, "it must be a positive number");
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct FlowMatchEulerDiscreteScheduler {
    config: FlowMatchEulerConfig,
    /// The training schedule's first and last sigmas, float32 as Diffusers' constructor has them.
    sigma_max: f32,
    sigma_min: f32,
    timesteps: Vec<f64>,
    sigmas: Vec<f32>,
    /// Index of the next step; None before set_timesteps.
    step_index: Option<usize>,
}

impl FlowMatchEulerDiscreteScheduler {
    pub const CLASS_NAME: &'static str = "FlowMatchEulerDiscreteScheduler";

    pub fn from_config(config: &Value) -> Result<Self> {
        Self::new(parse_config(config, Self::CLASS_NAME)?)
    }

    pub fn new(config: FlowMatchEulerConfig) -> Result<Self> {
        config.check()?;
        // The training timesteps run from num_train_timesteps down to 1; their sigmas are
        // t / num_train_timesteps, shifted, all in float32 (torch tensors).
        let train_steps = config.num_train_timesteps as f32;
        let shift = config.shift as f32;
        let shift_minus_one = (config.shift - 1.0) as f32;
        let shifted = |sigma: f32| shift * sigma / (1.0 + shift_minus_one * sigma);
        Ok(FlowMatchEulerDiscreteScheduler {
            // The first training timestep is num_train_timesteps itself: sigma 1.
            sigma_max: shifted(1.0),
            sigma_min: shifted(1.0 / train_steps),
            config,
            timesteps: Vec::new(),
            sigmas: Vec::new(),
            step_index: None,
        })
    }

    pub fn config(&self) -> &FlowMatchEulerConfig {
        &self.config
    }

    pub fn set_timesteps(&mut self, num_inference_steps: usize) -> Result<()> {
        if num_inference_steps == 0 {
            bail!(
                "{}: the number of steps must be at least 1",
                Self::CLASS_NAME
            );
        }
        let train_steps = self.config.num_train_timesteps as f64;
        let shift = self.config.shift;
        let timesteps = numpy_linspace(
            self.sigma_max as f64 * train_steps,
            self.sigma_min as f64 * train_steps,
            num_inference_steps,
        );
        let mut sigmas: Vec<f32> = timesteps
            .iter()
            .map(|t| {
                let sigma = t / train_steps;
                (shift * sigma / (1.0 + (shift - 1.0) * sigma)) as f32
            })
            .collect();
        self.timesteps = sigmas
            .iter()
            .map(|&s| (s * self.config.num_train_timesteps as f32) as f64)
            .collect();
        sigmas.push(0.0);
        self.sigmas = sigmas;
        self.step_index = Some(0);
        Ok(())
    }

    /// The timesteps (float32 values in Diffusers, exact here).
    pub fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    /// One Euler step. The sample is upcast to f32; the result has the model output's dtype
    /// (Diffusers casts it back "to the model's dtype", so bf16 outputs give bf16 latents).
    pub fn step(
        &mut self,
        model_output: &Tensor,
        timestep: f64,
        sample: &Tensor,
    ) -> Result<Tensor> {
        let i = expect_timestep(Self::CLASS_NAME, &self.timesteps, self.step_index, timestep)?;
        let dt = self.sigmas[i + 1] - self.sigmas[i];
        let sample = sample.to_dtype(DType::F32)?;
        let prev_sample = (sample + scale_model_output(model_output, dt)?)?;
        self.step_index = Some(i + 1);
        prev_sample.to_dtype(model_output.dtype())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ends_are_shifted_twice() {
        let mut s = FlowMatchEulerDiscreteScheduler::from_config(&json!({"shift": 3.0})).unwrap();
        assert_eq!(s.sigma_max, 1.0);
        s.set_timesteps(2).unwrap();
        // sigma_min = shift(0.001) ~ 0.002994; the last sigma is shift(sigma_min) ~ 0.008929.
        let last = s.sigmas()[1] as f64;
        let once = 3.0 * 0.001 / (1.0 + 2.0 * 0.001);
        let twice = 3.0 * once / (1.0 + 2.0 * once);
        assert!((last - twice).abs() < 1e-6, "{last} vs {twice}");
        assert_eq!(s.sigmas()[2], 0.0);
    }
}
