//! `UniPCMultistepScheduler` with flow sigmas, as Wan2.1 configures it.
//!
//! UniPC (Zhao et al. 2023) is a multistep solver: each step first *corrects* the sample it is
//! given with the model output just computed there (UniC), then *predicts* the next sample
//! from the latest x0 predictions (UniP). With `flow_prediction` the model output is a
//! velocity, x0 = sample - sigma * output, and alpha = 1 - sigma.
//!
//! Numerics follow Diffusers: the schedule is computed in float64 and stored as float32
//! sigmas and integer (truncated) timesteps; the per-step coefficients are float32 scalar
//! arithmetic, with `log`/`expm1` rounded correctly from f64 (torch's CPU `log` is MKL's,
//! which is not always correctly rounded, so coefficients can differ from Diffusers' by one
//! float32 ulp); the 2x2 solve of the second-order corrector rounds as MKL's `sgesv` does.

use super::{
    divide, expect_timestep, numpy_linspace, parse_config, scale, scale_model_output, unsupported,
};
use candle_core::{bail, DType, Result, Tensor};
use serde::Deserialize;
use serde_json::Value;

/// The keys of Diffusers 0.42.1's `UniPCMultistepScheduler.__init__`, with its defaults.
/// Keys that only the variance-preserving (non-flow) schedule reads are accepted whatever
/// their value: with `use_flow_sigmas` they change nothing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UniPcConfig {
    pub num_train_timesteps: usize,
    pub beta_start: f64,
    pub beta_end: f64,
    pub beta_schedule: String,
    pub trained_betas: Option<Vec<f64>>,
    pub solver_order: usize,
    pub prediction_type: String,
    pub thresholding: bool,
    pub dynamic_thresholding_ratio: f64,
    pub sample_max_value: f64,
    pub predict_x0: bool,
    pub solver_type: String,
    pub lower_order_final: bool,
    /// Steps whose corrector is skipped: at step `i`, the correction of step `i - 1`'s
    /// prediction is skipped when `i - 1` is listed.
    pub disable_corrector: Vec<i64>,
    pub solver_p: Option<Value>,
    pub use_karras_sigmas: bool,
    pub use_exponential_sigmas: bool,
    pub use_beta_sigmas: bool,
    pub use_flow_sigmas: bool,
    pub flow_shift: f64,
    pub timestep_spacing: String,
    pub steps_offset: i64,
    pub final_sigmas_type: String,
    pub rescale_betas_zero_snr: bool,
    pub use_dynamic_shifting: bool,
    pub time_shift_type: String,
    pub sigma_min: Option<f64>,
    pub sigma_max: Option<f64>,
    pub shift_terminal: Option<f64>,
}

impl Default for UniPcConfig {
    fn default() -> Self {
        UniPcConfig {
            num_train_timesteps: 1000,
            beta_start: 0.0001,
            beta_end: 0.02,
            beta_schedule: "linear".into(),
            trained_betas: None,
            solver_order: 2,
            prediction_type: "epsilon".into(),
            thresholding: false,
            dynamic_thresholding_ratio: 0.995,
            sample_max_value: 1.0,
            predict_x0: true,
            solver_type: "bh2".into(),
            lower_order_final: true,
            disable_corrector: Vec::new(),
            solver_p: None,
            use_karras_sigmas: false,
            use_exponential_sigmas: false,
            use_beta_sigmas: false,
            use_flow_sigmas: false,
            flow_shift: 1.0,
            timestep_spacing: "linspace".into(),
            steps_offset: 0,
            final_sigmas_type: "zero".into(),
            rescale_betas_zero_snr: false,
            use_dynamic_shifting: false,
            time_shift_type: "exponential".into(),
            sigma_min: None,
            sigma_max: None,
            shift_terminal: None,
        }
    }
}

/// B(h) of the UniPC update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolverType {
    /// B(h) = h.
    Bh1,
    /// B(h) = e^h - 1.
    Bh2,
}

/// What the final sigma (after the last step) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalSigma {
    Zero,
    /// The last sigma of the schedule repeated.
    SigmaMin,
}

impl UniPcConfig {
    /// Refuses every setting that makes Diffusers compute something this module does not.
    fn check(&self) -> Result<()> {
        let class = UniPcMultistepScheduler::CLASS_NAME;
        let no = |key: &str, value: &dyn std::fmt::Debug, supported: &str| {
            Err(unsupported(class, key, value, supported))
        };
        if self.num_train_timesteps == 0 {
            return no("num_train_timesteps", &0, "it must be positive");
        }
        // Diffusers refuses these in its constructor even though flow sigmas never read them.
        if self.trained_betas.is_none()
            && !["linear", "scaled_linear", "squaredcos_cap_v2"]
                .contains(&self.beta_schedule.as_str())
        {
            return no(
                "beta_schedule",
                &self.beta_schedule,
                "linear, scaled_linear or squaredcos_cap_v2",
            );
        }
        if !matches!(
            self.timestep_spacing.as_str(),
            "linspace" | "leading" | "trailing"
        ) {
            return no(
                "timestep_spacing",
                &self.timestep_spacing,
                "linspace, leading or trailing",
            );
        }
        if !self.use_flow_sigmas {
            return no(
                "use_flow_sigmas",
                &false,
                "only the flow-matching schedule (true) is implemented",
            );
        }
        if self.prediction_type != "flow_prediction" {
            return no(
                "prediction_type",
                &self.prediction_type,
                "only flow_prediction is implemented",
            );
        }
        if !self.predict_x0 {
            return no(
                "predict_x0",
                &false,
                "only the x0 form (true) is implemented",
            );
        }
        if self.thresholding {
            return no(
                "thresholding",
                &true,
                "dynamic thresholding is not implemented",
            );
        }
        if !matches!(self.solver_order, 1 | 2) {
            return no(
                "solver_order",
                &self.solver_order,
                "orders 1 and 2 are implemented; Wan uses 2",
            );
        }
        self.solver_type()?;
        self.final_sigma()?;
        if self.solver_p.as_ref().is_some_and(|v| !v.is_null()) {
            return no(
                "solver_p",
                &self.solver_p,
                "an external predictor is not implemented",
            );
        }
        for (key, on) in [
            ("use_karras_sigmas", self.use_karras_sigmas),
            ("use_exponential_sigmas", self.use_exponential_sigmas),
            ("use_beta_sigmas", self.use_beta_sigmas),
        ] {
            if on {
                return no(key, &true, "only the flow-matching sigmas are implemented");
            }
        }
        if self.use_dynamic_shifting {
            return no(
                "use_dynamic_shifting",
                &true,
                "resolution-dependent shifting is not implemented; use flow_shift",
            );
        }
        if self.shift_terminal.is_some_and(|v| v != 0.0) {
            return no(
                "shift_terminal",
                &self.shift_terminal,
                "stretching the schedule to a terminal value is not implemented",
            );
        }
        if !(self.flow_shift.is_finite() && self.flow_shift > 0.0) {
            return no(
                "flow_shift",
                &self.flow_shift,
                "it must be a positive number",
            );
        }
        Ok(())
    }

    pub fn solver_type(&self) -> Result<SolverType> {
        match self.solver_type.as_str() {
            "bh1" => Ok(SolverType::Bh1),
            // Diffusers maps the DPM-Solver names to bh2.
            "bh2" | "midpoint" | "heun" | "logrho" => Ok(SolverType::Bh2),
            other => Err(unsupported(
                UniPcMultistepScheduler::CLASS_NAME,
                "solver_type",
                other,
                "bh1 or bh2",
            )),
        }
    }

    pub fn final_sigma(&self) -> Result<FinalSigma> {
        match self.final_sigmas_type.as_str() {
            "zero" => Ok(FinalSigma::Zero),
            "sigma_min" => Ok(FinalSigma::SigmaMin),
            other => Err(unsupported(
                UniPcMultistepScheduler::CLASS_NAME,
                "final_sigmas_type",
                other,
                "zero or sigma_min",
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct UniPcMultistepScheduler {
    config: UniPcConfig,
    solver_type: SolverType,
    final_sigma: FinalSigma,
    timesteps: Vec<i64>,
    timesteps_f64: Vec<f64>,
    sigmas: Vec<f32>,
    /// Index of the next step; None before set_timesteps.
    step_index: Option<usize>,
    /// The x0 predictions of the latest steps (f32), oldest first, at most solver_order.
    x0_predictions: Vec<Tensor>,
    /// The (corrected) sample the previous step started its prediction from.
    last_sample: Option<Tensor>,
    /// Steps taken so far, capped at solver_order: the warm-up limit on the order.
    lower_order_nums: usize,
    /// The order of the previous step's prediction, which its correction uses too.
    this_order: usize,
}

impl UniPcMultistepScheduler {
    pub const CLASS_NAME: &'static str = "UniPCMultistepScheduler";

    pub fn from_config(config: &Value) -> Result<Self> {
        Self::new(parse_config(config, Self::CLASS_NAME)?)
    }

    pub fn new(config: UniPcConfig) -> Result<Self> {
        config.check()?;
        Ok(UniPcMultistepScheduler {
            solver_type: config.solver_type()?,
            final_sigma: config.final_sigma()?,
            config,
            timesteps: Vec::new(),
            timesteps_f64: Vec::new(),
            sigmas: Vec::new(),
            step_index: None,
            x0_predictions: Vec::new(),
            last_sample: None,
            lower_order_nums: 0,
            this_order: 0,
        })
    }

    pub fn config(&self) -> &UniPcConfig {
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
        let shift = self.config.flow_shift;
        let mut sigmas = numpy_linspace(1.0, 1.0 / train_steps, num_inference_steps + 1);
        sigmas.pop();
        for sigma in &mut sigmas {
            *sigma = shift * *sigma / (1.0 + (shift - 1.0) * *sigma);
        }
        // Diffusers keeps the first sigma just under 1 so that log(1 - sigma) stays finite.
        if (sigmas[0] - 1.0).abs() < 1e-6 {
            sigmas[0] -= 1e-6;
        }
        // numpy's astype(int64) truncates toward zero.
        self.timesteps = sigmas.iter().map(|s| (s * train_steps) as i64).collect();
        self.timesteps_f64 = self.timesteps.iter().map(|&t| t as f64).collect();
        let last = match self.final_sigma {
            FinalSigma::Zero => 0.0,
            FinalSigma::SigmaMin => sigmas[sigmas.len() - 1],
        };
        sigmas.push(last);
        self.sigmas = sigmas.iter().map(|&s| s as f32).collect();
        self.step_index = Some(0);
        self.x0_predictions.clear();
        self.last_sample = None;
        self.lower_order_nums = 0;
        Ok(())
    }

    /// The timesteps as Diffusers holds them (int64).
    pub fn integer_timesteps(&self) -> &[i64] {
        &self.timesteps
    }

    pub fn timesteps(&self) -> &[f64] {
        &self.timesteps_f64
    }

    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    /// The order of the latest step's prediction (Diffusers' `this_order`); None before the
    /// first step.
    pub fn last_step_order(&self) -> Option<usize> {
        (self.step_index.unwrap_or(0) > 0).then_some(self.this_order)
    }

    /// One step. `sample` may be any float dtype (the arithmetic is f32; the result has the
    /// sample's dtype); `model_output` f32, bf16 or f16.
    pub fn step(
        &mut self,
        model_output: &Tensor,
        timestep: f64,
        sample: &Tensor,
    ) -> Result<Tensor> {
        let i = expect_timestep(
            Self::CLASS_NAME,
            &self.timesteps_f64,
            self.step_index,
            timestep,
        )?;
        let sample_f32 = sample.to_dtype(DType::F32)?;
        // x0 = sample - sigma * velocity, from the sample as given (before its correction).
        let x0 = (&sample_f32 - scale_model_output(model_output, self.sigmas[i])?)?;

        let skip_corrector = self.config.disable_corrector.contains(&(i as i64 - 1));
        let sample_f32 = match &self.last_sample {
            Some(last_sample) if i > 0 && !skip_corrector => self.correct(i, &x0, last_sample)?,
            _ => sample_f32,
        };

        self.x0_predictions.push(x0);
        if self.x0_predictions.len() > self.config.solver_order {
            self.x0_predictions.remove(0);
        }
        let mut order = self.config.solver_order;
        if self.config.lower_order_final {
            // The last steps drop to lower orders; the very last one is first order.
            order = order.min(self.timesteps.len() - i);
        }
        self.this_order = order.min(self.lower_order_nums + 1);

        let prev_sample = self.predict(i, &sample_f32)?;
        self.last_sample = Some(sample_f32);
        if self.lower_order_nums < self.config.solver_order {
            self.lower_order_nums += 1;
        }
        self.step_index = Some(i + 1);
        prev_sample.to_dtype(sample.dtype())
    }

    /// UniP: from the sample at sigmas[i] to sigmas[i + 1], with order `this_order`.
    fn predict(&self, i: usize, sample: &Tensor) -> Result<Tensor> {
        let order = self.this_order;
        let history: Vec<f32> = (1..order).map(|k| self.sigmas[i - k]).collect();
        let c = BhCoefficients::new(
            self.sigmas[i + 1],
            self.sigmas[i],
            &history,
            order,
            self.solver_type,
        );
        let m0 = self.x0_prediction(0);
        let x_t = c.base_update(sample, m0)?;
        if order == 1 {
            return Ok(x_t);
        }
        // Order 2: Diffusers takes rho = 0.5 rather than solving for it.
        let d1 = divide(&(self.x0_prediction(1) - m0)?, c.rks[0])?;
        x_t - scale(&scale(&d1, 0.5)?, c.correction_scale())?
    }

    /// UniC: redoes the previous step, from `last_sample` at sigmas[i - 1] to sigmas[i], now
    /// also using the model's x0 prediction at sigmas[i]; the result replaces the sample.
    fn correct(&self, i: usize, x0: &Tensor, last_sample: &Tensor) -> Result<Tensor> {
        let order = self.this_order;
        let history: Vec<f32> = (1..order).map(|k| self.sigmas[i - (k + 1)]).collect();
        let c = BhCoefficients::new(
            self.sigmas[i],
            self.sigmas[i - 1],
            &history,
            order,
            self.solver_type,
        );
        let m0 = self.x0_prediction(0);
        let x_t = c.base_update(last_sample, m0)?;
        let (rho_history, rho_now) = match order {
            1 => (None, 0.5),
            2 => {
                let [r0, r1] = solve_2x2_like_mkl([[1.0, 1.0], [c.rks[0], 1.0]], [c.b[0], c.b[1]]);
                (Some(r0), r1)
            }
            _ => unreachable!("solver_order is checked to be 1 or 2"),
        };
        let d1_t = (x0 - m0)?;
        let mut correction = scale(&d1_t, rho_now)?;
        if let Some(rho) = rho_history {
            let d1 = divide(&(self.x0_prediction(1) - m0)?, c.rks[0])?;
            correction = (scale(&d1, rho)? + correction)?;
        }
        x_t - scale(&correction, c.correction_scale())?
    }

    /// The x0 prediction `k` steps back (0 = the latest).
    fn x0_prediction(&self, k: usize) -> &Tensor {
        &self.x0_predictions[self.x0_predictions.len() - 1 - k]
    }
}

/// The scalar coefficients of one UniPC update from sigma_s0 to sigma_t, in float32 as
/// Diffusers computes them (0-dim float32 tensors), for the x0 (predict_x0) form.
#[derive(Debug)]
struct BhCoefficients {
    sigma_t: f32,
    sigma_s0: f32,
    alpha_t: f32,
    /// e^(-h) - 1, with h the step in log-SNR (lambda).
    h_phi_1: f32,
    b_h: f32,
    /// (lambda_k - lambda_s0) / h for the earlier sigmas.
    rks: Vec<f32>,
    /// The right-hand side of the order conditions, one per order.
    b: Vec<f32>,
}

impl BhCoefficients {
    fn new(
        sigma_t: f32,
        sigma_s0: f32,
        history: &[f32],
        order: usize,
        solver_type: SolverType,
    ) -> Self {
        let lambda_t = lambda(sigma_t);
        let lambda_s0 = lambda(sigma_s0);
        let h = lambda_t - lambda_s0;
        let rks = history
            .iter()
            .map(|&s| (lambda(s) - lambda_s0) / h)
            .collect();
        let hh = -h;
        let h_phi_1 = expm1_f32(hh);
        let b_h = match solver_type {
            SolverType::Bh1 => hh,
            SolverType::Bh2 => expm1_f32(hh),
        };
        let mut h_phi_k = h_phi_1 / hh - 1.0;
        let mut factorial: u64 = 1;
        let mut b = Vec::with_capacity(order);
        for i in 1..=order as u64 {
            b.push(h_phi_k * factorial as f32 / b_h);
            factorial *= i + 1;
            // Python's 1 / factorial is a float64, rounded to float32 against the tensor.
            h_phi_k = h_phi_k / hh - (1.0 / factorial as f64) as f32;
        }
        BhCoefficients {
            sigma_t,
            sigma_s0,
            alpha_t: 1.0 - sigma_t,
            h_phi_1,
            b_h,
            rks,
            b,
        }
    }

    /// `sigma_t / sigma_s0 * x - alpha_t * h_phi_1 * m0`, the first-order part.
    fn base_update(&self, x: &Tensor, m0: &Tensor) -> Result<Tensor> {
        scale(x, self.sigma_t / self.sigma_s0)? - scale(m0, self.alpha_t * self.h_phi_1)?
    }

    /// `alpha_t * B(h)`, the factor of the higher-order terms.
    fn correction_scale(&self) -> f32 {
        self.alpha_t * self.b_h
    }
}

/// log-SNR of a flow sigma: log(alpha) - log(sigma) with alpha = 1 - sigma (f32).
fn lambda(sigma: f32) -> f32 {
    ln_f32(1.0 - sigma) - ln_f32(sigma)
}

/// Correctly rounded float32 logarithm (log(0) = -inf).
fn ln_f32(x: f32) -> f32 {
    (x as f64).ln() as f32
}

/// Correctly rounded float32 e^x - 1.
fn expm1_f32(x: f32) -> f32 {
    (x as f64).exp_m1() as f32
}

/// `torch.linalg.solve` of a 2x2 float32 system as MKL's `sgesv` rounds it (checked against
/// torch 2.15): LU with partial pivoting (rows swap when the lower first entry is larger in
/// magnitude), and divisions by the diagonal done as multiplications by its reciprocal.
fn solve_2x2_like_mkl(a: [[f32; 2]; 2], b: [f32; 2]) -> [f32; 2] {
    let (a, b) = if a[1][0].abs() > a[0][0].abs() {
        ([a[1], a[0]], [b[1], b[0]])
    } else {
        (a, b)
    };
    let inv_u00 = 1.0 / a[0][0];
    let l10 = a[1][0] * inv_u00;
    let u11 = a[1][1] - l10 * a[0][1];
    let y1 = b[1] - l10 * b[0];
    let x1 = y1 * (1.0 / u11);
    let x0 = (b[0] - a[0][1] * x1) * inv_u00;
    [x0, x1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn solve_2x2_solves() {
        for rk in [-0.3f32, -1.0, -2.5] {
            let b = [0.4f32, 0.1];
            let [x0, x1] = solve_2x2_like_mkl([[1.0, 1.0], [rk, 1.0]], b);
            assert!((x0 + x1 - b[0]).abs() < 1e-6);
            assert!((rk * x0 + x1 - b[1]).abs() < 1e-6);
        }
    }

    #[test]
    fn first_sigma_stays_below_one() {
        let mut s = UniPcMultistepScheduler::from_config(&json!({
            "use_flow_sigmas": true, "prediction_type": "flow_prediction", "flow_shift": 3.0
        }))
        .unwrap();
        s.set_timesteps(4).unwrap();
        assert_eq!(s.sigmas()[0], (1.0f64 - 1e-6) as f32);
        assert_eq!(s.integer_timesteps()[0], 999);
        assert_eq!(*s.sigmas().last().unwrap(), 0.0);
    }

    #[test]
    fn lambda_of_zero_sigma_is_infinite() {
        assert_eq!(lambda(0.0), f32::INFINITY);
        assert!(lambda(0.5).abs() < 1e-7);
    }
}
