//! `genclip-engine`: the generation engine without a host, for debugging, scripting and
//! parity checks against Diffusers. (The timeline's engine process is this binary too.)
//!
//! ```text
//! genclip-engine generate --model DIR --prompt TEXT [--negative-prompt TEXT] [--seed N]
//!     [--steps N] [--guidance X] [--width W] [--height H] [--frames F] --out DIR
//! ```
//! writes `DIR/frame.0000.png …` as 16-bit RGB PNGs. The scheduler is the one the model
//! folder's `scheduler/scheduler_config.json` names, as in Diffusers.
//!
//! `genclip-engine serve [--idle-timeout SECS]` is the engine process GenClip.ofx starts
//! (`genclip::engine::server`, `docs/engine-process.md`).

use candle_core::{DType, Device};
use genclip::cli::Flags;
use genclip::engine::{GenerateError, Pipeline, Request, Stage, Video};
use genclip::frame_files::{self, FrameFormat, Picture};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "\
genclip-engine: GenClip's Wan2.1 text-to-video engine, without a host

usage:
  genclip-engine generate --model DIR --prompt TEXT --out DIR [options]
  genclip-engine bench --model DIR --component NAME [--inputs FILE] [--runs N]
      times one component as JSON (run by tools/bench_reference.py; docs/benchmarks.md)
  genclip-engine serve [--idle-timeout SECS] [--device auto|cpu|cuda[:N]]
                       [--text-encoder auto|cpu]
      the engine process GenClip.ofx starts: protocol lines on stdin/stdout, exits after
      SECS without a job (default 300, or GENCLIP_ENGINE_IDLE_SECS); docs/engine-process.md.
      --device: auto (default) is GPU 0 in the CUDA build when it works, else the CPU;
      cuda:N refuses to start when GPU N cannot be used (docs/gpu.md).
      --text-encoder: auto (default; or GENCLIP_TEXT_ENCODER) runs it where the model runs,
      cpu on the CPU, which spares a GPU 13.5 GB while a new prompt is encoded

options:
  --negative-prompt TEXT   what to avoid (default: none)
  --seed N                 noise seed, as torch.manual_seed (default 42)
  --steps N                denoising steps (default 50)
  --guidance X             classifier-free guidance scale (default 5.0)
  --width W --height H     frame size, multiples of 16 (default 832 x 480)
  --frames F               frame count, 4k+1 (default 81)

Writes DIR/frame.0000.png ... as 16-bit RGB PNGs.";

fn main() -> ExitCode {
    keep_freed_memory();
    genclip::cli::run(
        "genclip-engine",
        USAGE,
        &[
            ("generate", generate),
            ("bench", genclip::engine::bench::run),
            ("serve", serve),
        ],
    )
}

/// Keeps freed memory in this process's heap for the next tensors instead of handing every
/// large block back to the kernel. glibc maps blocks above its threshold (at most 32 MiB by
/// default) afresh, each page faulting on its first write, and unmaps them when freed; the
/// engine allocates and frees tensors of the same sizes step after step, and a third of its
/// time went to that. The engine is a process of its own: the plugin never tunes its host's
/// allocator.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // Blocks up to 1 GiB come from the heap, and free space at its top goes back to the
    // kernel only beyond 1 GiB.
    const LIMIT: libc::c_int = 1 << 30;
    // SAFETY: mallopt only tunes glibc's allocator; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LIMIT);
        libc::mallopt(libc::M_TRIM_THRESHOLD, LIMIT);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn serve(flags: &Flags) -> Result<(), String> {
    use genclip::client::{DeviceChoice, TextEncoderDevice, TEXT_ENCODER_ENV};
    use genclip::engine::server::{self, ServeOptions, IDLE_ENV};
    flags.check_known(&["idle-timeout", "device", "text-encoder"])?;
    let device = DeviceChoice::parse(flags.get("device").unwrap_or("auto"))?;
    let text_encoder = match flags.get("text-encoder") {
        Some(text) => TextEncoderDevice::parse(text)?,
        None => {
            // As the plugin reads it for the cache key: what it cannot read is `auto`.
            let text = std::env::var(TEXT_ENCODER_ENV).unwrap_or_default();
            if let Err(e) = TextEncoderDevice::parse(&text) {
                eprintln!("genclip-engine: {TEXT_ENCODER_ENV}: {e}; using auto");
            }
            TextEncoderDevice::from_env()
        }
    };
    let from_env = std::env::var(IDLE_ENV).ok().filter(|v| !v.is_empty());
    let idle_timeout = match flags.get("idle-timeout").or(from_env.as_deref()) {
        Some(text) => match text.parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs > 0.0 => std::time::Duration::from_secs_f64(secs),
            _ => {
                return Err(format!(
                    "the idle timeout {text:?} is not a positive number of seconds"
                ))
            }
        },
        None => server::DEFAULT_IDLE_TIMEOUT,
    };
    let output =
        server::take_stdout().map_err(|e| format!("cannot set up the protocol output: {e}"))?;
    let options = ServeOptions {
        idle_timeout,
        device,
        text_encoder,
        ..ServeOptions::default()
    };
    let input = std::io::BufReader::new(std::io::stdin());
    let exit = server::serve(input, Box::new(output), &options)?;
    eprintln!("genclip-engine: stopped ({exit:?})");
    Ok(())
}

struct Frame<'a> {
    video: &'a Video,
    index: usize,
}

impl Picture for Frame<'_> {
    fn width(&self) -> usize {
        self.video.width
    }
    fn height(&self) -> usize {
        self.video.height
    }
    fn rgba(&self, x: usize, y: usize) -> [f32; 4] {
        let v = self.video;
        let at = ((self.index * v.height + y) * v.width + x) * 3;
        [v.rgb[at], v.rgb[at + 1], v.rgb[at + 2], 1.0]
    }
}

fn generate(flags: &Flags) -> Result<(), String> {
    flags.check_known(&[
        "model",
        "prompt",
        "negative-prompt",
        "seed",
        "steps",
        "guidance",
        "width",
        "height",
        "frames",
        "out",
    ])?;
    let model = PathBuf::from(
        flags
            .get("model")
            .ok_or("generate needs --model DIR (a Diffusers Wan2.1 folder)")?,
    );
    let out = PathBuf::from(flags.get("out").ok_or("generate needs --out DIR")?);
    let request = Request {
        prompt: flags
            .get("prompt")
            .ok_or("generate needs --prompt TEXT")?
            .to_string(),
        negative_prompt: flags.get("negative-prompt").unwrap_or("").to_string(),
        seed: flags.parsed("seed")?.unwrap_or(42),
        steps: flags.parsed("steps")?.unwrap_or(50),
        guidance_scale: flags.parsed("guidance")?.unwrap_or(5.0),
        width: flags.parsed("width")?.unwrap_or(832),
        height: flags.parsed("height")?.unwrap_or(480),
        frames: flags.parsed("frames")?.unwrap_or(81),
    };

    let started = Instant::now();
    let pipeline = Pipeline::load(&model, &Device::Cpu, DType::F32).map_err(|e| e.to_string())?;
    eprintln!(
        "genclip-engine: loaded {} in {:.1} s",
        model.display(),
        started.elapsed().as_secs_f64()
    );
    let mut report = |stage: Stage| match stage {
        Stage::EncodingText => eprintln!("genclip-engine: encoding the prompts"),
        Stage::Denoising { step, of } => eprintln!(
            "genclip-engine: step {step}/{of} ({:.1} s)",
            started.elapsed().as_secs_f64()
        ),
        Stage::Decoding { frame, of } => {
            eprintln!("genclip-engine: decoded latent frame {frame}/{of}")
        }
    };
    let video = pipeline
        .generate(&request, &mut report, &|| false)
        .map_err(|e| match e {
            GenerateError::Aborted => "aborted".to_string(),
            GenerateError::Failed(e) => e.to_string(),
        })?;

    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for index in 0..video.frames {
        let path = out.join(format!("frame.{index:04}.png"));
        frame_files::write(
            &path,
            &Frame {
                video: &video,
                index,
            },
            FrameFormat::Png16,
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    eprintln!(
        "genclip-engine: wrote {} frames of {} x {} to {} in {:.1} s",
        video.frames,
        video.width,
        video.height,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
