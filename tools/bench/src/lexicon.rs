//! Moderation's lexicon scan rate: how many MB of story text per second the rules' lexicon scans
//! (normalisation included), with a realistic number of terms and body sizes. CPU only, so there
//! is no NATS baseline; the figure to compare with is the pipeline's story rate × body size.

use std::time::Instant;

use bashu_moderation::rules::{Action, Lexicon, Term};
use serde::Serialize;

use crate::stats::Sequence;

/// One body size's figure.
#[derive(Debug, Serialize)]
pub(crate) struct ScanRate {
    pub(crate) terms: usize,
    pub(crate) body_bytes: usize,
    pub(crate) mb_per_second: f64,
    pub(crate) hits: usize,
}

pub(crate) fn run(terms: usize, body_sizes: &[usize]) -> Vec<ScanRate> {
    let mut sequence = Sequence(0x9E37_79B9_7F4A_7C15);
    let lexicon: Vec<Term> = (0..terms)
        .map(|i| {
            let length = 2 + (sequence.next() % 5) as usize;
            Term {
                term: (0..length).map(|_| sequence.cjk()).collect(),
                action: if i.is_multiple_of(10) { Action::Reject } else { Action::Hold },
                category: "bench".into(),
            }
        })
        .collect();
    let lexicon = Lexicon::new(lexicon).expect("the bench lexicon compiles");
    body_sizes
        .iter()
        .map(|&bytes| {
            // Chinese text with punctuation and spaces, as a county's story has.
            let mut body = String::with_capacity(bytes + 8);
            while body.len() < bytes {
                body.push(sequence.cjk());
                if sequence.next().is_multiple_of(12) {
                    body.push('，');
                }
                if sequence.next().is_multiple_of(40) {
                    body.push(' ');
                }
            }
            let rounds = (64 * 1024 * 1024 / bytes).clamp(5, 20_000);
            let started = Instant::now();
            let mut hits = 0;
            for _ in 0..rounds {
                hits += lexicon.scan(&body).len();
            }
            let seconds = started.elapsed().as_secs_f64();
            ScanRate {
                terms: lexicon.len(),
                body_bytes: body.len(),
                mb_per_second: (body.len() * rounds) as f64 / seconds / 1e6,
                hits: hits / rounds,
            }
        })
        .collect()
}
