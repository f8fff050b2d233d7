//! The clip plan: from what the host says about the clip (its rate, its length, its project
//! size) and the effect's settings to what the engine must generate, and back from a host
//! time to the generated frames that make it.
//!
//! Pure arithmetic, no I/O; see docs/timeline.md for the choices and their reasons.

use std::fmt;

/// A frame rate as an exact fraction (frames per `den` seconds), so that long clips at
/// 23.976 or 29.97 map to model frames without accumulating rounding error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub num: u64,
    pub den: u64,
}

impl Rate {
    /// `num / den` frames per second, reduced. `None` when either is 0.
    pub fn new(num: u64, den: u64) -> Option<Rate> {
        if num == 0 || den == 0 {
            return None;
        }
        let g = gcd(num, den);
        Some(Rate {
            num: num / g,
            den: den / g,
        })
    }

    /// The exact rate a host means by the double it reports: the NTSC family
    /// (23.976, 29.97, 47.952, 59.94, 119.88) becomes n·1000/1001, a whole number stays
    /// whole, anything else is read to a thousandth of a frame per second.
    pub fn from_fps(fps: f64) -> Result<Rate, PlanError> {
        if !fps.is_finite() || fps <= 0.0 || fps > 100_000.0 {
            return Err(PlanError(format!(
                "The host reports a frame rate of {fps}, which is not a usable rate: set the project or clip to a positive frame rate."
            )));
        }
        for n in [24u64, 30, 48, 60, 120, 240] {
            let ntsc = n as f64 * 1000.0 / 1001.0;
            if (fps - ntsc).abs() < 0.0015 {
                return Ok(Rate::new(n * 1000, 1001).expect("nonzero"));
            }
        }
        let whole = fps.round();
        if (fps - whole).abs() < 0.0005 {
            return Ok(Rate::new(whole as u64, 1).expect("nonzero"));
        }
        Rate::new((fps * 1000.0).round().max(1.0) as u64, 1000)
            .ok_or_else(|| PlanError(format!("The frame rate {fps} is too small to use.")))
    }

    pub fn fps(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

/// Wan's temporal compression: a generation has 4k+1 frames (the first latent frame holds one
/// video frame, every later one four).
pub const TEMPORAL_STRIDE: usize = 4;
/// Frames in one native Wan2.1 generation (5 s at 16 fps).
pub const NATIVE_WINDOW: usize = 81;
/// Frames shared by neighbouring windows of a long clip (one second at 16 fps, four latent
/// frames; a multiple of [`TEMPORAL_STRIDE`]).
pub const WINDOW_OVERLAP: usize = 16;

/// What the plan needs to know about a model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelSpec {
    /// What provenance and messages call it.
    pub name: &'static str,
    /// The rate the model was trained to play at.
    pub fps: Rate,
    /// Sizes (width, height) the model was trained at.
    pub native_sizes: &'static [(u32, u32)],
    /// Width and height of any other size must be multiples of this (VAE 8 × patch 2).
    pub size_multiple: u32,
}

/// Wan2.1 T2V 1.3B: 480p only.
pub const WAN21_1_3B: ModelSpec = ModelSpec {
    name: "Wan2.1 T2V 1.3B",
    fps: Rate { num: 16, den: 1 },
    native_sizes: &[(832, 480), (480, 832)],
    size_multiple: 16,
};

/// Wan2.1 T2V 14B: 480p and 720p.
pub const WAN21_14B: ModelSpec = ModelSpec {
    name: "Wan2.1 T2V 14B",
    fps: Rate { num: 16, den: 1 },
    native_sizes: &[(832, 480), (480, 832), (1280, 720), (720, 1280)],
    size_multiple: 16,
};

/// A Wan-architecture transformer of another width (a fine-tune family we do not know, the
/// tiny test models): no known training sizes, so the project's own size is generated
/// (rounded to the size multiple, at most the 14B's 720p pixel count).
pub const WAN_OTHER: ModelSpec = ModelSpec {
    name: "Wan2.1-architecture model",
    fps: Rate { num: 16, den: 1 },
    native_sizes: &[],
    size_multiple: 16,
};

/// The transformer width (attention heads × head dimension) of the Wan2.1 T2V 14B.
pub const WAN21_14B_DIM: u64 = 5120;
/// The Wan2.1 T2V 1.3B's width.
pub const WAN21_1_3B_DIM: u64 = 1536;

/// The spec of a Wan2.1 transformer of width `dim`: the 14B at 5120, the 1.3B at 1536 and
/// when the width is unknown (0; its size rules are the conservative ones), [`WAN_OTHER`]
/// for any other width.
pub fn wan21_spec_for_dim(dim: u64) -> &'static ModelSpec {
    match dim {
        WAN21_14B_DIM => &WAN21_14B,
        0 | WAN21_1_3B_DIM => &WAN21_1_3B,
        _ => &WAN_OTHER,
    }
}

/// The largest pixel count generated for a model without native sizes (1280 × 720).
const OTHER_MODEL_MAX_AREA: f64 = 1280.0 * 720.0;

/// A sentence for the user: what is wrong and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError(pub String);

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlanError {}

// ---------------------------------------------------------------------------------------------
// Frame counts

/// A frame count in Wan's 4k+1 rule, and whether it had to grow to get there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameCount {
    /// The frames the clip needs.
    pub needed: usize,
    /// The frames to generate: the smallest 4k+1 ≥ `needed` (at least 1).
    pub frames: usize,
}

impl FrameCount {
    pub fn new(needed: usize) -> FrameCount {
        FrameCount {
            needed,
            frames: round_up_4k1(needed),
        }
    }

    /// True when frames past the needed ones are generated (and never shown).
    pub fn rounded_up(&self) -> bool {
        self.frames > self.needed
    }
}

/// The smallest count of the form 4k+1 that is ≥ `n` (1 for 0 and 1).
pub fn round_up_4k1(n: usize) -> usize {
    if n <= 1 {
        1
    } else {
        (n - 1).div_ceil(TEMPORAL_STRIDE) * TEMPORAL_STRIDE + 1
    }
}

// ---------------------------------------------------------------------------------------------
// Time

/// How host frames relate to model frames (the *Frame rate* choice, same order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateMode {
    /// Conform: generate at the model's rate, keep real-time speed, blend frames.
    Host,
    /// Host frame i shows model frame i (the motion plays faster or slower than real time).
    ModelNative,
}

impl RateMode {
    /// From the *Frame rate* choice index (0 Host, 1 Model native; anything else: Host).
    pub fn from_choice(index: i32) -> RateMode {
        if index == 1 {
            RateMode::ModelNative
        } else {
            RateMode::Host
        }
    }
}

/// Where a host time falls among model frames: show `(1 - weight)·a + weight·b`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub a: usize,
    pub b: usize,
    /// The weight of `b`, in [0, 1); 0 when the time lands exactly on `a`.
    pub weight: f64,
}

/// Host time ↔ model-frame position for one clip.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeMap {
    pub mode: RateMode,
    pub host_rate: Rate,
    pub model_rate: Rate,
    /// The host time of the clip's first frame.
    pub start: f64,
}

impl TimeMap {
    /// Model frames per host frame as `num / den` (1/1 in model-native mode).
    fn ratio(&self) -> (u128, u128) {
        match self.mode {
            RateMode::ModelNative => (1, 1),
            // (model frames / s) / (host frames / s)
            RateMode::Host => (
                self.model_rate.num as u128 * self.host_rate.den as u128,
                self.model_rate.den as u128 * self.host_rate.num as u128,
            ),
        }
    }

    /// The model-frame position of a host time (fractional between frames). Whole host
    /// frames are converted with integer arithmetic, so there is no drift however long the
    /// clip; only the fractional part of the time goes through floating point.
    pub fn model_position(&self, host_time: f64) -> f64 {
        let local = host_time - self.start;
        if !local.is_finite() {
            return 0.0;
        }
        let whole = local.floor();
        let frac = local - whole;
        let (n, d) = self.ratio();
        let whole = whole.clamp(-4.5e15, 4.5e15) as i128;
        let scaled = whole * n as i128;
        let q = scaled.div_euclid(d as i128);
        let r = scaled.rem_euclid(d as i128);
        q as f64 + (r as f64 + frac * n as f64) / d as f64
    }

    /// The host time at which a model-frame position plays (the inverse of
    /// [`model_position`](Self::model_position)).
    pub fn host_time(&self, model_position: f64) -> f64 {
        let (n, d) = self.ratio();
        let whole = model_position.floor();
        let frac = model_position - whole;
        let scaled = whole as i128 * d as i128;
        let q = scaled.div_euclid(n as i128);
        let r = scaled.rem_euclid(n as i128);
        self.start + q as f64 + (r as f64 + frac * d as f64) / n as f64
    }

    /// The model frames needed to show host frames `0..host_frames` of the clip: up to the
    /// position of the last host frame (its fields and retimed in-betweens hold on it).
    pub fn needed_model_frames(&self, host_frames: usize) -> usize {
        if host_frames == 0 {
            return 0;
        }
        let (n, d) = self.ratio();
        let scaled = (host_frames as u128 - 1) * n;
        (scaled.div_ceil(d) + 1) as usize
    }

    /// The two model frames and the blend weight for a host time, within `0..model_frames`
    /// (times before the clip hold the first frame, times after it the last).
    pub fn sample(&self, host_time: f64, model_frames: usize) -> Sample {
        let last = model_frames.saturating_sub(1);
        let pos = self.model_position(host_time).clamp(0.0, last as f64);
        let mut a = pos.floor() as usize;
        let mut weight = pos - a as f64;
        // A time a hair off a frame (a host's double of n/rate) is that frame.
        if weight < 1e-9 {
            weight = 0.0;
        } else if weight > 1.0 - 1e-9 {
            weight = 0.0;
            a += 1;
        }
        let a = a.min(last);
        let b = if weight > 0.0 { (a + 1).min(last) } else { a };
        Sample { a, b, weight }
    }
}

// ---------------------------------------------------------------------------------------------
// Windows

/// One generation: model frames `start .. start + frames` (4k+1 of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: usize,
    pub frames: usize,
}

impl Window {
    pub fn end(&self) -> usize {
        self.start + self.frames
    }
}

/// How a clip's model frames are covered by generations: one window up to
/// [`NATIVE_WINDOW`] frames, else windows of 81 frames every 65 (overlap
/// [`WINDOW_OVERLAP`]), the last one shortened to the smallest 4k+1 that reaches the end and
/// still spans the overlap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowPlan {
    pub windows: Vec<Window>,
    pub overlap: usize,
    /// The model frames the clip needs (`0..needed` are shown).
    pub needed: usize,
}

impl WindowPlan {
    pub fn new(needed: usize) -> WindowPlan {
        let needed = needed.max(1);
        let stride = NATIVE_WINDOW - WINDOW_OVERLAP;
        let mut windows = Vec::new();
        let mut start = 0;
        loop {
            let remaining = needed - start;
            if remaining <= NATIVE_WINDOW {
                let min = if start == 0 { 1 } else { WINDOW_OVERLAP + 1 };
                windows.push(Window {
                    start,
                    frames: round_up_4k1(remaining.max(min)),
                });
                break;
            }
            windows.push(Window {
                start,
                frames: NATIVE_WINDOW,
            });
            start += stride;
        }
        WindowPlan {
            windows,
            overlap: WINDOW_OVERLAP,
            needed,
        }
    }

    /// Model frames generated in all (past `needed` when the last window rounded up).
    pub fn generated_end(&self) -> usize {
        self.windows.last().map_or(0, Window::end)
    }

    pub fn rounded_up(&self) -> bool {
        self.generated_end() > self.needed
    }

    /// The weight of window `k`'s own frame `local` in the finished clip: 1 outside the
    /// overlaps, a linear cross-fade inside them, (i+1)/(L+1) rising into the later window,
    /// so that two windows' weights sum to 1 and neither is ever 0 inside an overlap.
    pub fn weight(&self, k: usize, local: usize) -> f64 {
        let w = self.windows[k];
        let frame = w.start + local;
        if k > 0 {
            let prev = self.windows[k - 1];
            if frame < prev.end() {
                let len = (prev.end() - w.start) as f64;
                return ((frame - w.start) as f64 + 1.0) / (len + 1.0);
            }
        }
        if let Some(next) = self.windows.get(k + 1) {
            if frame >= next.start {
                let len = (w.end() - next.start) as f64;
                return 1.0 - ((frame - next.start) as f64 + 1.0) / (len + 1.0);
            }
        }
        1.0
    }

    /// Window `k`'s per-frame weights.
    pub fn weights(&self, k: usize) -> Vec<f64> {
        (0..self.windows[k].frames)
            .map(|i| self.weight(k, i))
            .collect()
    }

    /// What makes model frame `frame`: (window, frame in the window, weight), one or two
    /// entries whose weights sum to 1. Empty past the generated frames.
    pub fn sources(&self, frame: usize) -> Vec<(usize, usize, f64)> {
        self.windows
            .iter()
            .enumerate()
            .filter(|(_, w)| (w.start..w.end()).contains(&frame))
            .map(|(k, w)| (k, frame - w.start, self.weight(k, frame - w.start)))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Size

/// The display aspect (width / height) of `width × height` pixels of the given pixel aspect.
fn display_aspect(width: u32, height: u32, pixel_aspect: f64) -> f64 {
    let par = if pixel_aspect.is_finite() && pixel_aspect > 0.0 {
        pixel_aspect
    } else {
        1.0
    };
    width as f64 * par / height as f64
}

/// How far apart two aspects are, as a ratio (0 = equal).
fn aspect_distance(a: f64, b: f64) -> f64 {
    (a / b).ln().abs()
}

/// A native size is taken as is when its aspect is within this of the project's (832 × 480 is
/// 2.5 % narrower than 16:9, which is what Wan's 480p means by 16:9).
const NATIVE_ASPECT_TOLERANCE: f64 = 0.03;

/// A native tier serves projects up to a quarter larger than itself (854 × 480 is 480p work,
/// not a reason to generate 720p).
const TIER_SLACK: f64 = 0.8;

/// The size to generate for a project of `width × height` pixels (of `pixel_aspect`): the
/// model's native size of the same aspect (within 3 %), else a size of the project's aspect
/// holding about as many pixels as the native tier (multiples of the model's
/// `size_multiple`). The tier is the smallest native area that is at least the project's
/// (less [`TIER_SLACK`]), or the largest the model has: small projects are generated at the native size and scaled
/// down (the model draws badly far below its training size), huge ones at the largest native
/// size and scaled up.
pub fn fit_project_size(
    width: u32,
    height: u32,
    pixel_aspect: f64,
    model: &ModelSpec,
) -> Result<(u32, u32), PlanError> {
    if width == 0 || height == 0 {
        return Err(PlanError(format!(
            "The host's project size is {width} x {height}: a clip needs a frame with pixels; choose a native resolution instead of Project."
        )));
    }
    let aspect = display_aspect(width, height, pixel_aspect);
    let area = aspect * height as f64 * height as f64;
    let mut tiers: Vec<f64> = model
        .native_sizes
        .iter()
        .map(|&(w, h)| w as f64 * h as f64)
        .collect();
    tiers.sort_by(f64::total_cmp);
    tiers.dedup();
    let budget = match tiers.last() {
        Some(&largest) => tiers
            .iter()
            .copied()
            .find(|&t| t >= TIER_SLACK * area)
            .unwrap_or(largest),
        None => area.min(OTHER_MODEL_MAX_AREA),
    };
    // A native size of this tier and aspect.
    if let Some(&size) = model
        .native_sizes
        .iter()
        .filter(|&&(w, h)| w as f64 * h as f64 == budget)
        .filter(|&&(w, h)| aspect_distance(w as f64 / h as f64, aspect) <= NATIVE_ASPECT_TOLERANCE)
        .min_by(|a, b| {
            aspect_distance(a.0 as f64 / a.1 as f64, aspect)
                .total_cmp(&aspect_distance(b.0 as f64 / b.1 as f64, aspect))
        })
    {
        return Ok(size);
    }
    let m = model.size_multiple.max(1) as f64;
    let ideal_h = (budget / aspect).sqrt();
    let ideal_w = ideal_h * aspect;
    let snap = |v: f64| (v / m).round().max(1.0) * m;
    let mut candidates = Vec::new();
    for h in [(ideal_h / m).floor() * m, (ideal_h / m).ceil() * m] {
        let h = h.max(m);
        candidates.push((snap(h * aspect), h));
    }
    for w in [(ideal_w / m).floor() * m, (ideal_w / m).ceil() * m] {
        let w = w.max(m);
        candidates.push((w, snap(w / aspect)));
    }
    let score = |&(w, h): &(f64, f64)| {
        aspect_distance(w / h, aspect) + 0.25 * aspect_distance(w * h, budget)
    };
    let (w, h) = candidates
        .into_iter()
        .min_by(|a, b| score(a).total_cmp(&score(b)))
        .expect("candidates");
    Ok((w as u32, h as u32))
}

/// A rectangle (x1, y1) – (x2, y2), y up, as OFX writes regions of definition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
}

impl Rect {
    pub fn width(&self) -> f64 {
        self.x2 - self.x1
    }
    pub fn height(&self) -> f64 {
        self.y2 - self.y1
    }
    pub fn centre(&self) -> (f64, f64) {
        ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }
}

/// Scale-and-crop (cover): the generated picture scaled uniformly until it fills the host's
/// region of definition, centred, the overflow cropped. Generated coordinates are continuous,
/// y up, (0, 0) the bottom-left corner of the bottom row (pixel centres at +0.5); host
/// coordinates are the host's (canonical at render scale 1, or pixels, see
/// [`at_render_scale`](Cover::at_render_scale)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cover {
    pub generated: (u32, u32),
    /// host = generated · scale + offset, per axis.
    pub scale_x: f64,
    pub scale_y: f64,
    pub offset_x: f64,
    pub offset_y: f64,
}

impl Cover {
    /// The cover transform from a `width × height` generated frame onto `rod` (canonical
    /// coordinates, which are square-pixel whatever the project's pixel aspect).
    pub fn new(width: u32, height: u32, rod: Rect) -> Cover {
        let (gw, gh) = (width.max(1) as f64, height.max(1) as f64);
        let scale = (rod.width() / gw).max(rod.height() / gh);
        let (cx, cy) = rod.centre();
        Cover {
            generated: (width, height),
            scale_x: scale,
            scale_y: scale,
            offset_x: cx - gw / 2.0 * scale,
            offset_y: cy - gh / 2.0 * scale,
        }
    }

    /// The same transform into pixel coordinates at a render scale (proxy): the full-size
    /// generated frame is scaled, never a smaller one generated. Canonical x is divided by the
    /// pixel aspect to give pixels.
    pub fn at_render_scale(&self, scale_x: f64, scale_y: f64, pixel_aspect: f64) -> Cover {
        let par = if pixel_aspect.is_finite() && pixel_aspect > 0.0 {
            pixel_aspect
        } else {
            1.0
        };
        let sx = scale_x / par;
        Cover {
            generated: self.generated,
            scale_x: self.scale_x * sx,
            scale_y: self.scale_y * scale_y,
            offset_x: self.offset_x * sx,
            offset_y: self.offset_y * scale_y,
        }
    }

    /// Generated → host.
    pub fn to_host(&self, gx: f64, gy: f64) -> (f64, f64) {
        (
            gx * self.scale_x + self.offset_x,
            gy * self.scale_y + self.offset_y,
        )
    }

    /// Host → generated (where to sample for a host position).
    pub fn to_generated(&self, hx: f64, hy: f64) -> (f64, f64) {
        (
            (hx - self.offset_x) / self.scale_x,
            (hy - self.offset_y) / self.scale_y,
        )
    }

    /// Host → the generated frame's (column, row) from the top-left, continuous, pixel
    /// centres at whole numbers (the position a bilinear sampler reads).
    pub fn sample_position(&self, hx: f64, hy: f64) -> (f64, f64) {
        let (gx, gy) = self.to_generated(hx, hy);
        (gx - 0.5, self.generated.1 as f64 - gy - 0.5)
    }

    /// The part of the generated frame (generated coordinates) that lands inside `rod`.
    pub fn visible(&self, rod: Rect) -> Rect {
        let (x1, y1) = self.to_generated(rod.x1, rod.y1);
        let (x2, y2) = self.to_generated(rod.x2, rod.y2);
        Rect { x1, y1, x2, y2 }
    }
}

// ---------------------------------------------------------------------------------------------
// The plan

/// What the host says about the clip.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HostClip {
    /// Frames per second (the effect's or project's frame rate).
    pub fps: f64,
    /// The clip's length in host frames.
    pub frames: usize,
    /// The host time of its first frame.
    pub start: f64,
    /// The project size in pixels and its pixel aspect.
    pub project_size: (u32, u32),
    pub pixel_aspect: f64,
}

/// Which size to generate (the *Resolution* choice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeChoice {
    Project,
    Native(u32, u32),
}

/// Everything the engine and the render action need to know about a clip.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipPlan {
    pub time: TimeMap,
    pub host_frames: usize,
    /// Model frames needed, and the 4k+1 count a single generation would take.
    pub count: FrameCount,
    pub windows: WindowPlan,
    /// Generated width and height.
    pub size: (u32, u32),
}

impl ClipPlan {
    pub fn new(
        host: &HostClip,
        mode: RateMode,
        size: SizeChoice,
        model: &ModelSpec,
    ) -> Result<ClipPlan, PlanError> {
        if host.frames == 0 {
            return Err(PlanError(
                "The clip has no frames: give it a duration of at least one frame.".into(),
            ));
        }
        if !host.start.is_finite() {
            return Err(PlanError(format!(
                "The host reports the clip starting at {}: that is not a time.",
                host.start
            )));
        }
        let time = TimeMap {
            mode,
            host_rate: Rate::from_fps(host.fps)?,
            model_rate: model.fps,
            start: host.start,
        };
        let needed = time.needed_model_frames(host.frames);
        let size = match size {
            SizeChoice::Native(w, h) => {
                let m = model.size_multiple.max(1);
                if w == 0 || h == 0 || w % m != 0 || h % m != 0 {
                    return Err(PlanError(format!(
                        "{w} x {h} cannot be generated: width and height must be positive multiples of {m}."
                    )));
                }
                (w, h)
            }
            SizeChoice::Project => fit_project_size(
                host.project_size.0,
                host.project_size.1,
                host.pixel_aspect,
                model,
            )?,
        };
        Ok(ClipPlan {
            time,
            host_frames: host.frames,
            count: FrameCount::new(needed),
            windows: WindowPlan::new(needed),
            size,
        })
    }

    /// The model frames and blend weight behind a host time.
    pub fn sample(&self, host_time: f64) -> Sample {
        self.time.sample(host_time, self.windows.needed)
    }

    /// A sentence about frames generated past the clip's end, when there are any. The clip
    /// is generated as one piece of [`FrameCount::frames`] (long clips with context windows
    /// inside one denoise, whose latent windows tile that count), so only the 4k+1 rounding
    /// of the whole adds frames.
    pub fn rounding_note(&self) -> Option<String> {
        self.count.rounded_up().then(|| {
            format!(
                "The clip needs {} model frames; Wan generates 4k+1 frames, so {} are generated and the last {} are not shown.",
                self.count.needed,
                self.count.frames,
                self.count.frames - self.count.needed
            )
        })
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntsc_rates_are_exact_fractions() {
        assert_eq!(
            Rate::from_fps(23.976).unwrap(),
            Rate {
                num: 24000,
                den: 1001
            }
        );
        assert_eq!(
            Rate::from_fps(24000.0 / 1001.0).unwrap(),
            Rate {
                num: 24000,
                den: 1001
            }
        );
        assert_eq!(
            Rate::from_fps(29.97).unwrap(),
            Rate {
                num: 30000,
                den: 1001
            }
        );
        assert_eq!(
            Rate::from_fps(59.94).unwrap(),
            Rate {
                num: 60000,
                den: 1001
            }
        );
        assert_eq!(Rate::from_fps(25.0).unwrap(), Rate { num: 25, den: 1 });
        assert_eq!(Rate::from_fps(12.5).unwrap(), Rate { num: 25, den: 2 });
        assert!(Rate::from_fps(0.0).is_err());
        assert!(Rate::from_fps(f64::NAN).is_err());
    }

    #[test]
    fn inverse_time_map_round_trips() {
        let map = TimeMap {
            mode: RateMode::Host,
            host_rate: Rate::from_fps(29.97).unwrap(),
            model_rate: Rate { num: 16, den: 1 },
            start: 100.0,
        };
        for t in [100.0, 101.0, 137.5, 30100.0] {
            let back = map.host_time(map.model_position(t));
            assert!((back - t).abs() < 1e-6, "{t} -> {back}");
        }
    }

    #[test]
    fn last_window_spans_the_overlap() {
        let plan = WindowPlan::new(NATIVE_WINDOW + 1);
        assert_eq!(plan.windows.len(), 2);
        assert_eq!(plan.windows[1].start, 65);
        assert_eq!(plan.windows[1].frames, 17);
        assert!(!plan.rounded_up());
    }
}
