//! No per-signature marshallers on this build (the `jit` feature is off,
//! or the target is not x86-64 System V): every call takes the generic
//! stub path. The same interface as `jit.rs`, with nothing to construct.

use crate::extern_call::out::Out;
use crate::stub::StubPlan;
use crate::{FfiType, Value};
use std::ffi::c_void;

/// A marshaller: none can exist on this build.
#[derive(Debug)]
pub(crate) enum Marshaller {}

impl Marshaller {
    /// Always `None`.
    pub(crate) fn compile(_plan: &StubPlan, _ret: &FfiType) -> Option<Marshaller> {
        None
    }

    /// Unreachable (no value exists).
    ///
    /// # Safety
    /// None needed.
    #[inline(always)]
    pub(crate) unsafe fn call(&self, _args: &[Value], _code: *const c_void) -> Out {
        match *self {}
    }
}
