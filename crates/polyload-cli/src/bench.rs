//! `polyload bench`: how long one call of a definition takes, measured the
//! way a host would make it, so a user can time their own bundle without
//! writing benchmark code.
//!
//! Signatures of up to four `i64` or four `f64` parameters with a return
//! of the same type (or none) are called through a typed handle
//! ([`polyload::Function`]); every other signature through a dynamic
//! handle ([`polyload::DynamicFunction`]) with [`Value`]s. After a warm-up,
//! the time is split into samples of equal call counts; the report gives
//! nanoseconds per call for the fastest, median and slowest sample.

use polyload::{FfiType, Runtime, Value};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Number of samples a measurement is split into.
const SAMPLES: usize = 21;

/// What a measurement found.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The qualified name called.
    pub function: String,
    /// `"typed"` or `"dynamic"`: the handle the calls went through.
    pub path: &'static str,
    /// Calls made in all samples.
    pub calls: u64,
    /// Nanoseconds per call in the fastest sample.
    pub min_ns: f64,
    /// Nanoseconds per call in the median sample.
    pub median_ns: f64,
    /// Nanoseconds per call in the slowest sample.
    pub max_ns: f64,
}

impl Report {
    /// `{"function": "b.f", "path": "typed", "calls": N, "min_ns": x,
    /// "median_ns": x, "max_ns": x}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "function": self.function,
            "path": self.path,
            "calls": self.calls,
            "min_ns": self.min_ns,
            "median_ns": self.median_ns,
            "max_ns": self.max_ns,
        })
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {:.1} ns per call (median of {SAMPLES} samples; fastest {:.1}, slowest {:.1}; {} calls, {} handle)",
            self.function, self.median_ns, self.min_ns, self.max_ns, self.calls, self.path
        )
    }
}

/// Times calls of `function` with `args` for about `time` (plus a tenth of
/// it to warm up).
///
/// # Errors
/// Any error of resolving the definition or of the first call (a call that
/// fails is not timed).
pub fn run(
    rt: &Runtime,
    function: &str,
    args: &[Value],
    time: Duration,
) -> polyload::Result<Report> {
    let dynamic = rt.dynamic(function)?;
    dynamic.call(args)?;
    let signature = rt
        .definitions()
        .into_iter()
        .find(|d| d.name == function)
        .map(|d| d.signature)
        .ok_or_else(|| polyload::Error::NotFound {
            name: function.to_string(),
        })?;
    let ints: Option<Vec<i64>> = args
        .iter()
        .map(|v| match v {
            Value::I64(x) => Some(*x),
            _ => None,
        })
        .collect();
    let floats: Option<Vec<f64>> = args
        .iter()
        .map(|v| match v {
            Value::F64(x) => Some(*x),
            _ => None,
        })
        .collect();
    let same = |t: &FfiType| {
        signature.params.iter().all(|p| p == t)
            && (signature.ret == *t || signature.ret == FfiType::Void)
    };
    let (path, timing) = match (ints, floats) {
        (Some(a), _) if same(&FfiType::I64) && a.len() <= 4 => (
            "typed",
            typed_i64(rt, function, &a, signature.ret == FfiType::Void, time)?,
        ),
        (_, Some(a)) if same(&FfiType::F64) && a.len() <= 4 && !a.is_empty() => (
            "typed",
            typed_f64(rt, function, &a, signature.ret == FfiType::Void, time)?,
        ),
        _ => (
            "dynamic",
            measure(time, || {
                black_box(dynamic.call(black_box(args)).is_ok());
            }),
        ),
    };
    Ok(Report {
        function: function.to_string(),
        path,
        calls: timing.calls,
        min_ns: timing.per_call[0],
        median_ns: timing.per_call[SAMPLES / 2],
        max_ns: timing.per_call[SAMPLES - 1],
    })
}

struct Timing {
    calls: u64,
    /// Nanoseconds per call of each sample, sorted.
    per_call: Vec<f64>,
}

/// Runs `f` for about `time`: finds a batch size that takes about one
/// sample's share, then times `SAMPLES` batches.
fn measure(time: Duration, mut f: impl FnMut()) -> Timing {
    let warm_up = Instant::now();
    let mut per_batch = 1u64;
    let share = time / SAMPLES as u32;
    while warm_up.elapsed() < time / 10 || per_batch < 16 {
        let t = Instant::now();
        for _ in 0..per_batch {
            f();
        }
        if t.elapsed() < share {
            per_batch = per_batch.saturating_mul(2);
        } else if warm_up.elapsed() >= time / 10 {
            break;
        }
    }
    let mut per_call = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        for _ in 0..per_batch {
            f();
        }
        per_call.push(t.elapsed().as_nanos() as f64 / per_batch as f64);
    }
    per_call.sort_by(f64::total_cmp);
    Timing {
        calls: per_batch * SAMPLES as u64,
        per_call,
    }
}

/// Times a typed handle of `extern "C" fn(T, ..) -> R` over `a[0..]`.
macro_rules! time_typed {
    ($rt:expr, $function:expr, $a:expr, $time:expr, $t:ty, $ret:ty; $($i:literal)*) => {{
        let f = $rt.function::<extern "C" fn($(time_typed!(@ty $i $t)),*) -> $ret>($function)?;
        Ok(measure($time, || {
            black_box(f.call(($(black_box($a[$i]),)*)).is_ok());
        }))
    }};
    (@ty $i:literal $t:ty) => { $t };
}

macro_rules! typed {
    ($name:ident, $t:ty) => {
        fn $name(
            rt: &Runtime,
            function: &str,
            a: &[$t],
            void: bool,
            time: Duration,
        ) -> polyload::Result<Timing> {
            match (a.len(), void) {
                (0, false) => time_typed!(rt, function, a, time, $t, $t;),
                (1, false) => time_typed!(rt, function, a, time, $t, $t; 0),
                (2, false) => time_typed!(rt, function, a, time, $t, $t; 0 1),
                (3, false) => time_typed!(rt, function, a, time, $t, $t; 0 1 2),
                (4, false) => time_typed!(rt, function, a, time, $t, $t; 0 1 2 3),
                (0, true) => time_typed!(rt, function, a, time, $t, ();),
                (1, true) => time_typed!(rt, function, a, time, $t, (); 0),
                (2, true) => time_typed!(rt, function, a, time, $t, (); 0 1),
                (3, true) => time_typed!(rt, function, a, time, $t, (); 0 1 2),
                _ => time_typed!(rt, function, a, time, $t, (); 0 1 2 3),
            }
        }
    };
}
typed!(typed_i64, i64);
typed!(typed_f64, f64);
