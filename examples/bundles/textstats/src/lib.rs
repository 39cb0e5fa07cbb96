//! textstats: word statistics and hashing, as a polyload bundle.
//!
//! A word is a maximal run of non-whitespace characters (Unicode
//! whitespace, as `str::split_whitespace`). Words are compared exactly as
//! written: case-sensitive, punctuation included (`The`, `the` and `the,`
//! are three different words).

use polyload_guest::export;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Number of words in `text`.
#[export]
fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The `n` most frequent words of `text` as a JSON array of `[word, count]`
/// pairs: most frequent first, ties in alphabetical (Unicode code point)
/// order of the word. `[]` for `n == 0` or a text without words.
#[export]
fn top_words(text: &str, n: u32) -> String {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for w in text.split_whitespace() {
        *counts.entry(w).or_default() += 1;
    }
    let mut ranked: Vec<(&str, u64)> = counts.into_iter().collect();
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    ranked.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    serde_json::to_string(&ranked).expect("strings and integers serialise")
}

/// SHA-256 of `data`, as 64 lowercase hex digits.
#[export]
fn sha256(data: &[u8]) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(data);
    let mut hex = String::with_capacity(64);
    for b in digest {
        write!(hex, "{b:02x}").expect("writing to a String cannot fail");
    }
    hex
}

polyload_guest::bundle! {
    exports: [word_count, top_words, sha256],
}
