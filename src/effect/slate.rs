//! The slate: the neutral frame GenClip shows where it has no generated picture yet. It says
//! what state the clip is in (not generated, generating N %, or what went wrong) in text
//! large enough to read in a timeline viewer.
//!
//! The slate is laid out once per render at the full-resolution frame size and then sampled
//! per output pixel, so proxy (render-scale) renders show the same picture, only smaller.

use font8x8::UnicodeFonts;

/// What the slate says.
#[derive(Clone, Debug, Default)]
pub struct SlateContent {
    /// The state in a few words ("NOT GENERATED", "GENERATING 42%", "ERROR").
    pub headline: String,
    pub tone: Tone,
    /// The full sentence: what is happening or what to do.
    pub detail: String,
    /// The leading prompt at this frame, if any.
    pub prompt: Option<String>,
    /// Frame number and settings, small at the bottom.
    pub footer: String,
    /// Fraction done, drawn as a bar, while generating.
    pub progress: Option<f64>,
    /// Thumbnails get only the title and the headline.
    pub compact: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tone {
    #[default]
    Neutral,
    Busy,
    Error,
}

/// Display-referred colours (sRGB / Rec.709 encoded).
const BACKGROUND: [f32; 3] = [0.16, 0.16, 0.16];
const BORDER: [f32; 3] = [0.32, 0.32, 0.32];
const TITLE: [f32; 3] = [0.92, 0.92, 0.92];
const DETAIL: [f32; 3] = [0.80, 0.80, 0.80];
const DIM: [f32; 3] = [0.58, 0.58, 0.58];
const BAR_TRACK: [f32; 3] = [0.26, 0.26, 0.26];

impl Tone {
    fn colour(self) -> [f32; 3] {
        match self {
            Tone::Neutral => [0.90, 0.78, 0.45],
            Tone::Busy => [0.50, 0.78, 0.95],
            Tone::Error => [0.95, 0.45, 0.40],
        }
    }
}

struct Line {
    glyphs: Vec<[u8; 8]>,
    /// Size of one font dot in full-resolution pixels.
    dot: f64,
    left: f64,
    top: f64,
    colour: [f32; 3],
}

/// A laid-out slate for a frame of `width` x `height` full-resolution pixels.
pub struct Slate {
    width: f64,
    height: f64,
    lines: Vec<Line>,
    border: f64,
    bar: Option<(f64, f64, f64, f64, f64)>, // left, top, width, height, fraction
}

fn glyph(c: char) -> [u8; 8] {
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

/// Greedy word wrap to `columns` characters, at most `max_lines` lines (the last one
/// ellipsised when text remains).
fn wrap(text: &str, columns: usize, max_lines: usize) -> Vec<String> {
    let columns = columns.max(4);
    // Only the first lines are shown: look at no more text than fills one line beyond them,
    // so a huge prompt costs no more per frame than a short one.
    let budget = (max_lines + 1) * (columns + 1);
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        if lines.len() > max_lines {
            break;
        }
        let mut word: String = word.chars().take(budget).collect();
        while word.chars().count() > columns {
            let head: String = word.chars().take(columns).collect();
            if !current.is_empty() {
                lines.push(std::mem::take(&mut current));
            }
            lines.push(head);
            word = word.chars().skip(columns).collect();
        }
        let needed =
            current.chars().count() + usize::from(!current.is_empty()) + word.chars().count();
        if needed > columns && !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            let keep: String = last.chars().take(columns.saturating_sub(3)).collect();
            *last = format!("{keep}...");
        }
    }
    lines
}

impl Slate {
    pub fn layout(width: f64, height: f64, content: &SlateContent) -> Slate {
        // One font dot per 240th of the height: 16 px letters at 480 lines, 32 px at 1080.
        let dot = (height / 240.0).floor().max(1.0);
        let cell = 8.0 * dot;
        let columns = ((width * 0.86) / cell).floor().max(1.0) as usize;

        let mut rows: Vec<(String, f64, [f32; 3])> = vec![
            ("GenClip".into(), 2.0 * dot, TITLE),
            (String::new(), dot, DIM),
        ];
        rows.push((content.headline.clone(), dot, content.tone.colour()));
        let bar_row = rows.len();
        if !content.compact {
            // A blank row under the headline (the progress bar sits in it while generating).
            rows.push((String::new(), dot, DIM));
            for line in wrap(&content.detail, columns, 4) {
                rows.push((line, dot, DETAIL));
            }
            if let Some(prompt) = &content.prompt {
                rows.push((String::new(), dot, DIM));
                for line in wrap(&format!("\"{prompt}\""), columns, 3) {
                    rows.push((line, dot, DIM));
                }
            }
            rows.push((String::new(), dot, DIM));
            rows.push((content.footer.clone(), dot, DIM));
        }

        let line_gap = 0.5 * cell;
        let block: f64 = rows.iter().map(|(_, d, _)| 8.0 * d + line_gap).sum::<f64>() - line_gap;
        let mut top = ((height - block) / 2.0).max(0.0).round();
        let mut lines = Vec::with_capacity(rows.len());
        let mut bar = None;
        for (i, (text, d, colour)) in rows.into_iter().enumerate() {
            if i == bar_row {
                if let Some(fraction) = content.progress.filter(|_| !content.compact) {
                    // Centred in the blank row.
                    let w = (columns as f64 * cell).min(width * 0.6);
                    bar = Some((
                        ((width - w) / 2.0).round(),
                        top + 2.0 * dot,
                        w,
                        4.0 * dot,
                        fraction.clamp(0.0, 1.0),
                    ));
                }
            }
            let glyphs: Vec<[u8; 8]> = text.chars().map(glyph).collect();
            let left = ((width - glyphs.len() as f64 * 8.0 * d) / 2.0)
                .max(0.0)
                .round();
            lines.push(Line {
                glyphs,
                dot: d,
                left,
                top,
                colour,
            });
            top += 8.0 * d + line_gap;
        }
        Slate {
            width,
            height,
            lines,
            border: dot,
            bar,
        }
    }

    /// The slate's colour at `(x, y_from_top)` in full-resolution pixels.
    pub fn colour_at(&self, x: f64, y_from_top: f64) -> [f32; 3] {
        for line in &self.lines {
            let size = 8.0 * line.dot;
            if y_from_top < line.top || y_from_top >= line.top + size || x < line.left {
                continue;
            }
            let column = ((x - line.left) / size) as usize;
            let Some(bits) = line.glyphs.get(column) else {
                continue;
            };
            let gy = (((y_from_top - line.top) / line.dot) as usize).min(7);
            let gx = ((((x - line.left) % size) / line.dot) as usize).min(7);
            if bits[gy] >> gx & 1 == 1 {
                return line.colour;
            }
        }
        if let Some((left, top, w, h, fraction)) = self.bar {
            if x >= left && x < left + w && y_from_top >= top && y_from_top < top + h {
                return if x < left + w * fraction {
                    Tone::Busy.colour()
                } else {
                    BAR_TRACK
                };
            }
        }
        // A thin frame at 5 % inside the edges: shows the frame's extent in a viewer.
        let (mx, my) = (self.width * 0.05, self.height * 0.05);
        let on_vertical =
            (x - mx).abs() < self.border || (x - (self.width - mx)).abs() < self.border;
        let on_horizontal = (y_from_top - my).abs() < self.border
            || (y_from_top - (self.height - my)).abs() < self.border;
        let inside_x = x >= mx - self.border && x <= self.width - mx + self.border;
        let inside_y =
            y_from_top >= my - self.border && y_from_top <= self.height - my + self.border;
        if (on_vertical && inside_y) || (on_horizontal && inside_x) {
            return BORDER;
        }
        BACKGROUND
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_stops_early_on_huge_text() {
        let huge = "x".repeat(5_000_000) + " and more";
        let lines = wrap(&huge, 40, 3);
        assert_eq!(lines.len(), 3);
        assert!(lines[2].ends_with("..."));
    }

    #[test]
    fn wrap_respects_columns_and_line_limit() {
        let lines = wrap("one two three four five six seven eight nine ten", 10, 3);
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.chars().count() <= 10), "{lines:?}");
        assert!(lines[2].ends_with("..."));
        assert_eq!(
            wrap("abcdefghijklmnop", 6, 9),
            vec!["abcdef", "ghijkl", "mnop"]
        );
    }

    #[test]
    fn text_is_drawn_in_the_line_colour() {
        let content = SlateContent {
            headline: "ERROR".into(),
            tone: Tone::Error,
            ..Default::default()
        };
        let slate = Slate::layout(1920.0, 1080.0, &content);
        let headline = &slate.lines[2];
        let mut lit = 0;
        for gy in 0..8 {
            for gx in 0..8 * 5 {
                let c = slate.colour_at(
                    headline.left + (gx as f64 + 0.5) * headline.dot,
                    headline.top + (gy as f64 + 0.5) * headline.dot,
                );
                if c == Tone::Error.colour() {
                    lit += 1;
                }
            }
        }
        // "ERROR" in an 8x8 font lights a good share of its 320 dots.
        assert!(lit > 60, "{lit} dots lit");
        assert_eq!(slate.colour_at(1.0, 540.0), BACKGROUND);
    }

    #[test]
    fn progress_shows_as_a_bar_filled_to_the_fraction() {
        let content = SlateContent {
            headline: "GENERATING 25%".into(),
            tone: Tone::Busy,
            progress: Some(0.25),
            ..Default::default()
        };
        let slate = Slate::layout(1280.0, 720.0, &content);
        let (left, top, w, h, fraction) = slate.bar.expect("a progress bar");
        assert_eq!(fraction, 0.25);
        let y = top + h / 2.0;
        assert_eq!(slate.colour_at(left + 0.1 * w, y), Tone::Busy.colour());
        assert_eq!(slate.colour_at(left + 0.5 * w, y), BAR_TRACK);
        let compact = Slate::layout(
            1280.0,
            720.0,
            &SlateContent {
                compact: true,
                ..content
            },
        );
        assert!(compact.bar.is_none() && compact.lines.len() == 3);
    }
}
