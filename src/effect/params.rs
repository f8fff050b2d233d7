//! GenClip's parameters, described once as data: describe defines them from this table, the
//! instance resolves its handles from it, and `genclip describe` shows what the host read.
//!
//! Choice options are stored by index in saved projects: append to an option list, never
//! reorder or remove.

/// Script names of every parameter (stable: saved projects and scripts refer to them).
pub mod names {
    pub const PROMPT_A: &str = "promptA";
    pub const PROMPT_B: &str = "promptB";
    pub const PROMPT_C: &str = "promptC";
    pub const PROMPT_D: &str = "promptD";
    pub const WEIGHT_A: &str = "weightA";
    pub const WEIGHT_B: &str = "weightB";
    pub const WEIGHT_C: &str = "weightC";
    pub const WEIGHT_D: &str = "weightD";
    pub const PROMPT_SCHEDULE: &str = "promptSchedule";
    pub const NEGATIVE_PROMPT: &str = "negativePrompt";
    pub const SEED: &str = "seed";
    pub const RANDOMIZE_SEED: &str = "randomizeSeed";
    pub const STEPS: &str = "steps";
    pub const GUIDANCE: &str = "guidanceScale";
    pub const SHIFT: &str = "shift";
    pub const SAMPLER: &str = "sampler";
    pub const MODEL_FOLDER: &str = "modelFolder";
    pub const RESOLUTION: &str = "resolution";
    pub const DURATION: &str = "durationFrames";
    pub const FRAME_RATE_MODE: &str = "frameRateMode";
    pub const OUTPUT_TRANSFER: &str = "outputTransfer";
    pub const QUALITY: &str = "quality";
    pub const GENERATE: &str = "generate";
    pub const AUTO_GENERATE: &str = "autoGenerate";
    pub const STATUS: &str = "status";
    pub const SHOWN_CLIP: &str = "shownClip";
    pub const DEVICE: &str = "device";

    pub const PROMPTS: [&str; 4] = [PROMPT_A, PROMPT_B, PROMPT_C, PROMPT_D];
    pub const WEIGHTS: [&str; 4] = [WEIGHT_A, WEIGHT_B, WEIGHT_C, WEIGHT_D];
}

use names::*;

/// How a string parameter is edited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextMode {
    SingleLine,
    MultiLine,
    DirectoryPath,
    /// Read-only text the plugin writes (the host shows it as a label).
    Label,
    /// Never shown (secret): a value the plugin changes so that the host re-renders (see
    /// `docs/rendering.md`); persistent, so a reopened project keeps its frames.
    Hidden,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Text {
        mode: TextMode,
        default: &'static str,
    },
    Double {
        default: f64,
        min: f64,
        max: f64,
        display: (f64, f64),
        animates: bool,
    },
    Int {
        default: i32,
        min: i32,
        max: i32,
        display: (i32, i32),
    },
    Bool {
        default: bool,
    },
    Choice {
        options: &'static [&'static str],
        default: i32,
    },
    Button,
}

/// One parameter: name, what the user sees, and where it lives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub page: Page,
    pub kind: Kind,
}

/// The tabs/pages GenClip's controls are grouped in, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Prompts,
    Generation,
    Output,
}

impl Page {
    pub const ALL: [Page; 3] = [Page::Prompts, Page::Generation, Page::Output];

    pub fn name(self) -> &'static str {
        match self {
            Page::Prompts => "pagePrompts",
            Page::Generation => "pageGeneration",
            Page::Output => "pageOutput",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Page::Prompts => "Prompts",
            Page::Generation => "Generation",
            Page::Output => "Output",
        }
    }
}

/// Output sizes the Wan2.1 models were trained at, plus the host's project size.
pub const RESOLUTIONS: &[(&str, Option<(u32, u32)>)] = &[
    ("Project", None),
    ("832 x 480 (Wan 480p landscape)", Some((832, 480))),
    ("480 x 832 (Wan 480p portrait)", Some((480, 832))),
    ("1280 x 720 (Wan 720p landscape, 14B)", Some((1280, 720))),
    ("720 x 1280 (Wan 720p portrait, 14B)", Some((720, 1280))),
];
const RESOLUTION_LABELS: &[&str] = &[
    RESOLUTIONS[0].0,
    RESOLUTIONS[1].0,
    RESOLUTIONS[2].0,
    RESOLUTIONS[3].0,
    RESOLUTIONS[4].0,
];

pub const SAMPLERS: &[&str] = &["UniPC (model default)", "Flow-match Euler"];
pub const FRAME_RATE_MODES: &[&str] = &[
    "Host (conform to the timeline rate)",
    "Model native (one model frame per host frame)",
];
pub const OUTPUT_TRANSFERS: &[&str] = &["sRGB / Rec.709 display", "Linear"];
pub const QUALITIES: &[&str] = &["Final", "Preview (fewer steps, smaller size)"];
/// Indices as `client::DeviceChoice::from_param` reads them.
pub const DEVICES: &[&str] = &["Auto (GPU when available)", "CPU", "GPU 0", "GPU 1"];

const fn prompt(name: &'static str, label: &'static str, hint: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        label,
        hint,
        page: Page::Prompts,
        kind: Kind::Text {
            mode: TextMode::MultiLine,
            default: "",
        },
    }
}

const fn weight(name: &'static str, label: &'static str, default: f64) -> ParamSpec {
    ParamSpec {
        name,
        label,
        hint:
            "How strongly this prompt slot steers the clip at this frame (0 = off). Keyframe the \
               weights to blend from one prompt to another over time; weights are normalised \
               over the slots that are on.",
        page: Page::Prompts,
        kind: Kind::Double {
            default,
            min: 0.0,
            max: 1.0,
            display: (0.0, 1.0),
            animates: true,
        },
    }
}

/// Every parameter in definition order (pages list them in this order too).
pub static PARAMS: &[ParamSpec] = &[
    prompt(PROMPT_A, "Prompt A", "What the clip shows: subject, action, setting, camera, light. Slot A is the main prompt."),
    prompt(PROMPT_B, "Prompt B", "A second prompt; its weight decides when and how much it takes over from the others."),
    prompt(PROMPT_C, "Prompt C", "A third prompt slot, blended by Weight C."),
    prompt(PROMPT_D, "Prompt D", "A fourth prompt slot, blended by Weight D."),
    weight(WEIGHT_A, "Weight A", 1.0),
    weight(WEIGHT_B, "Weight B", 0.0),
    weight(WEIGHT_C, "Weight C", 0.0),
    weight(WEIGHT_D, "Weight D", 0.0),
    ParamSpec {
        name: PROMPT_SCHEDULE,
        label: "Prompt schedule",
        hint: "Optional prompts by frame, one entry per line or separated by ';', e.g. \
               '0: a harbour at dawn; 48: the same harbour at night' (switches at frame 48), or \
               '24-48: the same harbour at night' (blends in over frames 24 to 48). When set, it \
               replaces the prompt slots.",
        page: Page::Prompts,
        kind: Kind::Text { mode: TextMode::MultiLine, default: "" },
    },
    ParamSpec {
        name: NEGATIVE_PROMPT,
        label: "Negative prompt",
        hint: "What the clip should avoid (e.g. 'blurry, low quality, text, watermark'). Used by classifier-free guidance.",
        page: Page::Prompts,
        kind: Kind::Text { mode: TextMode::MultiLine, default: "" },
    },
    ParamSpec {
        name: SEED,
        label: "Seed",
        hint: "The noise seed. The same seed, prompts and settings give the same clip on every machine.",
        page: Page::Generation,
        kind: Kind::Int { default: 42, min: 0, max: i32::MAX, display: (0, 1_000_000) },
    },
    ParamSpec {
        name: RANDOMIZE_SEED,
        label: "Randomize",
        hint: "Pick a new random seed.",
        page: Page::Generation,
        kind: Kind::Button,
    },
    ParamSpec {
        name: STEPS,
        label: "Steps",
        hint: "Denoising steps. More steps give finer detail and take proportionally longer; Wan's default is 50.",
        page: Page::Generation,
        kind: Kind::Int { default: 50, min: 1, max: 200, display: (1, 100) },
    },
    ParamSpec {
        name: GUIDANCE,
        label: "Guidance scale",
        hint: "How closely the clip follows the prompts (classifier-free guidance). 5 is Wan's default; 1 turns guidance off and halves the work.",
        page: Page::Generation,
        kind: Kind::Double { default: 5.0, min: 0.0, max: 30.0, display: (1.0, 15.0), animates: false },
    },
    ParamSpec {
        name: SHIFT,
        label: "Shift",
        hint: "Flow-matching time shift: higher values spend more steps on composition. Wan uses 3 for 480p and 5 for 720p.",
        page: Page::Generation,
        kind: Kind::Double { default: 3.0, min: 0.1, max: 20.0, display: (1.0, 10.0), animates: false },
    },
    ParamSpec {
        name: SAMPLER,
        label: "Sampler",
        hint: "The denoising scheduler. UniPC is what the model folder's scheduler config names for Wan.",
        page: Page::Generation,
        kind: Kind::Choice { options: SAMPLERS, default: 0 },
    },
    ParamSpec {
        name: MODEL_FOLDER,
        label: "Model folder",
        hint: "A Wan2.1 text-to-video model in Hugging Face Diffusers layout on this machine (the folder holding model_index.json). Nothing is downloaded.",
        page: Page::Generation,
        kind: Kind::Text { mode: TextMode::DirectoryPath, default: "" },
    },
    ParamSpec {
        name: RESOLUTION,
        label: "Resolution",
        hint: "Generate at one of the model's native sizes, or at the project size (fitted to the nearest size the model supports, then scaled to the frame).",
        page: Page::Output,
        kind: Kind::Choice { options: RESOLUTION_LABELS, default: 0 },
    },
    ParamSpec {
        name: DURATION,
        label: "Duration (frames)",
        hint: "Length of the generated clip in frames, where the host lets the effect choose it (General context). Wan generates 4k+1 frames; 81 is its native length.",
        page: Page::Output,
        kind: Kind::Int { default: 81, min: 1, max: 100_000, display: (1, 241) },
    },
    ParamSpec {
        name: FRAME_RATE_MODE,
        label: "Frame rate",
        hint: "Host: the clip keeps its real-time speed at the timeline's rate (frames are blended to conform). Model native: each model frame fills one timeline frame.",
        page: Page::Output,
        kind: Kind::Choice { options: FRAME_RATE_MODES, default: 0 },
    },
    ParamSpec {
        name: OUTPUT_TRANSFER,
        label: "Output transfer",
        hint: "The model makes display-referred sRGB/Rec.709 pictures. Choose Linear for scene-linear pipelines (Nuke, ACES); the default follows the host.",
        page: Page::Output,
        kind: Kind::Choice { options: OUTPUT_TRANSFERS, default: 0 },
    },
    ParamSpec {
        name: QUALITY,
        label: "Quality",
        hint: "Preview uses fewer steps and a smaller size for fast look development; Final renders what the settings say.",
        page: Page::Output,
        kind: Kind::Choice { options: QUALITIES, default: 0 },
    },
    ParamSpec {
        name: GENERATE,
        label: "Generate",
        hint: "Generate the clip now with the current settings.",
        page: Page::Output,
        kind: Kind::Button,
    },
    ParamSpec {
        name: AUTO_GENERATE,
        label: "Auto-generate",
        hint: "Regenerate whenever a setting changes. Off: edits only mark the clip out of date until you press Generate.",
        page: Page::Output,
        kind: Kind::Bool { default: false },
    },
    ParamSpec {
        name: STATUS,
        label: "Status",
        hint: "What GenClip is doing with this clip: not generated, generating, ready, or what went wrong and how to fix it.",
        page: Page::Output,
        kind: Kind::Text { mode: TextMode::Label, default: "Not generated" },
    },
    ParamSpec {
        name: SHOWN_CLIP,
        label: "Shown clip",
        hint: "Internal: which generated clip the frames show. Changing it makes the host render again.",
        page: Page::Output,
        kind: Kind::Text { mode: TextMode::Hidden, default: "" },
    },
    // Last, so that the parameters before keep their indices.
    ParamSpec {
        name: DEVICE,
        label: "Device",
        hint: "Where the clip is computed. Auto uses the GPU engine when it is installed and an NVIDIA GPU works, else the CPU. GPU clips are computed in bf16 and differ slightly from CPU clips, so each is cached apart. If the GPU engine cannot start, GenClip generates on the CPU and says why in Status.",
        page: Page::Generation,
        kind: Kind::Choice { options: DEVICES, default: 0 },
    },
];

/// The specification of a parameter by script name.
pub fn spec(name: &str) -> Option<&'static ParamSpec> {
    PARAMS.iter().find(|p| p.name == name)
}

/// Index of a parameter in [`PARAMS`]; panics only on a name that is not in the table (a bug).
pub fn index(name: &str) -> usize {
    PARAMS
        .iter()
        .position(|p| p.name == name)
        .unwrap_or_else(|| panic!("no parameter named {name}"))
}
