//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`):
//! internal checks that a fuzzer drives with arbitrary bytes. Not a stable
//! API.

/// The native loader's check of a shared library image, run before
/// `dlopen` sees a file: `Err` with the reason for anything that is not a
/// complete shared library for this machine.
///
/// # Errors
/// The reason the bytes were refused.
pub fn check_image(bytes: &[u8]) -> Result<(), String> {
    crate::native::inspect_image(bytes).map(drop)
}
