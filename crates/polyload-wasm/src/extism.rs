//! The Extism kernel (`extism:host/env`), implemented in the host.
//!
//! Extism plugins keep their inputs, outputs, errors, config and variables
//! in *Extism memory*, a store separate from their linear memory that they
//! reach through kernel functions and 64-bit offsets ("handles"). The
//! `extism` crate runs the kernel as a second wasm module; this crate keeps
//! that memory in the host (a byte arena per instance) and implements the
//! same functions natively, written from the contract the `extism` crate's
//! kernel and PDKs follow:
//!
//! * `alloc(n) -> handle` (a trap when the memory limit is reached, as in
//!   the `extism` crate), `free`,
//!   `length(handle)` (0 for anything but a live block), `length_unsafe`,
//!   `load_u8`/`load_u64`/`store_u8`/`store_u64` at any offset inside the
//!   arena (reads outside it give 0, writes outside it are ignored);
//! * `input_length`, `input_offset`, `input_load_u8`/`input_load_u64`
//!   (offsets from the input's start), `input_set`;
//! * `output_set(handle, len)`, `output_length`, `output_offset`,
//!   `error_set(handle)` (0 clears), `error_get`, `reset`, `memory_bytes`;
//! * `config_get(key) -> handle | 0`, `var_get(key) -> handle | 0`,
//!   `var_set(key, value | 0)` (0 deletes), which take ownership of the key
//!   and value blocks; variables persist across calls (at most 1 MiB in
//!   all, as in Extism), config comes from the manifest's `[wasm.config]`;
//! * `log_trace`/`log_debug`/`log_info`/`log_warn`/`log_error(handle)` as
//!   `tracing` events (target `polyload_wasm::plugin`), `get_log_level`;
//! * `http_request` traps (a sandbox has no network), `http_status_code`
//!   and `http_headers` return 0.
//!
//! Every block is 8-byte aligned; the arena is emptied at the start of
//! each call (variables excepted), as Extism does.

use crate::instance::State;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use wasmtime::{Caller, Linker, Result};

/// The Extism kernel's module name.
pub(crate) const ENV: &str = "extism:host/env";

/// Where the arena's first block starts (0 is the null handle).
const BASE: u64 = 8;
/// Bytes of variables a plugin may keep, in all.
pub(crate) const MAX_VAR_BYTES: usize = 1 << 20;

/// A plugin's variables, shared by its successive instances.
pub(crate) type Vars = Arc<std::sync::Mutex<BTreeMap<String, Vec<u8>>>>;

/// Extism memory and the plugin's per-call state.
#[derive(Debug)]
pub(crate) struct Kernel {
    /// The arena; offsets are indexes into it.
    mem: Vec<u8>,
    /// Live blocks: offset -> length.
    blocks: HashMap<u64, u64>,
    input: (u64, u64),
    output: (u64, u64),
    error: u64,
    /// Kept across instances (a trap recreates the instance, not the
    /// plugin's variables), as in Extism.
    vars: Vars,
    config: Arc<BTreeMap<String, String>>,
    /// The bundle's memory limit in bytes: the arena plus the linear
    /// memory (passed to each allocation) may not pass it.
    limit: usize,
}

impl Kernel {
    pub(crate) fn new(config: Arc<BTreeMap<String, String>>, vars: Vars, limit: usize) -> Self {
        Self {
            mem: Vec::new(),
            blocks: HashMap::new(),
            input: (0, 0),
            output: (0, 0),
            error: 0,
            vars,
            config,
            limit,
        }
    }

    /// Empties the arena and sets the input (the start of a call).
    pub(crate) fn begin(&mut self, input: &[u8], linear: usize) -> Result<(), String> {
        self.reset();
        let h = self.alloc(input.len() as u64, linear);
        if h == 0 && !input.is_empty() {
            return Err(format!(
                "the input ({} bytes) does not fit the memory limit",
                input.len()
            ));
        }
        self.block_mut(h).copy_from_slice(input);
        self.input = (h, input.len() as u64);
        Ok(())
    }

    fn reset(&mut self) {
        self.mem.resize(BASE as usize, 0);
        self.blocks.clear();
        self.input = (0, 0);
        self.output = (0, 0);
        self.error = 0;
    }

    /// A new block of `n` bytes, zeroed; 0 if it would pass the limit.
    fn alloc(&mut self, n: u64, linear: usize) -> u64 {
        let start = (self.mem.len() as u64).next_multiple_of(8);
        let Some(end) = start.checked_add(n.max(1)) else {
            return 0;
        };
        if usize::try_from(end).map_or(true, |end| end.saturating_add(linear) > self.limit) {
            return 0;
        }
        self.mem.resize(end as usize, 0);
        self.blocks.insert(start, n);
        start
    }

    fn new_block(&mut self, bytes: &[u8], linear: usize) -> u64 {
        let h = self.alloc(bytes.len() as u64, linear);
        if h != 0 {
            self.block_mut(h).copy_from_slice(bytes);
        }
        h
    }

    fn vars(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.vars.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes the arena takes now (0 until a first Extism call).
    pub(crate) fn bytes(&self) -> usize {
        self.mem.len()
    }

    fn length(&self, h: u64) -> u64 {
        self.blocks.get(&h).copied().unwrap_or(0)
    }

    /// The bytes of live block `h` (empty if it is not one).
    pub(crate) fn block(&self, h: u64) -> &[u8] {
        let n = self.length(h);
        &self.mem[h as usize..(h + n) as usize]
    }

    fn block_mut(&mut self, h: u64) -> &mut [u8] {
        let n = self.length(h);
        &mut self.mem[h as usize..(h + n) as usize]
    }

    /// `n` bytes at `offset`, if inside the arena.
    fn range(&self, offset: u64, n: u64) -> Option<&[u8]> {
        let end = offset.checked_add(n)?;
        self.mem.get(offset as usize..usize::try_from(end).ok()?)
    }

    fn free(&mut self, h: u64) {
        if let Some(n) = self.blocks.remove(&h) {
            // The last block gives its space back (a bump allocator's pop).
            if h + n.max(1) == self.mem.len() as u64 {
                self.mem.truncate(h as usize);
            }
        }
    }

    /// Takes a key block the plugin handed over (freeing it).
    fn take_text(&mut self, h: u64) -> Result<String> {
        if !self.blocks.contains_key(&h) {
            wasmtime::bail!("extism: {h} is not a memory handle");
        }
        let s = String::from_utf8_lossy(self.block(h)).into_owned();
        self.free(h);
        Ok(s)
    }

    /// The output the call set, or the error message it set.
    pub(crate) fn finish(&self) -> std::result::Result<Vec<u8>, String> {
        if self.error != 0 {
            return Err(String::from_utf8_lossy(self.block(self.error)).into_owned());
        }
        let (h, n) = self.output;
        Ok(self.range(h, n).map(<[u8]>::to_vec).unwrap_or_default())
    }

    /// Puts `bytes` in a new block for a host function's result.
    ///
    /// # Errors
    /// The memory limit is reached.
    pub(crate) fn result_block(&mut self, bytes: &[u8], linear: usize) -> Result<u64> {
        let h = self.new_block(bytes, linear);
        if h == 0 && !bytes.is_empty() {
            wasmtime::bail!(
                "extism: memory limit reached returning {} bytes",
                bytes.len()
            );
        }
        Ok(h)
    }
}

fn load<const N: usize>(k: &Kernel, offset: u64) -> [u8; N] {
    k.range(offset, N as u64)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; N])
}

fn store(k: &mut Kernel, offset: u64, bytes: &[u8]) {
    let Some(end) = offset.checked_add(bytes.len() as u64) else {
        return;
    };
    if let Some(dst) = usize::try_from(end)
        .ok()
        .and_then(|end| k.mem.get_mut(offset as usize..end))
    {
        dst.copy_from_slice(bytes);
    }
}

fn kernel<'a>(c: &'a mut Caller<'_, State>) -> (&'a mut Kernel, usize) {
    let s = c.data_mut();
    (&mut s.kernel, s.linear)
}

fn log(c: &mut Caller<'_, State>, level: tracing::Level, h: u64) {
    let bundle = c.data().bundle.clone();
    let k = &mut c.data_mut().kernel;
    let text = String::from_utf8_lossy(k.block(h)).into_owned();
    k.free(h);
    match level {
        tracing::Level::ERROR => {
            tracing::error!(target: "polyload_wasm::plugin", bundle = %bundle, "{text}")
        }
        tracing::Level::WARN => {
            tracing::warn!(target: "polyload_wasm::plugin", bundle = %bundle, "{text}")
        }
        tracing::Level::INFO => {
            tracing::info!(target: "polyload_wasm::plugin", bundle = %bundle, "{text}")
        }
        tracing::Level::DEBUG => {
            tracing::debug!(target: "polyload_wasm::plugin", bundle = %bundle, "{text}")
        }
        tracing::Level::TRACE => {
            tracing::trace!(target: "polyload_wasm::plugin", bundle = %bundle, "{text}")
        }
    }
}

/// Defines the kernel's functions in `linker`.
///
/// # Errors
/// Only if a name is defined twice (a bug).
pub(crate) fn link(linker: &mut Linker<State>) -> Result<()> {
    linker.func_wrap(ENV, "alloc", |mut c: Caller<'_, State>, n: u64| -> Result<u64> {
        let (k, linear) = kernel(&mut c);
        match k.alloc(n, linear) {
            0 => wasmtime::bail!(
                "out of memory: alloc({n}) would pass max_memory ({} bytes, linear memory included)",
                k.limit
            ),
            h => Ok(h),
        }
    })?;
    linker.func_wrap(ENV, "free", |mut c: Caller<'_, State>, h: u64| {
        c.data_mut().kernel.free(h)
    })?;
    linker.func_wrap(ENV, "length", |c: Caller<'_, State>, h: u64| {
        c.data().kernel.length(h)
    })?;
    linker.func_wrap(ENV, "length_unsafe", |c: Caller<'_, State>, h: u64| {
        c.data().kernel.length(h)
    })?;
    linker.func_wrap(ENV, "load_u8", |c: Caller<'_, State>, p: u64| {
        u32::from(load::<1>(&c.data().kernel, p)[0])
    })?;
    linker.func_wrap(ENV, "load_u64", |c: Caller<'_, State>, p: u64| {
        u64::from_le_bytes(load::<8>(&c.data().kernel, p))
    })?;
    linker.func_wrap(
        ENV,
        "store_u8",
        |mut c: Caller<'_, State>, p: u64, v: u32| store(&mut c.data_mut().kernel, p, &[v as u8]),
    )?;
    linker.func_wrap(
        ENV,
        "store_u64",
        |mut c: Caller<'_, State>, p: u64, v: u64| {
            store(&mut c.data_mut().kernel, p, &v.to_le_bytes())
        },
    )?;
    linker.func_wrap(ENV, "input_length", |c: Caller<'_, State>| {
        c.data().kernel.input.1
    })?;
    linker.func_wrap(ENV, "input_offset", |c: Caller<'_, State>| {
        c.data().kernel.input.0
    })?;
    linker.func_wrap(ENV, "input_load_u8", |c: Caller<'_, State>, i: u64| {
        let k = &c.data().kernel;
        if i >= k.input.1 {
            return 0;
        }
        u32::from(load::<1>(k, k.input.0 + i)[0])
    })?;
    linker.func_wrap(ENV, "input_load_u64", |c: Caller<'_, State>, i: u64| {
        let k = &c.data().kernel;
        if i.saturating_add(8) > k.input.1 {
            // A partial word at the end: the bytes that exist, zero-padded.
            let mut word = [0u8; 8];
            for (j, b) in word.iter_mut().enumerate() {
                if i + (j as u64) < k.input.1 {
                    *b = load::<1>(k, k.input.0 + i + j as u64)[0];
                }
            }
            return u64::from_le_bytes(word);
        }
        u64::from_le_bytes(load::<8>(k, k.input.0 + i))
    })?;
    linker.func_wrap(
        ENV,
        "input_set",
        |mut c: Caller<'_, State>, h: u64, n: u64| {
            c.data_mut().kernel.input = (h, n);
        },
    )?;
    linker.func_wrap(
        ENV,
        "output_set",
        |mut c: Caller<'_, State>, h: u64, n: u64| {
            c.data_mut().kernel.output = (h, n);
        },
    )?;
    linker.func_wrap(ENV, "output_length", |c: Caller<'_, State>| {
        c.data().kernel.output.1
    })?;
    linker.func_wrap(ENV, "output_offset", |c: Caller<'_, State>| {
        c.data().kernel.output.0
    })?;
    linker.func_wrap(ENV, "error_set", |mut c: Caller<'_, State>, h: u64| {
        c.data_mut().kernel.error = h;
    })?;
    linker.func_wrap(ENV, "error_get", |c: Caller<'_, State>| {
        c.data().kernel.error
    })?;
    linker.func_wrap(ENV, "reset", |mut c: Caller<'_, State>| {
        c.data_mut().kernel.reset()
    })?;
    linker.func_wrap(ENV, "memory_bytes", |c: Caller<'_, State>| {
        c.data().kernel.mem.len() as u64
    })?;
    linker.func_wrap(
        ENV,
        "config_get",
        |mut c: Caller<'_, State>, key: u64| -> Result<u64> {
            let (k, linear) = kernel(&mut c);
            let key = k.take_text(key)?;
            let config = k.config.clone();
            Ok(match config.get(&key) {
                Some(v) => k.result_block(v.as_bytes(), linear)?,
                None => 0,
            })
        },
    )?;
    linker.func_wrap(
        ENV,
        "var_get",
        |mut c: Caller<'_, State>, key: u64| -> Result<u64> {
            let (k, linear) = kernel(&mut c);
            let key = k.take_text(key)?;
            let value = k.vars().get(&key).cloned();
            Ok(match value {
                Some(v) => k.result_block(&v, linear)?,
                None => 0,
            })
        },
    )?;
    linker.func_wrap(
        ENV,
        "var_set",
        |mut c: Caller<'_, State>, key: u64, value: u64| -> Result<()> {
            let k = &mut c.data_mut().kernel;
            let key = k.take_text(key)?;
            if value == 0 {
                k.vars().remove(&key);
                return Ok(());
            }
            let bytes = k.block(value).to_vec();
            k.free(value);
            let mut vars = k.vars();
            let used: usize = vars
                .iter()
                .filter(|(n, _)| **n != key)
                .map(|(n, v)| n.len() + v.len())
                .sum();
            if used + key.len() + bytes.len() > MAX_VAR_BYTES {
                wasmtime::bail!(
                    "extism: variables would take more than {MAX_VAR_BYTES} bytes (setting `{key}`)"
                );
            }
            vars.insert(key, bytes);
            Ok(())
        },
    )?;
    for (name, level) in [
        ("log_trace", tracing::Level::TRACE),
        ("log_debug", tracing::Level::DEBUG),
        ("log_info", tracing::Level::INFO),
        ("log_warn", tracing::Level::WARN),
        ("log_error", tracing::Level::ERROR),
    ] {
        linker.func_wrap(ENV, name, move |mut c: Caller<'_, State>, h: u64| {
            log(&mut c, level, h)
        })?;
    }
    linker.func_wrap(ENV, "get_log_level", |_: Caller<'_, State>| -> i32 {
        use tracing::level_filters::LevelFilter;
        match LevelFilter::current() {
            LevelFilter::OFF => i32::MAX,
            l if l >= LevelFilter::TRACE => 0,
            l if l >= LevelFilter::DEBUG => 1,
            l if l >= LevelFilter::INFO => 2,
            l if l >= LevelFilter::WARN => 3,
            _ => 4,
        }
    })?;
    linker.func_wrap(
        ENV,
        "http_request",
        |_: Caller<'_, State>, _req: u64, _body: u64| -> Result<u64> {
            wasmtime::bail!(
                "extism: http_request is not available (a polyload sandbox has no network)"
            )
        },
    )?;
    linker.func_wrap(ENV, "http_status_code", |_: Caller<'_, State>| 0i32)?;
    linker.func_wrap(ENV, "http_headers", |_: Caller<'_, State>| 0u64)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_blocks_and_limits() {
        let mut k = Kernel::new(Arc::default(), Vars::default(), 1024);
        k.begin(b"hello", 0).unwrap();
        assert_eq!(k.block(k.input.0), b"hello");
        let a = k.alloc(3, 0);
        assert_eq!(a % 8, 0);
        assert_eq!(k.length(a), 3);
        assert_eq!(k.length(a + 1), 0, "only a block's start is a handle");
        k.free(a);
        assert_eq!(k.length(a), 0);
        assert_eq!(k.alloc(2000, 0), 0, "past the limit");
        assert_eq!(k.alloc(100, 1000), 0, "linear memory counts");
        assert_eq!(load::<8>(&k, 1 << 40), [0; 8], "reads outside give 0");
        store(&mut k, u64::MAX - 2, b"xyz"); // ignored, no panic
        k.begin(b"", 0).unwrap();
        assert_eq!(k.finish(), Ok(Vec::new()));
    }
}
