//! The prompt schedule ("0: a harbour at dawn; 48: the same harbour at night" cuts at frame
//! 48; "0: dawn; 24-48: night" blends over frames 24 to 48) and the conditioning weights of
//! each latent frame of a generation, from the schedule or from the Prompt A–D slots'
//! keyframed weights.
//!
//! Frame numbers and times are host frames in the numbering the host passes to render.

use super::plan::{TimeMap, Window, TEMPORAL_STRIDE};
use std::fmt;

/// A sentence for the user: what is wrong, where, and what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleError(pub String);

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScheduleError {}

/// One schedule entry: `prompt` from host frame `frame` on, until the next entry takes over.
/// With `blend_from: Some(a)` (written `a-frame: prompt`) it fades in linearly over host
/// frames `a..frame`, taking over from the entry before it; without, it cuts in at `frame`.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub frame: u64,
    pub prompt: String,
    pub blend_from: Option<u64>,
}

/// Entries sorted by frame, one per frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub entries: Vec<Entry>,
}

fn quote(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("\"{cut}…\"")
    } else {
        format!("\"{text}\"")
    }
}

/// A frame number as the schedule writes it: whole, ≥ 0, digits only.
fn frame_number(text: &str, place: &str, prompt: &str) -> Result<u64, ScheduleError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScheduleError(format!(
            "{place}: {} is not a frame number; frames are whole host frames from 0, e.g. '48: {prompt}' (or '24-48: {prompt}' to blend in over frames 24 to 48).",
            quote(text)
        )));
    }
    text.parse()
        .map_err(|_| ScheduleError(format!("{place}: frame {text} is too large.")))
}

/// Where an entry's frames are written: `48` or `24-48` (a blend from 24 to 48).
fn frames_of(text: &str, place: &str, prompt: &str) -> Result<(Option<u64>, u64), ScheduleError> {
    // A leading '-' is a negative number, not a range with no start.
    match text.split_once('-').filter(|(a, _)| !a.trim().is_empty()) {
        Some((from, to)) => {
            let from = frame_number(from.trim(), place, prompt)?;
            let to = frame_number(to.trim(), place, prompt)?;
            if from == to {
                return Err(ScheduleError(format!(
                    "{place}: the blend {from}-{to} has no length; write '{to}: {prompt}' for a cut, or a later end frame for a blend."
                )));
            }
            if from > to {
                return Err(ScheduleError(format!(
                    "{place}: the blend {from}-{to} runs backwards; write the frame it starts at first: '{to}-{from}: {prompt}'."
                )));
            }
            Ok((Some(from), to))
        }
        None => Ok((None, frame_number(text, place, prompt)?)),
    }
}

impl Schedule {
    /// Parses schedule text: entries `frame: prompt` (cut to the prompt at that host frame)
    /// or `from-frame: prompt` (blend into it over those frames), separated by `;` or line
    /// breaks (blank entries and trailing separators are ignored, spaces around everything
    /// too). A frame given twice keeps its last entry, as a later line overrides an earlier
    /// one when editing. A blend must start at or after the entry before it and cannot be
    /// the first entry (there is nothing to blend from). `Ok(None)` for a schedule with no
    /// entries.
    pub fn parse(text: &str) -> Result<Option<Schedule>, ScheduleError> {
        let mut entries: Vec<Entry> = Vec::new();
        // Where each entry was written, for the errors found after sorting.
        let mut places: Vec<String> = Vec::new();
        let mut number = 0;
        for (line_index, line) in text.lines().enumerate() {
            for piece in line.split(';') {
                let piece = piece.trim();
                if piece.is_empty() {
                    continue;
                }
                number += 1;
                let place = format!("Prompt schedule, line {}, entry {number}", line_index + 1);
                let Some((frame, prompt)) = piece.split_once(':') else {
                    return Err(ScheduleError(format!(
                        "{place}: {} has no ':' between a frame number and a prompt; write entries as '48: the same harbour at night'.",
                        quote(piece)
                    )));
                };
                let frame = frame.trim();
                let prompt = prompt.trim();
                if frame.is_empty() {
                    return Err(ScheduleError(format!(
                        "{place}: {} has no frame number before the ':'; write the host frame the prompt starts at, e.g. '0: {prompt}'.",
                        quote(piece)
                    )));
                }
                let (blend_from, frame) = frames_of(frame, &place, prompt)?;
                if prompt.is_empty() {
                    return Err(ScheduleError(format!(
                        "{place}: frame {frame} has no prompt after the ':'; write what the clip should show from there, or delete the entry."
                    )));
                }
                if let Some(i) = entries.iter().position(|e| e.frame == frame) {
                    entries.remove(i);
                    places.remove(i);
                }
                entries.push(Entry {
                    frame,
                    prompt: prompt.to_string(),
                    blend_from,
                });
                places.push(place);
            }
        }
        if entries.is_empty() {
            return Ok(None);
        }
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| entries[i].frame);
        let entries: Vec<Entry> = order.iter().map(|&i| entries[i].clone()).collect();
        let places: Vec<&String> = order.iter().map(|&i| &places[i]).collect();
        for (k, e) in entries.iter().enumerate() {
            let Some(from) = e.blend_from else { continue };
            if k == 0 {
                return Err(ScheduleError(format!(
                    "{}: the blend {from}-{} is the first entry, so there is nothing to blend from; start the schedule with a plain entry such as '0: a harbour at dawn'.",
                    places[k], e.frame
                )));
            }
            let before = entries[k - 1].frame;
            if from < before {
                return Err(ScheduleError(format!(
                    "{}: the blend {from}-{} starts before frame {before}, where the entry before it begins; start the blend at {before} or later.",
                    places[k], e.frame
                )));
            }
        }
        Ok(Some(Schedule { entries }))
    }

    /// The entries' weights at a host time: the first entry before it, then each entry
    /// from its frame until the next one cuts in; inside a blend `a-b`, the entry before and
    /// the blending one mixed linearly (weight (t-a)/(b-a) for the new one).
    pub fn weights_at(&self, host_time: f64) -> Vec<f64> {
        let n = self.entries.len();
        let mut w = vec![0.0; n];
        let t = if host_time.is_finite() {
            host_time
        } else {
            0.0
        };
        // The last entry fully on at t (the first one before the schedule starts).
        let on = self
            .entries
            .partition_point(|e| (e.frame as f64) <= t)
            .saturating_sub(1);
        w[on] = 1.0;
        if let Some(next) = self.entries.get(on + 1) {
            if let Some(from) = next.blend_from {
                let (a, b) = (from as f64, next.frame as f64);
                if t > a {
                    let x = (t - a) / (b - a);
                    w[on] = 1.0 - x;
                    w[on + 1] = x;
                }
            }
        }
        w
    }
}

/// The model frames latent frame `j` of a window holds (window-local): frame 0 alone, then
/// 1+4(j-1) ..= 4j.
pub fn latent_frame_range(j: usize) -> std::ops::RangeInclusive<usize> {
    if j == 0 {
        0..=0
    } else {
        1 + TEMPORAL_STRIDE * (j - 1)..=TEMPORAL_STRIDE * j
    }
}

/// The host times of the model frames of each latent frame of `window` (clip model frames
/// `window.start ..`), for sampling weights.
pub fn latent_host_times(window: Window, time: &TimeMap) -> Vec<Vec<f64>> {
    let latents = (window.frames.max(1) - 1) / TEMPORAL_STRIDE + 1;
    (0..latents)
        .map(|j| {
            latent_frame_range(j)
                .map(|f| time.host_time((window.start + f) as f64))
                .collect()
        })
        .collect()
}

/// Per-latent-frame conditioning: distinct prompts and, for each latent frame, their weights
/// (each row sums to 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Conditioning {
    pub prompts: Vec<String>,
    pub weights: Vec<Vec<f64>>,
}

impl Conditioning {
    /// True when every latent frame has the same weights (then they are identical, bit for
    /// bit): the engine runs the plain path, one embedding blend for all frames.
    pub fn is_constant(&self) -> bool {
        self.weights.windows(2).all(|p| p[0] == p[1])
    }

    /// A single prompt at full weight everywhere: the plain single-prompt path.
    pub fn single_prompt(&self) -> Option<&str> {
        (self.prompts.len() == 1).then(|| self.prompts[0].as_str())
    }
}

/// Weights differing by less than this are the same weight (so a flat curve that a host
/// evaluates with rounding noise still gives the plain path).
const SAME: f64 = 1e-9;

/// Builds the conditioning from raw (texts, weights per latent frame): merges slots with the
/// same text, drops prompts that are never used, normalises each row, and makes near-equal
/// rows identical.
fn finish(texts: &[String], rows: Vec<Vec<f64>>) -> Conditioning {
    let mut prompts: Vec<String> = Vec::new();
    let mut column_of = Vec::with_capacity(texts.len());
    for t in texts {
        let i = prompts.iter().position(|p| p == t).unwrap_or_else(|| {
            prompts.push(t.clone());
            prompts.len() - 1
        });
        column_of.push(i);
    }
    let mut merged: Vec<Vec<f64>> = rows
        .iter()
        .map(|row| {
            let mut m = vec![0.0; prompts.len()];
            for (k, w) in row.iter().enumerate() {
                m[column_of[k]] += w;
            }
            m
        })
        .collect();
    let used: Vec<bool> = (0..prompts.len())
        .map(|c| merged.iter().any(|r| r[c] > 0.0))
        .collect();
    let prompts: Vec<String> = prompts
        .into_iter()
        .zip(&used)
        .filter_map(|(p, &u)| u.then_some(p))
        .collect();
    for row in &mut merged {
        let kept: Vec<f64> = row
            .iter()
            .zip(&used)
            .filter_map(|(&w, &u)| u.then_some(w))
            .collect();
        let sum: f64 = kept.iter().sum();
        *row = kept.iter().map(|w| w / sum).collect();
    }
    if let Some(first) = merged.first().cloned() {
        let close = |r: &Vec<f64>| r.iter().zip(&first).all(|(a, b)| (a - b).abs() < SAME);
        if merged.iter().all(close) {
            for r in &mut merged {
                r.clone_from(&first);
            }
        }
    }
    Conditioning {
        prompts,
        weights: merged,
    }
}

/// The schedule's weights for each latent frame: the mean of the weights at the host times
/// of the video frames it holds.
pub fn schedule_conditioning(schedule: &Schedule, latent_times: &[Vec<f64>]) -> Conditioning {
    let texts: Vec<String> = schedule.entries.iter().map(|e| e.prompt.clone()).collect();
    let rows = latent_times
        .iter()
        .map(|times| mean(times.iter().map(|&t| schedule.weights_at(t)), texts.len()))
        .collect();
    finish(&texts, rows)
}

/// The Prompt A–D slots' weights for each latent frame: `weight_at(slot, host_time)` sampled
/// at the host times of the video frames it holds (NaN, infinite and negative weights count
/// as 0), averaged, over the slots with text. A latent frame where every slot with text has
/// weight 0 is an error.
pub fn slot_conditioning(
    prompts: &[String; 4],
    mut weight_at: impl FnMut(usize, f64) -> f64,
    latent_times: &[Vec<f64>],
) -> Result<Conditioning, ScheduleError> {
    let slots: Vec<usize> = (0..4).filter(|&i| !prompts[i].trim().is_empty()).collect();
    if slots.is_empty() {
        return Err(ScheduleError(
            "No prompt yet: type what the clip should show in Prompt A.".into(),
        ));
    }
    let texts: Vec<String> = slots
        .iter()
        .map(|&i| prompts[i].trim().to_string())
        .collect();
    let mut rows = Vec::with_capacity(latent_times.len());
    for times in latent_times {
        let samples: Vec<Vec<f64>> = times
            .iter()
            .map(|&t| {
                slots
                    .iter()
                    .map(|&s| {
                        let w = weight_at(s, t);
                        if w.is_finite() && w > 0.0 {
                            w
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect();
        // Each frame's weights are normalised before averaging, so a frame counts once
        // whatever the scale of its weights.
        let mut normalised = Vec::with_capacity(samples.len());
        for (row, &t) in samples.iter().zip(times) {
            let sum: f64 = row.iter().sum();
            if sum <= 0.0 {
                let names: Vec<String> = slots
                    .iter()
                    .map(|&s| format!("Weight {}", (b'A' + s as u8) as char))
                    .collect();
                return Err(ScheduleError(format!(
                    "At frame {} every prompt with text has weight 0: raise {} there.",
                    format_time(t),
                    names.join(" or ")
                )));
            }
            normalised.push(row.iter().map(|w| w / sum).collect::<Vec<f64>>());
        }
        rows.push(mean(normalised.into_iter(), slots.len()));
    }
    Ok(finish(&texts, rows))
}

/// The conditioning of one window: from the schedule text when it has entries, else from the
/// slots.
pub fn conditioning(
    schedule_text: &str,
    prompts: &[String; 4],
    weight_at: impl FnMut(usize, f64) -> f64,
    latent_times: &[Vec<f64>],
) -> Result<Conditioning, ScheduleError> {
    match Schedule::parse(schedule_text)? {
        Some(schedule) => Ok(schedule_conditioning(&schedule, latent_times)),
        None => slot_conditioning(prompts, weight_at, latent_times),
    }
}

fn mean(rows: impl Iterator<Item = Vec<f64>>, width: usize) -> Vec<f64> {
    let mut acc = vec![0.0; width];
    let mut n = 0usize;
    for row in rows {
        for (a, w) in acc.iter_mut().zip(row) {
            *a += w;
        }
        n += 1;
    }
    if n > 0 {
        for a in &mut acc {
            *a /= n as f64;
        }
    }
    acc
}

fn format_time(t: f64) -> String {
    if (t - t.round()).abs() < 1e-6 {
        format!("{}", t.round())
    } else {
        format!("{t:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latent_frames_cover_4k_plus_1() {
        assert_eq!(latent_frame_range(0), 0..=0);
        assert_eq!(latent_frame_range(1), 1..=4);
        assert_eq!(latent_frame_range(20), 77..=80);
    }

    #[test]
    fn duplicate_frame_last_wins() {
        let s = Schedule::parse("0: a; 10: b; 0: c").unwrap().unwrap();
        assert_eq!(s.entries.len(), 2);
        assert_eq!(s.entries[0].prompt, "c");
    }

    #[test]
    fn same_text_slots_merge() {
        let prompts = ["x".to_string(), "x".into(), "".into(), "".into()];
        let c = slot_conditioning(&prompts, |_, _| 0.5, &[vec![0.0]]).unwrap();
        assert_eq!(c.prompts, vec!["x".to_string()]);
        assert_eq!(c.weights, vec![vec![1.0]]);
    }
}
