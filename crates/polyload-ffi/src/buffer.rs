//! Caller-owned buffers for out-pointer parameters.

use crate::{FfiValue, Value};
use std::cell::Cell;
use std::ffi::c_void;

/// A fixed-size buffer of `T` that C code writes through a pointer, e.g.
/// `frexp`'s `int *exp` or `snprintf`'s `char *buf`.
///
/// Pass [`value`](OutBuffer::value) (or [`ffi`](OutBuffer::ffi)) as the
/// `ptr` argument and read the contents back with [`get`](OutBuffer::get)
/// or [`to_vec`](OutBuffer::to_vec) after the call. The storage is a boxed
/// slice of `Cell<T>` (same layout as `[T]`), so its address is fixed for
/// the buffer's life and C may write it while Rust holds `&self`. The
/// buffer is `!Sync`: C writing it from another thread is not allowed.
///
/// `T` must be plain data for which every bit pattern is valid (integers,
/// floats): C may store anything there.
pub struct OutBuffer<T: Copy> {
    cells: Box<[Cell<T>]>,
}

impl<T: Copy + Default> OutBuffer<T> {
    /// `len` elements, all `T::default()`.
    pub fn new(len: usize) -> Self {
        Self::from_slice(&vec![T::default(); len])
    }
}

impl<T: Copy> OutBuffer<T> {
    /// A buffer holding a copy of `init` (for in/out parameters).
    pub fn from_slice(init: &[T]) -> Self {
        Self {
            cells: init.iter().map(|v| Cell::new(*v)).collect(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether the buffer has no elements.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Size in bytes (what to pass as a C `size_t` capacity).
    pub fn byte_len(&self) -> usize {
        std::mem::size_of_val(&*self.cells)
    }

    /// The address of element 0, for C to write through. Valid while the
    /// buffer lives.
    pub fn as_ptr(&self) -> *mut c_void {
        // Writing through a pointer derived from `&[Cell<T>]` is allowed:
        // every element is inside an `UnsafeCell`.
        self.cells.as_ptr().cast_mut().cast()
    }

    /// The address as a `ptr` argument for [`Call::call`](crate::Call::call).
    pub fn value(&self) -> Value {
        Value::Ptr(self.as_ptr() as usize)
    }

    /// The address as a raw argument for [`Call::call_raw`](crate::Call::call_raw).
    pub fn ffi(&self) -> FfiValue {
        FfiValue::ptr(self.as_ptr())
    }

    /// Element `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn get(&self, i: usize) -> T {
        self.cells[i].get()
    }

    /// All elements.
    pub fn to_vec(&self) -> Vec<T> {
        self.cells.iter().map(Cell::get).collect()
    }
}

impl OutBuffer<u8> {
    /// The bytes before the first NUL, as UTF-8 (lossy): the text a C
    /// function wrote into a `char` buffer.
    pub fn c_string(&self) -> String {
        let v = self.to_vec();
        let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
        String::from_utf8_lossy(&v[..end]).into_owned()
    }
}
