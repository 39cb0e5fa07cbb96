//! textstats: word statistics and hashing, as a polyload bundle.

use polyload_guest::export;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Number of words: maximal runs of non-whitespace (Unicode whitespace).
#[export]
fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The `n` most frequent words as a JSON array of `[word, count]` pairs,
/// most frequent first, ties in byte order of the word. Words are compared
/// exactly as written (case-sensitive, punctuation included).
#[export]
fn top_words(text: &str, n: u32) -> String {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for w in text.split_whitespace() {
        *counts.entry(w).or_default() += 1;
    }
    let mut ranked: Vec<(&str, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    ranked.truncate(n as usize);
    serde_json::to_string(&ranked).expect("strings and integers serialise")
}

/// SHA-256 of the bytes, lowercase hex.
#[export]
fn sha256(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

polyload_guest::bundle!(word_count, top_words, sha256);
