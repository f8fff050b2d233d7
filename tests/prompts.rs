//! Prompt cleaning and tokenization against Diffusers' WanPipeline, on fixtures the real Python
//! stack made (tools/prompt_fixtures.py): ftfy 6.3.1, html.unescape, Python's `\s`, and the
//! transformers tokenizer of tests/fixtures/wan_tiny_a called as the pipeline calls it.

use genclip::models::prompt::{clean_prompt, ftfy_fix_text, PromptTokenizer};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct Fixture {
    tokenizer: Option<TokenizerFile>,
    #[serde(default)]
    long_segments: Vec<LongSegment>,
    cases: Vec<Case>,
}

/// A prompt of `fill` repeated `count` times, then `tail`; Python's cleaned text likewise.
#[derive(Deserialize)]
struct LongSegment {
    name: String,
    fill: String,
    count: usize,
    tail: String,
    cleaned_count: usize,
    cleaned_tail: String,
}

#[derive(Deserialize)]
struct TokenizerFile {
    path: String,
    bytes: u64,
    fnv1a64: String,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    prompt: String,
    ftfy: String,
    cleaned: String,
    max_length: Option<usize>,
    ids: Option<Vec<u32>>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(file: &str) -> Fixture {
    let path = root().join("tests/fixtures/prompts").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run tools/prompt_fixtures.py)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Fails with every mismatch listed, not just the first.
fn assert_no_failures(what: &str, total: usize, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} of {total} {what} differ from Python:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{what}: {total} of {total} equal to Python");
}

fn cleaning_failures(cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let fixed = ftfy_fix_text(&case.prompt);
        if fixed != case.ftfy {
            failures.push(format!(
                "{}: ftfy.fix_text({:?})\n  python {:?}\n  rust   {:?}",
                case.name, case.prompt, case.ftfy, fixed
            ));
        }
        let cleaned = clean_prompt(&case.prompt);
        if cleaned != case.cleaned {
            failures.push(format!(
                "{}: prompt_clean({:?})\n  python {:?}\n  rust   {:?}",
                case.name, case.prompt, case.cleaned, cleaned
            ));
        }
    }
    failures
}

#[test]
fn named_prompts_clean_exactly_as_diffusers() {
    let cases = fixture("cases.json").cases;
    assert!(cases.len() >= 80, "only {} named cases", cases.len());
    assert_no_failures(
        "named prompts (cleaning)",
        cases.len(),
        cleaning_failures(&cases),
    );
}

#[test]
fn fuzzed_prompts_clean_exactly_as_diffusers() {
    let cases = fixture("fuzz.json").cases;
    assert_no_failures(
        "fuzzed prompts (cleaning)",
        cases.len(),
        cleaning_failures(&cases),
    );
}

#[test]
fn lines_past_a_million_characters_are_fixed_in_pieces_as_ftfy_does() {
    let segments = fixture("cases.json").long_segments;
    assert_eq!(segments.len(), 3);
    for case in &segments {
        let prompt = case.fill.repeat(case.count) + &case.tail;
        let want = case.fill.repeat(case.cleaned_count) + &case.cleaned_tail;
        let got = clean_prompt(&prompt);
        assert!(
            got == want,
            "{}: python ends {:?}, rust ends {:?}",
            case.name,
            case.cleaned_tail,
            &got[got.len().saturating_sub(40)..]
        );
    }
}

fn fnv1a64(data: &[u8]) -> String {
    let hash = data.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    });
    format!("{hash:016x}")
}

/// The tokenizer the fixture's ids came from, checked to be the same file still.
fn fixture_tokenizer(fixture: &Fixture) -> PromptTokenizer {
    let file = fixture
        .tokenizer
        .as_ref()
        .expect("the fixture has no token ids: rerun tools/prompt_fixtures.py with the tokenizer");
    let path = root().join(&file.path);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        data.len() as u64 == file.bytes && fnv1a64(&data) == file.fnv1a64,
        "{} changed since the prompt fixtures were made: rerun tools/prompt_fixtures.py",
        path.display()
    );
    PromptTokenizer::load(&path).unwrap()
}

fn token_failures(tokenizer: &PromptTokenizer, cases: &[Case]) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases {
        let (Some(want), Some(max_len)) = (&case.ids, case.max_length) else {
            continue;
        };
        checked += 1;
        let got = tokenizer.encode(&case.cleaned, max_len).unwrap();
        if &got != want {
            failures.push(format!(
                "{} (max {max_len}): {:?}\n  python {want:?}\n  rust   {got:?}",
                case.name, case.cleaned
            ));
        }
        let from_prompt = tokenizer.encode_prompt(&case.prompt, max_len).unwrap();
        if &from_prompt != want {
            failures.push(format!(
                "{}: encode_prompt differs: {from_prompt:?}",
                case.name
            ));
        }
    }
    (checked, failures)
}

#[test]
fn named_prompts_tokenize_exactly_as_transformers() {
    let fixture = fixture("cases.json");
    let tokenizer = fixture_tokenizer(&fixture);
    let (checked, failures) = token_failures(&tokenizer, &fixture.cases);
    assert_eq!(checked, fixture.cases.len(), "every named case carries ids");
    assert_no_failures("named prompts (token ids)", checked, failures);
}

#[test]
fn fuzzed_prompts_tokenize_exactly_as_transformers() {
    let fixture = fixture("fuzz.json");
    let tokenizer = fixture_tokenizer(&fixture);
    let (checked, failures) = token_failures(&tokenizer, &fixture.cases);
    assert_no_failures("fuzzed prompts (token ids)", checked, failures);
}

#[test]
fn truncation_keeps_the_end_of_sequence_token() {
    let fixture = fixture("cases.json");
    let case = |name: &str| fixture.cases.iter().find(|c| c.name == name).unwrap();
    for (name, len) in [
        ("long_truncated_at_512", 512),
        ("long_truncated_at_8", 8),
        ("one_word_past_8", 8),
        ("exactly_fits_8", 8),
        ("only_eos_at_1", 1),
    ] {
        let ids = case(name).ids.as_ref().unwrap();
        assert_eq!(ids.len(), len, "{name}");
        assert_eq!(ids.last(), Some(&1), "{name} ends with </s> (id 1)");
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("genclip-prompts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn load_error(path: &Path) -> String {
    match PromptTokenizer::load(path) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_missing_tokenizer_file_is_named() {
    let path = scratch("missing/tokenizer.json");
    let message = load_error(&path);
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("does not exist"), "{message}");
}

#[test]
fn a_broken_tokenizer_file_is_named() {
    for (name, content) in [
        ("truncated.json", "{\"version\": \"1.0\", \"model\": {"),
        ("not_a_tokenizer.json", "{\"hello\": 1}"),
        ("empty.json", ""),
    ] {
        let path = scratch(name);
        std::fs::write(&path, content).unwrap();
        let message = load_error(&path);
        assert!(message.contains("cannot load tokenizer"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
    }
}

#[test]
fn a_zero_max_length_is_refused_with_the_file_named() {
    let tokenizer = fixture_tokenizer(&fixture("cases.json"));
    let message = tokenizer.encode("a cat", 0).unwrap_err().to_string();
    assert!(message.contains("max length 0"), "{message}");
    assert!(
        message.contains(&tokenizer.path().display().to_string()),
        "{message}"
    );
}
