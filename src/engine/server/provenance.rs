//! The provenance record beside each cache entry, `<root>/<key>.json`: what the plugin sent
//! (`ClipRequest::provenance`: model, prompts, seed, …) plus, under `"engine"`, what only the
//! engine knows: its version, device, dtype, how long the job took, when it finished, and the
//! SHA-256 of every weight file. Written like the cache entry itself (a temporary file in the
//! same folder, then a rename), so a reader sees the whole record or none.

use serde_json::{json, Map, Value};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::weights::Digests;

/// What the engine adds.
pub struct EngineFacts<'a> {
    pub device: &'a str,
    /// Where the text encoder ran ("cpu" beside a GPU engine by choice, else `device`).
    pub text_encoder_device: &'a str,
    pub dtype: &'a str,
    pub seconds: f64,
    pub model_folder: &'a Path,
    /// The weight digests, or why they are missing.
    pub weights: &'a Result<Digests, String>,
}

/// `<root>/<key>.json`.
pub fn path(root: &Path, key_hex: &str) -> PathBuf {
    root.join(format!("{key_hex}.json"))
}

/// The record: the plugin's object with an `"engine"` member added (a plugin value that is not
/// an object is kept under `"plugin"`).
pub fn record(from_plugin: &Value, facts: &EngineFacts, finished: SystemTime) -> Value {
    let mut engine = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": crate::client::protocol::PROTOCOL_VERSION,
        "device": facts.device,
        "text_encoder_device": facts.text_encoder_device,
        "dtype": facts.dtype,
        "seconds": facts.seconds,
        "finished_utc": utc_iso8601(finished),
        "model_folder": facts.model_folder.to_string_lossy(),
    });
    match facts.weights {
        Ok(digests) => engine["weights_sha256"] = json!(digests),
        Err(why) => engine["weights_error"] = json!(why),
    }
    let mut out = match from_plugin {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        other => Map::from_iter([("plugin".to_string(), other.clone())]),
    };
    out.insert("engine".into(), engine);
    Value::Object(out)
}

/// Writes `record` as `<root>/<key>.json`, atomically.
pub fn write(root: &Path, key_hex: &str, record: &Value) -> io::Result<()> {
    fs::create_dir_all(root)?;
    let target = path(root, key_hex);
    // `.<name>.tmp`: the pattern `DiskCache::sweep_temp_files` clears after a crash.
    let tmp = root.join(format!(".{key_hex}.json.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        let mut text = serde_json::to_string_pretty(record).map_err(io::Error::other)?;
        text.push('\n');
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `2025-01-31T12:34:56Z`: the time in UTC, to the second.
pub fn utc_iso8601(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64) - 1,
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`: eras of 400 years, years starting in March so the leap day is last).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // March = 0
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn civil_dates_at_the_edges() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29)); // a 400-year leap day
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1)); // 2100 is no leap year
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
        // Every day from 1900 to 2200 follows the previous one.
        let mut previous = civil_from_days(-25_567);
        assert_eq!(previous, (1900, 1, 1));
        for days in -25_566..84_000 {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = previous;
            let next_day = (y, m, d) == (py, pm, pd + 1);
            let next_month = d == 1 && ((y == py && m == pm + 1) || (y == py + 1 && m == 1));
            assert!(next_day || next_month, "{previous:?} -> {:?}", (y, m, d));
            previous = (y, m, d);
        }
    }

    #[test]
    fn iso_time_in_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_738_326_896); // 2025-01-31 12:34:56 UTC
        assert_eq!(utc_iso8601(t), "2025-01-31T12:34:56Z");
        assert_eq!(utc_iso8601(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn the_plugins_fields_stay_and_the_engine_adds_its_own() {
        let digests: Result<Digests, String> = Ok(Digests::from([(
            "vae/w.safetensors".to_string(),
            "ab".repeat(32),
        )]));
        let facts = EngineFacts {
            device: "cpu",
            text_encoder_device: "cpu",
            dtype: "f32",
            seconds: 1.5,
            model_folder: Path::new("models/wan"),
            weights: &digests,
        };
        let r = record(&json!({"seed": 7}), &facts, UNIX_EPOCH);
        assert_eq!(r["seed"], 7);
        assert_eq!(r["engine"]["device"], "cpu");
        assert_eq!(r["engine"]["text_encoder_device"], "cpu");
        assert_eq!(r["engine"]["finished_utc"], "1970-01-01T00:00:00Z");
        assert_eq!(
            r["engine"]["weights_sha256"]["vae/w.safetensors"],
            "ab".repeat(32)
        );
        let r = record(&json!("odd"), &facts, UNIX_EPOCH);
        assert_eq!(r["plugin"], "odd");
    }
}
