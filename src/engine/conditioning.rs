//! The prompts of a clip request and their weights per latent frame, checked and normalised.
//!
//! The plugin sends one row per latent frame, one weight per prompt. Rows are normalised here
//! (in f64, then rounded to f32 for the transformer) so a caller's rounding cannot make a frame
//! weigh 0.999 of a prompt; every check names what to fix.

use crate::client::protocol::ClipRequest;
use candle_core::{bail, Device, Result, Tensor};

/// The distinct prompts and, per latent frame, how much each one weighs (rows sum to 1).
#[derive(Debug, Clone, PartialEq)]
pub struct PromptWeights {
    prompts: Vec<String>,
    /// One row per latent frame, one f32 weight per prompt.
    rows: Vec<Vec<f32>>,
}

impl PromptWeights {
    /// Checks a request's prompts and weights for a clip of `latent_frames` latent frames.
    pub fn from_request(req: &ClipRequest, latent_frames: usize) -> Result<PromptWeights> {
        if req.prompts.is_empty() {
            bail!("the request has no prompt: give at least one prompt");
        }
        if let Some(i) = req.prompts.iter().position(|p| p.trim().is_empty()) {
            bail!(
                "prompt {} of {} is empty: write a prompt or remove it",
                i + 1,
                req.prompts.len()
            );
        }
        if req.weights.len() != latent_frames {
            bail!(
                "the request has {} rows of prompt weights but {} frames make {latent_frames} latent frames: send one row per latent frame",
                req.weights.len(),
                req.frames
            );
        }
        let prompts = req.prompts.len();
        let mut rows = Vec::with_capacity(latent_frames);
        for (frame, row) in req.weights.iter().enumerate() {
            if row.len() != prompts {
                bail!(
                    "the prompt weights of latent frame {frame} have {} values for {prompts} prompts: send one weight per prompt",
                    row.len()
                );
            }
            if let Some(w) = row.iter().find(|w| !w.is_finite() || **w < 0.0) {
                bail!(
                    "latent frame {frame} has the prompt weight {w}: weights must be numbers of 0 or more"
                );
            }
            let sum: f64 = row.iter().sum();
            if sum <= 0.0 || !sum.is_finite() {
                bail!(
                    "every prompt weighs 0 at latent frame {frame}: raise the weight of at least one prompt there"
                );
            }
            rows.push(row.iter().map(|w| (w / sum) as f32).collect());
        }
        Ok(PromptWeights {
            prompts: req.prompts.clone(),
            rows,
        })
    }

    pub fn prompts(&self) -> &[String] {
        &self.prompts
    }

    /// Row `frame`: the weight of each prompt there, summing to 1.
    pub fn row(&self, frame: usize) -> &[f32] {
        &self.rows[frame]
    }

    /// Whether one prompt is the whole conditioning, so the plain (shared-text) path applies.
    pub fn is_single_prompt(&self) -> bool {
        self.prompts.len() == 1
    }

    /// The weights of latent frames `start .. start + frames` as the transformer takes them:
    /// [1, prompts, frames] f32.
    pub fn tensor(&self, start: usize, frames: usize, device: &Device) -> Result<Tensor> {
        let prompts = self.prompts.len();
        let mut values = Vec::with_capacity(prompts * frames);
        for p in 0..prompts {
            values.extend(self.rows[start..start + frames].iter().map(|row| row[p]));
        }
        Tensor::from_vec(values, (1, prompts, frames), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::protocol::{CacheTarget, Sampler};

    fn request(prompts: &[&str], weights: Vec<Vec<f64>>) -> ClipRequest {
        ClipRequest {
            model_folder: "model".into(),
            prompts: prompts.iter().map(|p| p.to_string()).collect(),
            weights,
            negative_prompt: String::new(),
            seed: 0,
            steps: 2,
            guidance_scale: 5.0,
            shift: None,
            sampler: Sampler::ModelDefault,
            width: 32,
            height: 32,
            frames: 9,
            windows: None,
            output: CacheTarget {
                root: "cache".into(),
                key: "0".repeat(64),
            },
            provenance: serde_json::Value::Null,
        }
    }

    #[test]
    fn rows_are_normalised_and_laid_out_prompt_major() {
        let req = request(
            &["a", "b"],
            vec![vec![2.0, 0.0], vec![1.0, 3.0], vec![0.0, 0.5]],
        );
        let w = PromptWeights::from_request(&req, 3).unwrap();
        assert_eq!(w.row(0), &[1.0, 0.0]);
        assert_eq!(w.row(1), &[0.25, 0.75]);
        assert_eq!(w.row(2), &[0.0, 1.0]);
        let t: Vec<Vec<Vec<f32>>> = w.tensor(1, 2, &Device::Cpu).unwrap().to_vec3().unwrap();
        assert_eq!(t, [[[0.25, 0.0], [0.75, 1.0]]]);
        assert!(!w.is_single_prompt());
    }

    #[test]
    fn bad_requests_say_what_to_fix() {
        let err = |req: ClipRequest| {
            PromptWeights::from_request(&req, 3)
                .unwrap_err()
                .to_string()
        };
        let ok_rows = || vec![vec![1.0]; 3];
        assert!(err(request(&[], vec![vec![]; 3])).contains("at least one prompt"));
        assert!(err(request(&["  "], ok_rows())).contains("prompt 1 of 1 is empty"));
        let e = err(request(&["a"], vec![vec![1.0]; 2]));
        assert!(
            e.contains("2 rows") && e.contains("one row per latent frame"),
            "{e}"
        );
        let e = err(request(&["a", "b"], ok_rows()));
        assert!(e.contains("1 values for 2 prompts"), "{e}");
        for bad in [f64::NAN, f64::INFINITY, -0.5] {
            let e = err(request(&["a"], vec![vec![1.0], vec![bad], vec![1.0]]));
            assert!(
                e.contains("latent frame 1") && e.contains("0 or more"),
                "{e}"
            );
        }
        let e = err(request(
            &["a", "b"],
            vec![vec![1.0, 0.0], vec![0.0, 0.0], vec![0.0, 1.0]],
        ));
        assert!(e.contains("latent frame 1") && e.contains("raise"), "{e}");
        // A sum that overflows is refused too.
        let e = err(request(&["a", "b"], vec![vec![f64::MAX, f64::MAX]; 3]));
        assert!(e.contains("latent frame 0"), "{e}");
    }
}
