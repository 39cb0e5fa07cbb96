//! The allocator behind the host table's `alloc`/`free`.
//!
//! Buffers that cross the boundary with a transfer of ownership (a returned
//! `str`, `bytes` or `json`) are allocated with [`polyload_alloc`] and freed
//! with [`polyload_free`], whichever side allocated them. Both use Rust's
//! global allocator, so size and alignment must match on free.

use std::alloc::Layout;
use std::ffi::c_void;

/// Allocates `size` bytes aligned to `align` (a power of two). Returns null
/// for `size == 0`, a bad alignment, or when the allocator fails.
///
/// # Safety
/// Always safe to call; `unsafe extern "C"` only to match the host table.
pub unsafe extern "C" fn polyload_alloc(size: usize, align: usize) -> *mut c_void {
    match Layout::from_size_align(size, align.max(1)) {
        Ok(layout) if size > 0 => {
            // SAFETY: the layout has a non-zero size.
            unsafe { std::alloc::alloc(layout).cast() }
        }
        _ => std::ptr::null_mut(),
    }
}

/// Frees memory from [`polyload_alloc`]. Null is ignored.
///
/// # Safety
/// `ptr` must come from `polyload_alloc(size, align)` with the same `size`
/// and `align`, and not have been freed.
pub unsafe extern "C" fn polyload_free(ptr: *mut c_void, size: usize, align: usize) {
    if ptr.is_null() || size == 0 {
        return;
    }
    if let Ok(layout) = Layout::from_size_align(size, align.max(1)) {
        // SAFETY: guaranteed by the caller.
        unsafe { std::alloc::dealloc(ptr.cast(), layout) }
    }
}
