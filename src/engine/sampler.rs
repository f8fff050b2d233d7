//! The scheduler a clip asks for: the model's own (`scheduler/scheduler_config.json`), UniPC or
//! flow-matching Euler, with an optional flow shift.
//!
//! A scheduler of the other class is built from the model's config by carrying over what the
//! two share (the training timesteps and the flow shift, which UniPC calls `flow_shift` and
//! FlowMatchEuler `shift`) and leaving every other setting at the class's default, which for
//! UniPC is set to Wan's flow-matching form. (Diffusers' `from_config` would drop `flow_shift`
//! on the way to FlowMatchEuler, silently running it unshifted.) Asking for the model's own
//! class keeps its config as it is.

use crate::client::protocol::Sampler;
use crate::models::schedulers::{
    FlowMatchEulerDiscreteScheduler as FlowEuler, Scheduler, UniPcMultistepScheduler as UniPc,
};
use candle_core::{bail, Error, Result};
use serde_json::{json, Value};

/// The scheduler config for `sampler` and `shift`, from the model's own config.
pub fn scheduler_config(model: &Value, sampler: Sampler, shift: Option<f64>) -> Result<Value> {
    if let Some(shift) = shift {
        if !(shift.is_finite() && shift > 0.0) {
            bail!(
                "the flow shift {shift} cannot be used: give a number above 0 (Wan2.1 uses 3.0 at 480p and 5.0 at 720p) or leave it unset to keep the model's"
            );
        }
    }
    let model_class = model
        .get("_class_name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::msg("the model's scheduler config has no `_class_name`"))?;
    let class = match sampler {
        Sampler::ModelDefault => model_class,
        Sampler::UniPc => UniPc::CLASS_NAME,
        Sampler::FlowEuler => FlowEuler::CLASS_NAME,
    };
    let mut config = if class == model_class {
        model.clone()
    } else {
        let shared = |key: &str| model.get(key).cloned();
        let steps = shared("num_train_timesteps").unwrap_or(json!(1000));
        let model_shift = shared(shift_key(model_class)?).unwrap_or(json!(1.0));
        match class {
            UniPc::CLASS_NAME => json!({
                "_class_name": class,
                "num_train_timesteps": steps,
                "flow_shift": model_shift,
                "use_flow_sigmas": true,
                "prediction_type": "flow_prediction",
            }),
            _ => json!({
                "_class_name": class,
                "num_train_timesteps": steps,
                "shift": model_shift,
            }),
        }
    };
    if let Some(shift) = shift {
        config[shift_key(class)?] = json!(shift);
    }
    Ok(config)
}

/// The scheduler for `sampler` and `shift`, built from the model's config.
pub fn scheduler(model: &Value, sampler: Sampler, shift: Option<f64>) -> Result<Scheduler> {
    let config = scheduler_config(model, sampler, shift)?;
    Scheduler::from_config(&config).map_err(|e| {
        Error::msg(format!(
            "the {} sampler cannot be used with this model's scheduler settings ({e}); choose the model's default sampler",
            name(sampler)
        ))
    })
}

/// The sampler as the user knows it.
fn name(sampler: Sampler) -> &'static str {
    match sampler {
        Sampler::ModelDefault => "model's default",
        Sampler::UniPc => "UniPC",
        Sampler::FlowEuler => "flow-matching Euler",
    }
}

/// The config key of a class's flow shift.
fn shift_key(class: &str) -> Result<&'static str> {
    match class {
        UniPc::CLASS_NAME => Ok("flow_shift"),
        FlowEuler::CLASS_NAME => Ok("shift"),
        other => bail!(
            "the model's scheduler {other:?} is not supported; GenClip implements {} and {}",
            UniPc::CLASS_NAME,
            FlowEuler::CLASS_NAME
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wan_unipc() -> Value {
        json!({
            "_class_name": "UniPCMultistepScheduler",
            "flow_shift": 3.0,
            "num_train_timesteps": 1000,
            "prediction_type": "flow_prediction",
            "use_flow_sigmas": true,
            "solver_order": 2,
        })
    }

    #[test]
    fn the_model_default_keeps_its_config() {
        let model = wan_unipc();
        assert_eq!(
            scheduler_config(&model, Sampler::ModelDefault, None).unwrap(),
            model
        );
        assert_eq!(
            scheduler_config(&model, Sampler::UniPc, None).unwrap(),
            model
        );
        let shifted = scheduler_config(&model, Sampler::ModelDefault, Some(5.0)).unwrap();
        assert_eq!(shifted["flow_shift"], 5.0);
        assert_eq!(shifted["solver_order"], 2);
    }

    #[test]
    fn the_other_class_carries_the_shared_settings() {
        let euler = scheduler_config(&wan_unipc(), Sampler::FlowEuler, None).unwrap();
        assert_eq!(
            euler,
            json!({"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0})
        );
        let euler = scheduler_config(&wan_unipc(), Sampler::FlowEuler, Some(7.0)).unwrap();
        assert_eq!(euler["shift"], 7.0);
        let back = scheduler(&euler, Sampler::UniPc, None).unwrap();
        let Scheduler::UniPc(unipc) = back else {
            panic!("not UniPC");
        };
        assert_eq!(unipc.config().flow_shift, 7.0);
        assert!(unipc.config().use_flow_sigmas);
    }

    #[test]
    fn a_bad_shift_says_what_to_give() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = scheduler_config(&wan_unipc(), Sampler::ModelDefault, Some(bad))
                .unwrap_err()
                .to_string();
            assert!(e.contains("flow shift") && e.contains("above 0"), "{e}");
        }
    }
}
