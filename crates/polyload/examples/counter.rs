//! The counter host: calls `counter.tick` once a second while watching the
//! bundle's sources; edit `examples/counter/bundle/src/counter.c` to see the
//! new code take over with the counter's value kept.
//!
//! `cargo run -p polyload --example counter [TICKS]` (default: run forever).

use polyload::{Event, Runtime};
use std::path::Path;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/counter/bundle");
    let ticks: u64 = std::env::args()
        .nth(1)
        .map(|t| t.parse())
        .transpose()?
        .unwrap_or(u64::MAX);
    let rt = Runtime::new()?;
    rt.load_bundle(&bundle)?;
    let events = rt.subscribe();
    let _watcher = rt.watch(&[&bundle])?;
    let tick = rt.function::<extern "C" fn() -> i64>("counter.tick")?;
    println!("watching {} (edit src/counter.c)", bundle.display());
    for _ in 0..ticks {
        println!("counter = {}", tick.call(())?);
        for e in events.try_iter() {
            match e {
                Event::Reloaded {
                    generation,
                    build,
                    total,
                    state_carried,
                    ..
                } => println!(
                    "reloaded: generation {generation}, build {:.0} ms, total {:.0} ms, state {}",
                    build.as_secs_f64() * 1e3,
                    total.as_secs_f64() * 1e3,
                    if state_carried { "kept" } else { "fresh" }
                ),
                Event::Failed { error, .. } => {
                    println!("reload failed, old version still live: {error}")
                }
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(())
}
