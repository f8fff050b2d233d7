//! Context windows over the latent frames of a long clip.
//!
//! The transformer was trained on clips of at most 21 latent frames (81 video frames), so a
//! longer clip is denoised in windows of the model's length that overlap. All windows are
//! denoised together: at every step each window predicts the noise of its own slice (rotary
//! positions local to it), the predictions are blended per latent frame, and one scheduler step
//! moves the whole latent. The overlaps are therefore one shared sample, never two versions of
//! the same frames to be reconciled afterwards (see `docs/conditioning.md`).
//!
//! Tiling: windows of `w` latent frames start every `w - o` frames (`o` the overlap); the last
//! one is shortened to end at the clip's end (at least `o + 1` frames long, so it spans its
//! overlap), as the timeline's `WindowPlan` does with video frames. Blend: in an overlap of `o`
//! frames the later window's i-th frame weighs (i+1)/(o+1), the earlier window's the rest, so
//! every window weighs more than 0 on every frame it predicts; where windows overlap more
//! deeply than half their length (three or more on a frame), the same ramps are normalised to
//! sum to 1.

use crate::client::protocol::ContextWindows;
use candle_core::{bail, Device, Result, Tensor};

/// One window: latent frames `start .. start + frames` of the clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatentWindow {
    pub start: usize,
    pub frames: usize,
}

impl LatentWindow {
    pub fn end(&self) -> usize {
        self.start + self.frames
    }
}

/// How a clip's latent frames are covered by windows, and each window's blend weights.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentWindows {
    windows: Vec<LatentWindow>,
    /// Per window, one weight per frame of it; per latent frame of the clip they sum to 1.
    blend: Vec<Vec<f32>>,
}

impl LatentWindows {
    /// One window over all `latent_frames`: the plain, unwindowed denoise.
    pub fn whole(latent_frames: usize) -> LatentWindows {
        LatentWindows {
            windows: vec![LatentWindow {
                start: 0,
                frames: latent_frames,
            }],
            blend: vec![vec![1.0; latent_frames]],
        }
    }

    /// The windows for a clip of `frames` video frames (`temporal_scale`·k + 1 of them) and the
    /// request's window settings (video frames), after checking those settings. A clip no
    /// longer than one window is that one window.
    pub fn plan(
        frames: usize,
        settings: Option<ContextWindows>,
        temporal_scale: usize,
    ) -> Result<LatentWindows> {
        if frames == 0 || (frames - 1) % temporal_scale != 0 {
            bail!("a clip of {frames} frames cannot be split into latent frames: use {temporal_scale}k+1 frames");
        }
        let latent_frames = (frames - 1) / temporal_scale + 1;
        let Some(settings) = settings else {
            return Ok(LatentWindows::whole(latent_frames));
        };
        check(settings, temporal_scale)?;
        let window = (settings.frames - 1) / temporal_scale + 1;
        let overlap = settings.overlap / temporal_scale;
        Ok(LatentWindows::tile(latent_frames, window, overlap))
    }

    /// Windows of `window` latent frames overlapping by `overlap` (0 < overlap < window).
    fn tile(latent_frames: usize, window: usize, overlap: usize) -> LatentWindows {
        if latent_frames <= window {
            return LatentWindows::whole(latent_frames);
        }
        let stride = window - overlap;
        let count = (latent_frames - window).div_ceil(stride) + 1;
        let windows: Vec<LatentWindow> = (0..count)
            .map(|k| {
                let start = k * stride;
                LatentWindow {
                    start,
                    frames: window.min(latent_frames - start),
                }
            })
            .collect();
        // Ramps: up over the first `overlap` frames (not in the first window), down over the
        // last `overlap` (not in the last one).
        let ramp = |k: usize, i: usize| -> f64 {
            let w = windows[k];
            let step = 1.0 / (overlap + 1) as f64;
            let mut r: f64 = 1.0;
            if k > 0 && i < overlap {
                r = r.min((i + 1) as f64 * step);
            }
            if k + 1 < windows.len() && i >= w.frames - overlap {
                r = r.min((w.frames - i) as f64 * step);
            }
            r
        };
        let mut totals = vec![0f64; latent_frames];
        for (k, w) in windows.iter().enumerate() {
            for i in 0..w.frames {
                totals[w.start + i] += ramp(k, i);
            }
        }
        let blend = windows
            .iter()
            .enumerate()
            .map(|(k, w)| {
                (0..w.frames)
                    .map(|i| (ramp(k, i) / totals[w.start + i]) as f32)
                    .collect()
            })
            .collect();
        LatentWindows { windows, blend }
    }

    pub fn windows(&self) -> &[LatentWindow] {
        &self.windows
    }

    /// Whether this is the plain denoise (one window over the clip).
    pub fn is_single(&self) -> bool {
        self.windows.len() == 1
    }

    /// Window `k`'s blend weight for each of its frames.
    pub fn blend_weights(&self, k: usize) -> &[f32] {
        &self.blend[k]
    }

    /// Window `k`'s blend weights as [1, 1, frames, 1, 1], to scale a [b, c, f, h, w] slice.
    pub fn blend_tensor(&self, k: usize, device: &Device) -> Result<Tensor> {
        let weights = &self.blend[k];
        Tensor::from_slice(weights, (1, 1, weights.len(), 1, 1), device)
    }
}

/// Refuses window settings that do not tile latent frames: each sentence says what to use.
fn check(settings: ContextWindows, t: usize) -> Result<()> {
    let ContextWindows { frames, overlap } = settings;
    if frames < t + 1 || (frames - 1) % t != 0 {
        bail!(
            "context windows of {frames} frames cannot be used: a window must be {t}k+1 frames and at least {} (the model's own length, 81, is the usual choice)",
            t + 1
        );
    }
    if overlap < t || overlap % t != 0 || overlap >= frames - 1 {
        bail!(
            "a context-window overlap of {overlap} frames cannot be used with windows of {frames} frames: the overlap must be a multiple of {t}, at least {t} and less than {} (16 is the usual choice)",
            frames - 1
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(frames: usize, window: usize, overlap: usize) -> LatentWindows {
        LatentWindows::plan(
            frames,
            Some(ContextWindows {
                frames: window,
                overlap,
            }),
            4,
        )
        .unwrap()
    }

    fn spans(plan: &LatentWindows) -> Vec<(usize, usize)> {
        plan.windows().iter().map(|w| (w.start, w.end())).collect()
    }

    /// Every latent frame is covered, its weights sum to 1, and every window weighs more than
    /// 0 on every frame it predicts.
    fn assert_partition_of_unity(plan: &LatentWindows, latent_frames: usize) {
        let mut sums = vec![0f64; latent_frames];
        for (k, w) in plan.windows().iter().enumerate() {
            let weights = plan.blend_weights(k);
            assert_eq!(weights.len(), w.frames);
            for (i, &weight) in weights.iter().enumerate() {
                assert!(weight > 0.0, "window {k} frame {i}: {weight}");
                sums[w.start + i] += weight as f64;
            }
        }
        for (f, s) in sums.iter().enumerate() {
            assert!((s - 1.0).abs() < 1e-6, "latent frame {f} sums to {s}");
        }
    }

    #[test]
    fn the_wan_length_tiles_like_the_timeline_plan() {
        // 81-frame windows every 65 frames: latent windows of 21 every 17, overlap 4.
        let p = plan(161, 81, 16);
        assert_eq!(spans(&p), [(0, 21), (17, 38), (34, 41)]);
        assert_partition_of_unity(&p, 41);
        // In the overlap the later window rises 1/5, 2/5, 3/5, 4/5.
        assert_eq!(&p.blend_weights(1)[..4], &[0.2, 0.4, 0.6, 0.8]);
        assert_eq!(&p.blend_weights(0)[17..], &[0.8, 0.6, 0.4, 0.2]);
        assert!(p.blend_weights(1)[4..17].iter().all(|&w| w == 1.0));
    }

    #[test]
    fn the_last_window_is_shortened_but_spans_its_overlap() {
        // 21 frames = 6 latent frames in windows of 3 overlapping by 1.
        let p = plan(21, 9, 4);
        assert_eq!(spans(&p), [(0, 3), (2, 5), (4, 6)]);
        assert_partition_of_unity(&p, 6);
        assert_eq!(p.blend_weights(1), &[0.5, 1.0, 0.5]);
        // One latent frame past a full window: the last window is overlap + 1 long.
        let p = plan(85, 81, 16);
        assert_eq!(spans(&p), [(0, 21), (17, 22)]);
    }

    #[test]
    fn short_clips_are_one_window() {
        for frames in [1, 5, 9] {
            let p = plan(frames, 9, 4);
            assert!(p.is_single());
            assert_eq!(p, LatentWindows::whole((frames - 1) / 4 + 1));
        }
        assert!(LatentWindows::plan(41, None, 4).unwrap().is_single());
    }

    #[test]
    fn deep_overlaps_still_sum_to_one() {
        // Windows of 6 latent frames every 2: most frames are in three windows.
        let p = plan(41, 21, 16);
        assert_eq!(p.windows().len(), 4);
        assert_partition_of_unity(&p, 11);
    }

    #[test]
    fn bad_settings_say_what_to_use() {
        let err = |window: usize, overlap: usize| {
            LatentWindows::plan(
                161,
                Some(ContextWindows {
                    frames: window,
                    overlap,
                }),
                4,
            )
            .unwrap_err()
            .to_string()
        };
        for window in [0, 1, 8, 80] {
            let e = err(window, 4);
            assert!(e.contains("4k+1") && e.contains("81"), "{e}");
        }
        for (window, overlap) in [(81, 0), (81, 6), (81, 80), (9, 8), (9, 12)] {
            let e = err(window, overlap);
            assert!(e.contains("multiple of 4") && e.contains("16"), "{e}");
        }
        assert!(LatentWindows::plan(
            161,
            Some(ContextWindows {
                frames: 9,
                overlap: 4
            }),
            4
        )
        .is_ok());
    }
}
