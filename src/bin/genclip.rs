//! `genclip`: the headless OpenFX host. It loads a built GenClip bundle through the OpenFX C
//! ABI and drives it the way an editing host does (and the way a render-farm node would).
//!
//! ```text
//! genclip bundle   [--out DIR]                    assemble GenClip.ofx.bundle from this build
//! genclip describe [BUNDLE]                       print contexts and parameters read via the ABI
//! genclip render   --out DIR [--bundle BUNDLE] [options]   render frames to PNG/EXR
//! genclip provenance FRAME|DIR|RECORD|KEY [--frame N]      how a frame was made
//! ```

use genclip::bundle;
use genclip::cli::Flags;
use genclip::effect::params::{names, Kind, RESOLUTIONS};
use genclip::effect::PLUGIN_IDENTIFIER;
use genclip::frame_files::{self, FrameFormat, Picture};
use genclip::host::{
    BitDepth, Bundle, Components, Host, HostOptions, ParamValue, PropValue, RenderRequest,
    RenderedImage,
};
use genclip::provenance;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "\
genclip: the GenClip headless OpenFX host

usage:
  genclip bundle   [--out DIR] [--library FILE] [--engine FILE]
                   [--cuda-engine FILE | --no-cuda] [--cuda-libs DIR]
      Assemble DIR/GenClip.ofx.bundle (default DIR: target/bundle) from the plugin library
      and the genclip-engine program built next to this executable, and the GPU engine
      genclip-engine-cuda when it is there too (tools/build_cuda_engine.sh; docs/gpu.md).
      --cuda-libs DIR copies the CUDA libraries it needs from DIR into the bundle.
  genclip describe [BUNDLE]
      Load the bundle through the OpenFX ABI and print its contexts and parameters.
  genclip render   --out DIR [--bundle BUNDLE] [options]
      Render a clip frame by frame through the OpenFX ABI and write DIR/frame.NNNN.EXT
      (and DIR/provenance.json, the generated clip's record).
  genclip provenance FRAME|DIR|RECORD|KEY [--frame N] [--json]
      Print how a rendered frame was made: model and weight hashes, prompts and their
      weights at that frame, seed, steps, guidance, sampler, sizes, versions, time.

render options:
  --prompt TEXT             Prompt A                  --prompt-b/-c/-d TEXT  more prompt slots
  --weight-a/-b/-c/-d W     a slot's weight: a constant (0.5) or keyframes '0:1, 48:0'
                            (host frame:value, linear between keys)
  --negative-prompt TEXT    --schedule TEXT ('0: dawn; 48: night'; '24-48: night' blends)
  --model DIR (Model folder)
  --seed N  --steps N  --guidance X  --shift X  --sampler unipc|euler
  --width W --height H      frame size: a Wan native size picks that Resolution, any other
                            size becomes the project size, Resolution = Project
                            (default 832 x 480)
  --frames F (default 81)   --start N (first frame, default 0)
  --fps X                   the host's frame rate (default 16)
  --frame-rate-mode conform|native (default conform)
  --transfer display|linear (default display)   --quality final|preview (default final)
  --key NAME=T:V,T:V...     keyframes on any animatable parameter, e.g. weightB=0:0,48:1
  --set NAME=VALUE          any other parameter by script name
  --format png8|png16|exr|exr-half|exr-float
                            (default png16; exr-half with --transfer linear)
  --context generator|general|filter (default generator)
  --depth float|short|byte (default float)   --scale S (render scale, default 1)
  --threads N (frames rendered at once, default 1)   --abort-after-ms N
  --host-name NAME          identify as another host (e.g. uk.co.thefoundry.nuke)
  --dry-run                 set the parameters and print them (with their keyframes)
                            instead of rendering; --out is then optional

BUNDLE defaults to the first GenClip.ofx.bundle on OFX_PLUGIN_PATH or in /usr/OFX/Plugins.";

fn main() -> ExitCode {
    // Behave like other command-line tools when the reader goes away (`genclip describe | head`).
    // SAFETY: restoring the default signal disposition before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    genclip::cli::run(
        "genclip",
        USAGE,
        &[
            ("bundle", cmd_bundle),
            ("describe", cmd_describe),
            ("render", cmd_render),
            ("provenance", cmd_provenance),
        ],
    )
}

fn exe_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    Ok(exe.parent().map(Path::to_path_buf).unwrap_or_default())
}

fn cmd_bundle(flags: &Flags) -> Result<(), String> {
    flags.check_known(&[
        "out",
        "library",
        "engine",
        "cuda-engine",
        "no-cuda",
        "cuda-libs",
    ])?;
    let dir = exe_dir()?;
    let library = match flags.get("library") {
        Some(p) => PathBuf::from(p),
        None => bundle::built_library(&dir),
    };
    let engine = match flags.get("engine") {
        Some(p) => PathBuf::from(p),
        None => dir.join(genclip::client::ENGINE_FILE),
    };
    // target/<profile>/genclip -> target/bundle
    let out = match flags.get("out") {
        Some(p) => PathBuf::from(p),
        None => dir
            .parent()
            .map(|t| t.join("bundle"))
            .unwrap_or_else(|| PathBuf::from("bundle")),
    };
    let cuda_engine = match (flags.get("cuda-engine"), flags.get("no-cuda").is_some()) {
        (Some(_), true) => return Err("--cuda-engine and --no-cuda contradict each other".into()),
        (Some(p), false) => Some(PathBuf::from(p)),
        (None, true) => None,
        (None, false) => Some(dir.join(genclip::client::CUDA_ENGINE_FILE)).filter(|p| p.is_file()),
    };
    let cuda_libs = flags.get("cuda-libs").map(PathBuf::from);
    if cuda_libs.is_some() && cuda_engine.is_none() {
        return Err("--cuda-libs needs a GPU engine (build it with tools/build_cuda_engine.sh, or name it with --cuda-engine)".into());
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let cuda = cuda_engine.as_deref().map(|program| bundle::CudaEngine {
        program,
        libraries: cuda_libs.as_deref(),
    });
    let path = bundle::assemble_with(&library, &engine, cuda, &out).map_err(|e| e.to_string())?;
    match &cuda_engine {
        Some(p) => eprintln!("genclip: with the GPU engine {}", p.display()),
        None => eprintln!("genclip: CPU engine only (no genclip-engine-cuda)"),
    }
    println!("{}", path.display());
    Ok(())
}

fn find_bundle(explicit: Option<&str>) -> Result<PathBuf, String> {
    match explicit {
        Some(p) => Ok(PathBuf::from(p)),
        None => Bundle::find_on_search_path(bundle::BUNDLE_NAME).ok_or_else(|| {
            format!(
                "no {} on OFX_PLUGIN_PATH or in /usr/OFX/Plugins: pass --bundle PATH",
                bundle::BUNDLE_NAME
            )
        }),
    }
}

fn cmd_describe(flags: &Flags) -> Result<(), String> {
    flags.check_known(&["bundle", "host-name"])?;
    let path = find_bundle(
        flags
            .positional
            .first()
            .map(String::as_str)
            .or(flags.get("bundle")),
    )?;
    let mut options = HostOptions {
        echo_messages: false,
        ..HostOptions::default()
    };
    if let Some(name) = flags.get("host-name") {
        options.host_name = name.to_string();
    }
    let host = Host::new(options);
    let bundle = Bundle::open(&path).map_err(|e| e.to_string())?;
    for info in bundle.plugins() {
        println!(
            "plugin {} {}.{} ({} v{})",
            info.identifier, info.version.0, info.version.1, info.api, info.api_version
        );
    }
    let plugin = host
        .load_plugin(&bundle, PLUGIN_IDENTIFIER)
        .map_err(|e| e.to_string())?;
    plugin.describe().map_err(|e| e.to_string())?;
    let props = plugin.descriptor_props();
    for key in [
        "OfxPropLabel",
        "OfxImageEffectPluginPropGrouping",
        "OfxImageEffectPluginRenderThreadSafety",
        "OfxImageEffectPropSupportedPixelDepths",
    ] {
        if let Some(v) = props.get(key) {
            println!("  {key}: {}", show(v));
        }
    }
    let contexts = plugin.supported_contexts();
    println!(
        "contexts: {}",
        contexts
            .iter()
            .map(|c| c.trim_start_matches("OfxImageEffectContext"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for context in &contexts {
        let desc = plugin
            .describe_in_context(context)
            .map_err(|e| e.to_string())?;
        println!(
            "\ncontext {}",
            context.trim_start_matches("OfxImageEffectContext")
        );
        for (clip, clip_props) in &desc.clips {
            let comps = clip_props
                .get("OfxImageEffectPropSupportedComponents")
                .map(show)
                .unwrap_or_default();
            println!("  clip {clip}: {comps}");
        }
        for param in &desc.params {
            let p = &param.props;
            let get = |k: &str| p.get(k).map(show).unwrap_or_default();
            let kind = param.param_type.trim_start_matches("OfxParamType");
            let mut line = format!("  {:<16} {:<10} {}", param.name, kind, get("OfxPropLabel"));
            if let Some(PropValue::Str(mode)) = p.get("OfxParamPropStringMode") {
                line += &format!(" mode={}", mode[0].trim_start_matches("OfxParamStringIs"));
            }
            if p.get("OfxParamPropAnimates") == Some(&PropValue::Int(vec![1])) {
                line += " animates";
            }
            if p.contains_key("OfxParamPropDefault") {
                line += &format!(" default={}", get("OfxParamPropDefault"));
            }
            if p.contains_key("OfxParamPropMin") {
                line += &format!(
                    " range=[{}, {}] display=[{}, {}]",
                    get("OfxParamPropMin"),
                    get("OfxParamPropMax"),
                    get("OfxParamPropDisplayMin"),
                    get("OfxParamPropDisplayMax")
                );
            }
            if let Some(PropValue::Str(options)) = p.get("OfxParamPropChoiceOption") {
                if !options.is_empty() {
                    line += &format!(" options={options:?}");
                }
            }
            if let Some(PropValue::Str(children)) = p.get("OfxParamPropPageChild") {
                line += &format!(" children={}", children.join(","));
            }
            println!("{line}");
        }
    }
    plugin.unload().map_err(|e| e.to_string())
}

fn show(v: &PropValue) -> String {
    let items: Vec<String> = match v {
        PropValue::Str(s) => s.iter().map(|s| format!("{s:?}")).collect(),
        PropValue::Int(i) => i.iter().map(|i| i.to_string()).collect(),
        PropValue::Double(d) => d.iter().map(|d| d.to_string()).collect(),
        PropValue::Pointer(p) => p.iter().map(|p| format!("{p:#x}")).collect(),
    };
    items.join(" ")
}

/// A rendered host image, read top row first for the file writers.
struct Frame(RenderedImage);

impl Picture for Frame {
    fn width(&self) -> usize {
        self.0.width()
    }
    fn height(&self) -> usize {
        self.0.height()
    }
    fn rgba(&self, x: usize, y: usize) -> [f32; 4] {
        self.0.rgba_f32(x, self.0.height() - 1 - y)
    }
}

const RENDER_FLAGS: &[&str] = &[
    "bundle",
    "out",
    "prompt",
    "prompt-b",
    "prompt-c",
    "prompt-d",
    "negative-prompt",
    "schedule",
    "model",
    "seed",
    "steps",
    "guidance",
    "shift",
    "width",
    "height",
    "frames",
    "start",
    "fps",
    "key",
    "set",
    "format",
    "context",
    "depth",
    "scale",
    "threads",
    "abort-after-ms",
    "host-name",
    "weight-a",
    "weight-b",
    "weight-c",
    "weight-d",
    "sampler",
    "frame-rate-mode",
    "transfer",
    "quality",
    "dry-run",
];

/// A parameter edit from the command line: a constant value, or keyframes (time, value).
enum Edit {
    Set(String, String),
    Keys(String, Vec<(f64, String)>),
}

/// Keyframes written as `T:V, T:V` (times are host frames).
fn parse_keys(flag: &str, text: &str) -> Result<Vec<(f64, String)>, String> {
    text.split(',')
        .map(|pair| {
            let (t, v) = pair.split_once(':').ok_or_else(|| {
                format!("{flag} {text}: write keyframes as FRAME:VALUE pairs, e.g. \"0:1, 48:0\"")
            })?;
            let t: f64 = t
                .trim()
                .parse()
                .ok()
                .filter(|t: &f64| t.is_finite())
                .ok_or_else(|| format!("{flag} {text}: {} is not a frame", t.trim()))?;
            Ok((t, v.trim().to_string()))
        })
        .collect()
}

/// A choice flag: its name, the parameter it sets, and its words with their option index.
type ChoiceFlag = (&'static str, &'static str, &'static [(&'static str, usize)]);

/// `--NAME VALUE` for a choice written as a word: the option's index.
fn choice_flag(
    flags: &Flags,
    flag: &str,
    words: &[(&str, usize)],
) -> Result<Option<String>, String> {
    let Some(value) = flags.get(flag) else {
        return Ok(None);
    };
    let lower = value.trim().to_ascii_lowercase();
    words
        .iter()
        .find(|(w, _)| *w == lower)
        .map(|(_, i)| Some(i.to_string()))
        .ok_or_else(|| {
            let names: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
            format!("--{flag} {value}: use {}", names.join(" or "))
        })
}

/// The parameter edits the render flags ask for, in the order a user would make them;
/// `--set` and `--key` come last, so they override the named flags.
fn render_edits(flags: &Flags, resolution: usize, frames: usize) -> Result<Vec<Edit>, String> {
    let mut edits = Vec::new();
    let mut set = |name: &str, value: &str| edits.push(Edit::Set(name.into(), value.into()));
    for (flag, param) in [
        ("prompt", names::PROMPT_A),
        ("prompt-b", names::PROMPT_B),
        ("prompt-c", names::PROMPT_C),
        ("prompt-d", names::PROMPT_D),
        ("negative-prompt", names::NEGATIVE_PROMPT),
        ("schedule", names::PROMPT_SCHEDULE),
        ("model", names::MODEL_FOLDER),
        ("seed", names::SEED),
        ("steps", names::STEPS),
        ("guidance", names::GUIDANCE),
        ("shift", names::SHIFT),
    ] {
        if let Some(v) = flags.get(flag) {
            set(param, v);
        }
    }
    let choices: [ChoiceFlag; 4] = [
        ("sampler", names::SAMPLER, &[("unipc", 0), ("euler", 1)]),
        (
            "frame-rate-mode",
            names::FRAME_RATE_MODE,
            &[("conform", 0), ("native", 1)],
        ),
        (
            "transfer",
            names::OUTPUT_TRANSFER,
            &[("display", 0), ("linear", 1)],
        ),
        ("quality", names::QUALITY, &[("final", 0), ("preview", 1)]),
    ];
    for (flag, param, words) in choices {
        if let Some(index) = choice_flag(flags, flag, words)? {
            set(param, &index);
        }
    }
    set(names::RESOLUTION, &resolution.to_string());
    set(names::DURATION, &frames.to_string());
    for item in flags.all("set") {
        let (n, v) = item
            .split_once('=')
            .ok_or_else(|| format!("--set {item}: expected NAME=VALUE"))?;
        set(n, v);
    }
    for (flag, param) in ["weight-a", "weight-b", "weight-c", "weight-d"]
        .into_iter()
        .zip(names::WEIGHTS)
    {
        if let Some(v) = flags.get(flag) {
            if v.contains(':') {
                edits.push(Edit::Keys(
                    param.into(),
                    parse_keys(&format!("--{flag}"), v)?,
                ));
            } else {
                edits.push(Edit::Set(param.into(), v.into()));
            }
        }
    }
    for key in flags.all("key") {
        let (name, keys) = key
            .split_once('=')
            .ok_or_else(|| format!("--key {key}: expected NAME=T:V,T:V"))?;
        edits.push(Edit::Keys(name.into(), parse_keys("--key", keys)?));
    }
    Ok(edits)
}

/// Applies the edits to the instance as a user would (instance-changed after each).
fn apply_edits(instance: &genclip::host::Instance, edits: &[Edit]) -> Result<(), String> {
    for edit in edits {
        match edit {
            Edit::Set(name, value) => {
                let value = parse_param_value(name, value)?;
                instance.set_param(name, value).map_err(|e| e.to_string())?;
            }
            Edit::Keys(name, keys) => {
                for (t, v) in keys {
                    instance
                        .set_key(name, *t, parse_param_value(name, v)?)
                        .map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok(())
}

/// A parameter value as `--dry-run` prints it.
fn show_value(value: &ParamValue) -> String {
    match value {
        ParamValue::Str(s) => format!("{s:?}"),
        ParamValue::Int(v) | ParamValue::Choice(v) => v.to_string(),
        ParamValue::Double(v) => v.to_string(),
        ParamValue::Bool(v) => v.to_string(),
        other => format!("{other:?}"),
    }
}

/// `--dry-run`: what the host would render with, one line per parameter (`name: value` at
/// the first frame) and per keyframe set from the command line (`name@frame: value`).
fn print_dry_run(
    instance: &genclip::host::Instance,
    options: &HostOptions,
    context: &str,
    edits: &[Edit],
) -> Result<(), String> {
    let (start, end) = options.frame_range;
    println!(
        "host: project {} x {} (pixel aspect {}), {} fps, frames {start}..{end}, context {}",
        options.project_size.0,
        options.project_size.1,
        options.pixel_aspect_ratio,
        options.frame_rate,
        context.trim_start_matches("OfxImageEffectContext")
    );
    for spec in genclip::effect::params::PARAMS {
        if let Ok(value) = instance.param_value(spec.name, start) {
            println!("{}: {}", spec.name, show_value(&value));
        }
    }
    for edit in edits {
        if let Edit::Keys(name, keys) = edit {
            for (t, _) in keys {
                let value = instance.param_value(name, *t).map_err(|e| e.to_string())?;
                println!("{name}@{t}: {}", show_value(&value));
            }
        }
    }
    Ok(())
}

fn cmd_render(flags: &Flags) -> Result<(), String> {
    flags.check_known(RENDER_FLAGS)?;
    let dry_run = flags.get("dry-run").is_some();
    let out = match flags.get("out") {
        Some(dir) => PathBuf::from(dir),
        None if dry_run => PathBuf::new(),
        None => return Err("render needs --out DIR".into()),
    };
    let path = find_bundle(flags.get("bundle"))?;
    let frames: usize = flags.parsed("frames")?.unwrap_or(81);
    let start: i64 = flags.parsed("start")?.unwrap_or(0);
    if frames == 0 {
        return Err("--frames must be at least 1".into());
    }
    let (width, height): (u32, u32) = (
        flags.parsed("width")?.unwrap_or(832),
        flags.parsed("height")?.unwrap_or(480),
    );
    if width == 0 || height == 0 || width > 16384 || height > 16384 {
        return Err(format!(
            "--width/--height {width} x {height}: use 1 to 16384 pixels"
        ));
    }
    // Linear light belongs in EXR; a PNG is read as display-referred by every viewer.
    let linear = flags
        .get("transfer")
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("linear"));
    let format: FrameFormat = match flags.get("format") {
        Some(f) => f.parse()?,
        None if linear => FrameFormat::ExrHalf,
        None => FrameFormat::Png16,
    };
    let depth = match flags.get("depth").unwrap_or("float") {
        "float" => BitDepth::Float,
        "short" | "16" => BitDepth::Short,
        "byte" | "8" => BitDepth::Byte,
        other => return Err(format!("--depth {other}: use float, short or byte")),
    };
    let context = match flags.get("context").unwrap_or("generator") {
        "generator" => "OfxImageEffectContextGenerator",
        "general" => "OfxImageEffectContextGeneral",
        "filter" => "OfxImageEffectContextFilter",
        other => {
            return Err(format!(
                "--context {other}: use generator, general or filter"
            ))
        }
    };
    let scale: f64 = flags.parsed("scale")?.unwrap_or(1.0);
    if !(scale.is_finite() && scale > 0.0 && scale <= 1.0) {
        return Err("--scale must be in (0, 1]".into());
    }
    let threads: usize = flags.parsed::<usize>("threads")?.unwrap_or(1).max(1);
    let native = RESOLUTIONS
        .iter()
        .position(|(_, size)| *size == Some((width, height)));

    let range = (start as f64, (start + frames as i64 - 1) as f64);
    // Settings warnings come and go while the flags are applied one by one; the final Status
    // is printed at the end, and render errors carry what the plugin posted.
    let mut options = HostOptions {
        echo_messages: false,
        project_size: (f64::from(width), f64::from(height)),
        frame_range: range,
        frame_rate: flags.parsed("fps")?.unwrap_or(16.0),
        abort_after: flags
            .parsed::<u64>("abort-after-ms")?
            .map(Duration::from_millis),
        ..HostOptions::default()
    };
    if let Some(name) = flags.get("host-name") {
        options.host_name = name.to_string();
    }
    let host = Host::new(options);
    let bundle = Bundle::open(&path).map_err(|e| e.to_string())?;
    let plugin = host
        .load_plugin(&bundle, PLUGIN_IDENTIFIER)
        .map_err(|e| e.to_string())?;
    plugin.describe().map_err(|e| e.to_string())?;
    let instance = Arc::new(plugin.create_instance(context).map_err(|e| e.to_string())?);

    // Parameters, as an editor would type them.
    let edits = render_edits(flags, native.unwrap_or(0), frames)?;
    apply_edits(&instance, &edits)?;
    if dry_run {
        print_dry_run(&instance, host.options(), context, &edits)?;
        drop(instance);
        return plugin.unload().map_err(|e| e.to_string());
    }

    instance.clip_preferences().map_err(|e| e.to_string())?;
    let rod = instance
        .region_of_definition(range.0, (scale, scale))
        .map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    eprintln!(
        "genclip: rendering {frames} frame(s) of {} x {} through {} ({threads} thread(s))",
        rod.x2 - rod.x1,
        rod.y2 - rod.y1,
        path.display()
    );

    let started = Instant::now();
    instance
        .begin_sequence(range, false, (scale, scale))
        .map_err(|e| e.to_string())?;
    let next = AtomicUsize::new(0);
    let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(frames))
            .map(|_| {
                scope.spawn(|| -> Result<(), String> {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= frames {
                            return Ok(());
                        }
                        let time = range.0 + i as f64;
                        let mut request = RenderRequest::new(time);
                        request.render_scale = (scale, scale);
                        request.depth = depth;
                        request.components = Components::Rgba;
                        let image = instance.render(&request).map_err(|e| e.to_string())?;
                        let file = out.join(format!(
                            "frame.{:04}.{}",
                            start + i as i64,
                            format.extension()
                        ));
                        frame_files::write(&file, &Frame(image), format)
                            .map_err(|e| format!("{}: {e}", file.display()))?;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("a render thread panicked".into()))
            })
            .collect()
    });
    instance
        .end_sequence(range, false, (scale, scale))
        .map_err(|e| e.to_string())?;
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    eprintln!(
        "genclip: wrote {frames} frame(s) to {} in {:.2} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    // SyncPrivateData is where the plugin may write parameters: it names the clip it showed
    // (the secret shownClip parameter) and brings Status up to date.
    instance.sync_private_data().map_err(|e| e.to_string())?;
    if let Ok(ParamValue::Str(status)) = instance.param_value(names::STATUS, range.0) {
        eprintln!("genclip: status: {status}");
    }
    if let Ok(ParamValue::Str(key)) = instance.param_value(names::SHOWN_CLIP, range.0) {
        copy_provenance(&key, &out)?;
    }
    drop(instance);
    plugin.unload().map_err(|e| e.to_string())
}

/// Puts the clip's provenance record (written by the engine beside its cache entry) beside
/// the frames, where `genclip provenance FRAME` finds it.
fn copy_provenance(key: &str, out: &Path) -> Result<(), String> {
    let Some(key) = genclip::cache::CacheKey::from_hex(key) else {
        return Ok(()); // No clip was generated (the frames are slates).
    };
    let (record, _) = provenance::locate(&key.to_hex())?;
    let target = out.join(provenance::RECORD_NAME);
    std::fs::copy(&record, &target).map_err(|e| {
        format!(
            "cannot copy the provenance record {} to {}: {e}",
            record.display(),
            target.display()
        )
    })?;
    eprintln!("genclip: provenance: {} (clip {key})", target.display());
    Ok(())
}

fn cmd_provenance(flags: &Flags) -> Result<(), String> {
    flags.check_known(&["frame", "json"])?;
    let target = flags
        .positional
        .first()
        .ok_or("provenance needs a frame file, an output folder, a record or a clip key")?;
    let (path, frame_in_name) = provenance::locate(target)?;
    let record = provenance::read(&path)?;
    if flags.get("json").is_some() {
        println!(
            "{}",
            serde_json::to_string_pretty(&record).unwrap_or_default()
        );
        return Ok(());
    }
    let frame = match flags.get("frame") {
        Some(f) => Some(
            f.parse::<i64>()
                .map_err(|_| format!("--frame {f}: give a whole frame number"))?,
        ),
        None => frame_in_name,
    };
    println!("record:    {}", path.display());
    print!("{}", provenance::describe(&record, frame));
    Ok(())
}

/// A command-line value as the parameter's type wants it.
fn parse_param_value(name: &str, value: &str) -> Result<ParamValue, String> {
    let spec = genclip::effect::params::spec(name)
        .ok_or_else(|| format!("GenClip has no parameter {name}"))?;
    let bad = || format!("{name}: {value} is not a valid value");
    Ok(match spec.kind {
        Kind::Text { .. } => ParamValue::Str(value.to_string()),
        Kind::Double { .. } => ParamValue::Double(value.trim().parse().map_err(|_| bad())?),
        Kind::Int { .. } => ParamValue::Int(value.trim().parse().map_err(|_| bad())?),
        Kind::Bool { .. } => ParamValue::Bool(matches!(value.trim(), "1" | "true" | "on" | "yes")),
        Kind::Choice { options, .. } => {
            let index = match value.trim().parse::<i32>() {
                Ok(i) => i,
                Err(_) => options
                    .iter()
                    .position(|o| o.to_lowercase().starts_with(&value.trim().to_lowercase()))
                    .ok_or_else(bad)? as i32,
            };
            ParamValue::Choice(index)
        }
        Kind::Button => return Err(format!("{name} is a button; it has no value")),
    })
}
