//! Dynamic FFI for polyload: call any C function by a signature known only
//! at run time.
//!
//! * [`FfiType`] — the C types (scalars, `cstr`, pointer + length buffers,
//!   structs by value, arrays inside structs, callbacks) with their layout.
//! * [`Signature`] — parsed from text such as `fn(f64, f64) -> f64`; the same
//!   strings appear in bundle manifests.
//! * [`Value`] — dynamically typed arguments and results.
//! * [`CallBuilder`] / [`Call`] — a reusable call of a C function through
//!   a register call stub ([`stub`]), a marshaller compiled for the
//!   signature (structs by value on x86-64, cargo feature `jit`, on by
//!   default), or libffi.
//!
//! ```
//! use polyload_ffi::{CallBuilder, Signature, Value};
//! extern "C" fn add(a: i64, b: i64) -> i64 { a + b }
//! let sig: Signature = "fn(i64, i64) -> i64".parse().unwrap();
//! // SAFETY: `add` has exactly this signature.
//! let call = unsafe { CallBuilder::from_ptr(add as *const _).signature(&sig).build() }.unwrap();
//! // SAFETY: as above; no pointers are passed.
//! let r = unsafe { call.call(&[Value::I64(2), Value::I64(-3)]) }.unwrap();
//! assert_eq!(r, Value::I64(-1));
//! ```
#![warn(missing_docs)]

pub mod alloc;
mod buffer;
mod call;
mod callback;
mod error;
mod extern_call;
pub mod ffi_value;
mod flat;
#[cfg(all(feature = "jit", target_arch = "x86_64", not(windows)))]
mod jit;
#[cfg(not(all(feature = "jit", target_arch = "x86_64", not(windows))))]
#[path = "jit_none.rs"]
mod jit;
mod kind;
mod library;
mod marshal;
mod signature;
pub mod stub;
pub mod trampoline;
mod types;
mod value;

pub use buffer::OutBuffer;
pub use callback::{set_callback_error_hook, take_callback_error, Callback, CallbackFn, ErrorHook};
pub use error::FfiError;
pub use extern_call::{call_extern, Call, CallBuilder};
pub use ffi_value::{FfiValue, TypedArg};
pub use library::Library;
pub use signature::{Signature, SignatureError};
pub use trampoline::{EnterHook, LeaveHook, OutSlotHook, OutSlotTrampoline};
pub use types::{FfiType, TypeLayout};
pub use value::{Value, ValueError};
