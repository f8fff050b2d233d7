//! `TorchGenerator::randn` equals torch's CPU `randn` bit for bit, for every compiled form of
//! torch's kernel, on the fixtures `tools/torch_randn_fixtures.py` made with real torch.

use genclip::models::torch_rng::{NormalForm, TorchGenerator};
use std::path::Path;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/torch_randn")
            .join(name),
    )
    .unwrap()
}

fn check(form: NormalForm, file: &str) {
    let cases = String::from_utf8(fixture("cases.txt")).unwrap();
    let values: Vec<f32> = fixture(file)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let mut at = 0;
    let mut mismatches = Vec::new();
    for line in cases.lines().filter(|l| !l.starts_with('#')) {
        let nums: Vec<u64> = line
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        let mut generator = TorchGenerator::with_form(nums[0], form);
        for &n in &nums[1..] {
            let ours = generator.randn(n as usize);
            for (i, (a, b)) in ours.iter().zip(&values[at..at + n as usize]).enumerate() {
                if a.to_bits() != b.to_bits() {
                    mismatches.push(format!(
                        "seed {} n {n} [{i}]: ours {a:e} torch {b:e}",
                        nums[0]
                    ));
                }
            }
            at += n as usize;
        }
    }
    assert_eq!(
        at,
        values.len(),
        "the fixture holds more values than the cases draw"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} values differ, e.g.\n{}",
        mismatches.len(),
        values.len(),
        mismatches[..mismatches.len().min(12)].join("\n")
    );
}

#[test]
fn portable_kernel_bit_exact() {
    check(NormalForm::Portable, "default.bin");
}

#[test]
fn avx2_kernel_bit_exact() {
    check(NormalForm::Avx2, "avx2.bin");
}

/// torch built for AVX-512 draws normals with its AVX2 kernel.
#[test]
fn avx512_machines_get_the_avx2_kernel() {
    check(NormalForm::Avx2, "avx512.bin");
}

#[test]
fn this_cpu_gets_the_form_torch_would_pick() {
    let expected = if cfg!(target_arch = "x86_64")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        NormalForm::Avx2
    } else {
        NormalForm::Portable
    };
    assert_eq!(NormalForm::of_this_cpu(), expected);
}
