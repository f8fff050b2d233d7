//! `models::attention::attention` keeps its memory linear in the number of queries, and
//! computes softmax(q kᵀ · scale) v.
//!
//! The memory check: self-attention over N = 8192 tokens, 4 heads of width 64, f32 (q, k, v
//! [1, 4, 8192, 64], 8 MiB each). Materialising the whole score matrix costs
//! heads × N² × 4 B = 1 GiB (256 MiB per head). The bound on the growth of the resident set
//! during the call is half of that, 512 MiB: an implementation that holds the full matrix
//! at any moment cannot stay under it, while one that works through blocks of queries holds
//! heads × block × N × 4 B per live copy (128 MiB for 1024 queries; the scores and their
//! softmax are alive together, so about 256 MiB), plus the output and kᵀ (8 MiB each).
//!
//! The resident set is per process, so each measurement runs in a child process (this test
//! binary again, with `CHILD_ROLE` set) that does nothing else. The parent also measures a
//! naive full-matrix attention the same way and requires it to exceed the bound: that shows
//! the measurement sees the memory it is meant to see. Both calls take about a second each in
//! release on 2 cores.

use candle_core::{Device, Tensor, D};
use genclip::engine::bench::{memory, reset_peak};
use genclip::models::attention::attention;
use genclip::models::torch_rng::TorchGenerator;
use std::process::Command;

/// Set in the child process: `blocked` measures `attention`, `naive` the full-matrix version.
const CHILD_ROLE: &str = "GENCLIP_ATTENTION_MEMORY_ROLE";
const HEADS: usize = 4;
const TOKENS: usize = 8192;
const HEAD_DIM: usize = 64;
/// Half of the full score matrix (1 GiB): see the module comment.
const BOUND: u64 = (HEADS * TOKENS * TOKENS * 4 / 2) as u64;

/// Fixed pseudo-random normal values (torch's CPU generator, as the engine draws noise).
fn random(shape: &[usize], seed: u64) -> Tensor {
    TorchGenerator::manual_seed(seed)
        .randn_tensor(shape, &Device::Cpu)
        .unwrap()
}

/// Softmax over the whole score matrix at once: what the bound is there to rule out.
fn full_matrix_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Tensor {
    let scores = (q
        .matmul(&k.transpose(D::Minus2, D::Minus1).unwrap())
        .unwrap()
        * scale)
        .unwrap();
    candle_nn::ops::softmax_last_dim(&scores)
        .unwrap()
        .matmul(v)
        .unwrap()
}

/// The child's part: one attention call at 8192 tokens; prints how much the resident set
/// grew at its peak.
fn measure_in_this_process(role: &str) {
    let shape = [1, HEADS, TOKENS, HEAD_DIM];
    let (q, k, v) = (random(&shape, 1), random(&shape, 2), random(&shape, 3));
    let scale = 1.0 / (HEAD_DIM as f64).sqrt();
    reset_peak();
    let before = memory().expect("/proc/self/status");
    let out = match role {
        "blocked" => attention(&q, &k, &v, scale).unwrap(),
        "naive" => full_matrix_attention(&q, &k, &v, scale),
        _ => panic!("{CHILD_ROLE}={role}: expected blocked or naive"),
    };
    let after = memory().unwrap();
    assert_eq!(out.dims(), &shape);
    println!(
        "peak_growth_bytes={}",
        after.peak.saturating_sub(before.resident)
    );
}

/// Runs this test again in a child process in `role` and returns the growth it measured.
fn peak_growth_in_child(role: &str) -> u64 {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "peak_memory_stays_under_half_the_score_matrix",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ROLE, role)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child ({role}) failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.split_once("peak_growth_bytes=").map(|(_, n)| n))
        .unwrap_or_else(|| panic!("child ({role}) printed no measurement:\n{stdout}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn peak_memory_stays_under_half_the_score_matrix() {
    if let Ok(role) = std::env::var(CHILD_ROLE) {
        measure_in_this_process(&role);
        return;
    }
    if memory().is_none() {
        eprintln!("skipped: no /proc/self/status (the resident set is read from Linux's /proc)");
        return;
    }
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let blocked = peak_growth_in_child("blocked");
    let naive = peak_growth_in_child("naive");
    eprintln!(
        "attention at {TOKENS} tokens, {HEADS} heads x {HEAD_DIM}: peak growth {:.0} MiB \
         (full-matrix version {:.0} MiB, bound {:.0} MiB)",
        mib(blocked),
        mib(naive),
        mib(BOUND)
    );
    assert!(
        naive > BOUND,
        "the full-matrix attention grew by only {:.0} MiB: the measurement cannot see the score matrix",
        mib(naive)
    );
    assert!(
        blocked < BOUND,
        "attention grew the resident set by {:.0} MiB at {TOKENS} tokens, over the {:.0} MiB bound: \
         its memory is no longer linear in the number of queries",
        mib(blocked),
        mib(BOUND)
    );
}

/// softmax(q kᵀ · scale) v in f64, one query at a time.
fn reference(q: &[f32], k: &[f32], v: &[f32], dims: (usize, usize, usize), scale: f64) -> Vec<f64> {
    let (queries, keys, dim) = dims;
    let mut out = vec![0.0; queries * dim];
    for i in 0..queries {
        let scores: Vec<f64> = (0..keys)
            .map(|j| {
                let dot: f64 = (0..dim)
                    .map(|c| q[i * dim + c] as f64 * k[j * dim + c] as f64)
                    .sum();
                dot * scale
            })
            .collect();
        let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let total: f64 = weights.iter().sum();
        for (j, w) in weights.iter().enumerate() {
            for c in 0..dim {
                out[i * dim + c] += w / total * v[j * dim + c] as f64;
            }
        }
    }
    out
}

#[test]
fn equals_a_naive_softmax_across_query_blocks() {
    // More queries than one block (1024) and fewer keys than queries, as in cross-attention;
    // values scaled up so that the softmax is far from uniform.
    let (batch, heads, queries, keys, dim) = (2, 3, 1100, 70, 8);
    let q = (random(&[batch, heads, queries, dim], 11) * 3.0).unwrap();
    let k = (random(&[batch, heads, keys, dim], 12) * 3.0).unwrap();
    let v = random(&[batch, heads, keys, dim], 13);
    let scale = 1.0 / (dim as f64).sqrt();
    let out = attention(&q, &k, &v, scale).unwrap();
    assert_eq!(out.dims(), &[batch, heads, queries, dim]);
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (q, k, v, out) = (flat(&q), flat(&k), flat(&v), flat(&out));
    let mut worst = 0f64;
    for h in 0..batch * heads {
        let expected = reference(
            &q[h * queries * dim..(h + 1) * queries * dim],
            &k[h * keys * dim..(h + 1) * keys * dim],
            &v[h * keys * dim..(h + 1) * keys * dim],
            (queries, keys, dim),
            scale,
        );
        let got = &out[h * queries * dim..(h + 1) * queries * dim];
        for (g, e) in got.iter().zip(&expected) {
            worst = worst.max((*g as f64 - e).abs());
        }
    }
    assert!(worst < 1e-5, "max |attention - reference| = {worst:e}");
}
