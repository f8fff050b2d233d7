//! Provenance records: the JSON the engine writes beside every cache entry (`<key>.json`,
//! see `docs/provenance.md`), found from what a user has at hand (a rendered frame, an output
//! folder, a record, a clip key) and told as text for one frame.

use crate::cache::{disk, CacheKey};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The name `genclip render` gives the record it copies beside the frames.
pub const RECORD_NAME: &str = "provenance.json";

/// The record file for `target` and the host frame it names, if any: a frame file
/// (`DIR/frame.0012.png` → `DIR/provenance.json`, frame 12), an output folder, a record
/// file, or a clip key (64 hex digits, looked up in the frame cache).
pub fn locate(target: &str) -> Result<(PathBuf, Option<i64>), String> {
    if let Some(key) = CacheKey::from_hex(target.trim()) {
        let root = disk::default_root().ok_or(
            "no frame cache directory: set GENCLIP_CACHE_DIR (or HOME) to where the clips are",
        )?;
        return Ok((root.join(format!("{}.json", key.to_hex())), None));
    }
    let path = Path::new(target);
    if path.is_dir() {
        return Ok((path.join(RECORD_NAME), None));
    }
    if path.extension().is_some_and(|e| e == "json") {
        return Ok((path.to_path_buf(), None));
    }
    let frame = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.rsplit('.').next())
        .and_then(|n| n.parse::<i64>().ok());
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    Ok((dir.unwrap_or(Path::new(".")).join(RECORD_NAME), frame))
}

pub fn read(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "no provenance record at {} ({e}): give a frame or folder written by `genclip render`, a record file, or a clip key",
            path.display()
        )
    })?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a provenance record: {e}", path.display()))
}

/// The record as a few lines of text; with `frame` (a host frame), what made that frame:
/// its position in the generated clip, its latent frame and that latent frame's prompts.
pub fn describe(record: &Value, frame: Option<i64>) -> String {
    let mut out = String::new();
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let r = record;
    let _ = writeln!(
        out,
        "model:     {} ({}), fingerprint {}",
        text(&r["model"]["folder"]),
        text(&r["model"]["spec"]),
        text(&r["model"]["fingerprint"])
    );
    if let Some(hashes) = r["engine"]["weights_sha256"].as_object() {
        for (file, hash) in hashes {
            let _ = writeln!(out, "           {file}  sha256 {}", text(hash));
        }
    }
    let prompts: Vec<String> = r["prompts"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    for (i, p) in prompts.iter().enumerate() {
        let _ = writeln!(out, "prompt {}:  {p}", i + 1);
    }
    if !text(&r["schedule"]).is_empty() && r["schedule"] != Value::Null {
        let _ = writeln!(out, "schedule:  {}", text(&r["schedule"]));
    }
    let _ = writeln!(out, "negative:  {}", text(&r["negative_prompt"]));
    let _ = writeln!(
        out,
        "seed {}   steps {}   guidance {}   shift {}   sampler {}   quality {}",
        text(&r["seed"]),
        text(&r["steps"]),
        text(&r["guidance_scale"]),
        text(&r["shift"]),
        text(&r["sampler"]),
        text(&r["quality"])
    );
    let _ = writeln!(
        out,
        "clip:      {} frames of {} x {} at {} fps ({}), windows {}",
        text(&r["frames"]),
        text(&r["width"]),
        text(&r["height"]),
        text(&r["fps"]["model"]),
        text(&r["frame_rate_mode"]),
        text(&r["windows"])
    );
    let _ = writeln!(
        out,
        "made:      {} by GenClip {} on {} ({}) in {} s, host {} {}",
        text(&r["engine"]["finished_utc"]),
        text(&r["plugin_version"]),
        text(&r["engine"]["device"]),
        text(&r["engine"]["dtype"]),
        text(&r["engine"]["seconds"]),
        text(&r["host"]["name"]),
        text(&r["host"]["version"])
    );
    if let Some(frame) = frame {
        let _ = write!(out, "{}", describe_frame(r, frame, &prompts));
    }
    out
}

/// Host frame `frame` of the record's clip: model position, latent frame, prompt weights.
fn describe_frame(r: &Value, frame: i64, prompts: &[String]) -> String {
    let start = r["clip"]["host_start"].as_f64().unwrap_or(0.0);
    let host_fps = r["fps"]["host"].as_f64().unwrap_or(16.0);
    let model_fps = r["fps"]["model"].as_f64().unwrap_or(16.0);
    let frames = r["frames"].as_u64().unwrap_or(1).max(1) as f64;
    let native = r["frame_rate_mode"]
        .as_str()
        .is_some_and(|m| m.contains("native"));
    let offset = frame as f64 - start;
    let position = if native {
        offset
    } else {
        offset * model_fps / host_fps
    }
    .clamp(0.0, frames - 1.0);
    let model_frame = position.round() as u64;
    let latent = if model_frame == 0 {
        0
    } else {
        (model_frame - 1) / 4 + 1
    };
    let mut out =
        format!("frame {frame}: model frame {position:.3} of the clip, latent frame {latent}");
    if let Some(row) = r["weights_per_latent_frame"][latent as usize].as_array() {
        let parts: Vec<String> = row
            .iter()
            .zip(prompts)
            .filter_map(|(w, p)| Some((w.as_f64()?, p)))
            .filter(|(w, _)| *w > 0.0)
            .map(|(w, p)| format!("{:.0}% \"{p}\"", w * 100.0))
            .collect();
        let _ = write!(out, ": {}", parts.join(" + "));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_and_folders_find_the_record_beside_them() {
        let (path, frame) = locate("out/clip/frame.0012.png").unwrap();
        assert_eq!(path, Path::new("out/clip").join(RECORD_NAME));
        assert_eq!(frame, Some(12));
        let (path, frame) = locate("elsewhere/record.json").unwrap();
        assert_eq!(path, Path::new("elsewhere/record.json"));
        assert_eq!(frame, None);
    }

    #[test]
    fn a_frame_is_told_with_its_latent_frame_and_prompts() {
        let record = json!({
            "prompts": ["a harbour at dawn", "the harbour at night"],
            "weights_per_latent_frame": [[1.0, 0.0], [1.0, 0.0], [0.25, 0.75]],
            "frames": 9,
            "fps": {"host": 24.0, "model": 16.0},
            "frame_rate_mode": "host (conform)",
            "clip": {"host_start": 0.0},
        });
        // Host frame 9 at 24 fps is model frame 6, in latent frame 2.
        let text = describe(&record, Some(9));
        assert!(
            text.contains("model frame 6.000 of the clip, latent frame 2: 25% \"a harbour at dawn\" + 75% \"the harbour at night\""),
            "{text}"
        );
        let text = describe(&record, Some(0));
        assert!(
            text.contains("latent frame 0: 100% \"a harbour at dawn\"\n"),
            "{text}"
        );
    }
}
