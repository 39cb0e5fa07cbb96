//! The C ABI between a polyload host and its bundles.
//!
//! Everything in this crate is `#[repr(C)]` and mirrored, field for field, by
//! the C header `include/polyload.h` (a test compiles a C bundle against the
//! header and checks sizes and offsets against these types).
//!
//! # The contract
//!
//! A native bundle is a shared library that exports two symbols:
//!
//! ```c
//! uint32_t polyload_abi_version(void);
//! int32_t  polyload_bundle_init(const PolyloadHost *host, PolyloadBundle *bundle);
//! ```
//!
//! * `polyload_abi_version` returns the [`AbiVersion`] the bundle was built
//!   against, packed as `(major << 16) | minor`. The host loads the bundle only
//!   if its own version [is compatible with](AbiVersion::is_compatible_with) it:
//!   majors equal, host minor >= bundle minor.
//! * `polyload_bundle_init` registers the bundle's definitions through
//!   [`PolyloadHost::define`] and returns [`POLYLOAD_OK`] (0), or a negative
//!   status after setting a message with [`PolyloadHost::set_error`].
//!
//! # Data across the boundary
//!
//! * Strings and byte buffers cross as pointer + length ([`PolyloadStr`],
//!   [`PolyloadBytes`]), passed and returned **by value**. Strings are UTF-8 and
//!   need not be NUL-terminated.
//! * A `str`/`bytes`/`json` **returned** by a bundle function is owned by the
//!   caller, who frees it with the host's [`free`](PolyloadHost::free); bundles
//!   therefore allocate returned buffers with [`alloc`](PolyloadHost::alloc).
//!   A null pointer with length 0 is the empty value.
//! * Errors: a bundle function that fails calls
//!   [`set_error`](PolyloadHost::set_error) and returns any value of its return
//!   type (zero by convention). The host checks the calling thread's error flag
//!   after each call and turns it into an error value. Nothing unwinds across
//!   the boundary: a Rust guest catches panics (see `polyload-guest`).
//! * The host table grows by appending fields; [`PolyloadHost::size`] tells a
//!   bundle which fields exist, so a bundle built against an older, shorter
//!   table keeps working.
#![no_std]
#![warn(missing_docs)]

use core::ffi::c_void;
use core::fmt;

/// Version of the bundle ABI described by this crate.
///
/// Bump the minor version when fields are appended to [`PolyloadHost`];
/// bump the major version on any incompatible change.
///
/// History: 1.0 the first table; 1.1 appends [`PolyloadHost::enter`] and
/// [`PolyloadHost::leave`] (threads a bundle starts itself).
pub const POLYLOAD_ABI_VERSION: AbiVersion = AbiVersion::new(1, 1);

/// Name of the symbol every native bundle exports to report its ABI version.
pub const ABI_VERSION_SYMBOL: &str = "polyload_abi_version";
/// Name of the symbol every native bundle exports to register its definitions.
pub const BUNDLE_INIT_SYMBOL: &str = "polyload_bundle_init";
/// Optional symbol: returns the bundle's build metadata as a [`PolyloadStr`]
/// (a `key=value` line per field, see `polyload-guest`).
pub const BUILD_INFO_SYMBOL: &str = "polyload_build_info";
/// Optional symbol: `void polyload_bundle_fini(void)`, called once when the
/// version is retired and no thread can be inside it, before its library is
/// closed.
pub const BUNDLE_FINI_SYMBOL: &str = "polyload_bundle_fini";
/// Optional symbol: `PolyloadBytes polyload_state_save(const PolyloadHost*)`,
/// called on the old version before a hot reload.
pub const STATE_SAVE_SYMBOL: &str = "polyload_state_save";
/// Optional symbol: `int32_t polyload_state_restore(const PolyloadHost*, PolyloadBytes)`,
/// called on the new version after a hot reload.
pub const STATE_RESTORE_SYMBOL: &str = "polyload_state_restore";

/// Status: success.
pub const POLYLOAD_OK: i32 = 0;
/// Status: generic failure; the message was set with `set_error`.
pub const POLYLOAD_ERR: i32 = -1;
/// Status: an argument was invalid (null pointer, bad UTF-8, bad signature).
pub const POLYLOAD_ERR_INVALID: i32 = -2;
/// Status: a definition with that name already exists.
pub const POLYLOAD_ERR_DUPLICATE: i32 = -3;
/// Status: no definition with that name.
pub const POLYLOAD_ERR_NOT_FOUND: i32 = -4;

/// Log level: error.
pub const POLYLOAD_LOG_ERROR: u32 = 1;
/// Log level: warning.
pub const POLYLOAD_LOG_WARN: u32 = 2;
/// Log level: information.
pub const POLYLOAD_LOG_INFO: u32 = 3;
/// Log level: debug.
pub const POLYLOAD_LOG_DEBUG: u32 = 4;

/// An ABI version: `major.minor`, packed on the wire as `(major << 16) | minor`.
///
/// Compatibility follows semantic versioning for a provider/consumer pair:
/// a provider at version `P` satisfies a requirement `R` when
/// `P.major == R.major && P.minor >= R.minor`.
///
/// ```
/// use polyload_abi::AbiVersion;
/// let host = AbiVersion::new(1, 3);
/// assert!(host.is_compatible_with(AbiVersion::new(1, 2)));
/// assert!(!host.is_compatible_with(AbiVersion::new(1, 4)));
/// assert!(!host.is_compatible_with(AbiVersion::new(2, 0)));
/// assert_eq!(AbiVersion::from_packed(host.packed()), host);
/// assert_eq!(host.to_string(), "1.3");
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AbiVersion {
    /// Incompatible changes bump this.
    pub major: u16,
    /// Backwards-compatible additions bump this.
    pub minor: u16,
}

impl AbiVersion {
    /// Creates a version.
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    /// Packs the version as `(major << 16) | minor`, the form returned by
    /// `polyload_abi_version()`.
    pub const fn packed(self) -> u32 {
        ((self.major as u32) << 16) | self.minor as u32
    }

    /// Unpacks a version packed by [`AbiVersion::packed`].
    pub const fn from_packed(packed: u32) -> Self {
        Self {
            major: (packed >> 16) as u16,
            minor: (packed & 0xffff) as u16,
        }
    }

    /// Whether `self`, as a provider, satisfies `required`: majors equal and
    /// `self.minor >= required.minor`.
    pub const fn is_compatible_with(self, required: AbiVersion) -> bool {
        self.major == required.major && self.minor >= required.minor
    }
}

impl fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Error returned by [`AbiVersion`]'s `FromStr` for text not of the form
/// `MAJOR.MINOR` (two decimal `u16`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseAbiVersionError;

impl fmt::Display for ParseAbiVersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected an ABI version of the form MAJOR.MINOR, e.g. \"1.0\"")
    }
}

impl core::str::FromStr for AbiVersion {
    type Err = ParseAbiVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (major, minor) = s.trim().split_once('.').ok_or(ParseAbiVersionError)?;
        let parse = |p: &str| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseAbiVersionError);
            }
            p.parse::<u16>().map_err(|_| ParseAbiVersionError)
        };
        Ok(Self::new(parse(major)?, parse(minor)?))
    }
}

/// A UTF-8 string slice crossing the boundary: pointer + length in bytes,
/// not NUL-terminated. `{ptr: null, len: 0}` is the empty string.
///
/// Passed by value; under the System V AMD64 ABI (§3.2.3) and AAPCS64 a
/// 16-byte struct of two INTEGER eightbytes travels in two general-purpose
/// registers, exactly like two separate pointer and length arguments.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PolyloadStr {
    /// First byte, or null when `len == 0`.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

/// A byte buffer crossing the boundary: pointer + length. Same layout and
/// rules as [`PolyloadStr`] without the UTF-8 requirement.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PolyloadBytes {
    /// First byte, or null when `len == 0`.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl PolyloadStr {
    /// The empty string.
    pub const EMPTY: Self = Self {
        ptr: core::ptr::null(),
        len: 0,
    };

    /// Borrows a Rust string. The result is valid while `s` is.
    pub const fn from_str(s: &str) -> Self {
        Self {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Views the bytes.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that stay valid and unchanged
    /// for `'a` (or `len` must be 0).
    pub unsafe fn as_bytes<'a>(self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: guaranteed by the caller.
            unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

impl PolyloadBytes {
    /// The empty buffer.
    pub const EMPTY: Self = Self {
        ptr: core::ptr::null(),
        len: 0,
    };

    /// Borrows a Rust slice. The result is valid while `b` is.
    pub const fn from_slice(b: &[u8]) -> Self {
        Self {
            ptr: b.as_ptr(),
            len: b.len(),
        }
    }

    /// Views the bytes.
    ///
    /// # Safety
    /// As [`PolyloadStr::as_bytes`].
    pub unsafe fn as_bytes<'a>(self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: guaranteed by the caller.
            unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// Opaque handle for the bundle being initialised; only the host reads it.
#[repr(C)]
pub struct PolyloadBundle {
    _opaque: [u8; 0],
    _not_send_sync: core::marker::PhantomData<*mut u8>,
}

/// The table of a published bundle version: its generation and one code (or
/// data) pointer per definition index. Immutable once published; the host
/// swaps whole tables, so every definition of a bundle changes at once.
#[repr(C)]
#[derive(Debug)]
pub struct PolyloadCodeTable {
    /// Generation of this version (1 for the first load, +1 per reload).
    pub generation: u64,
    /// Number of entries in `code`.
    pub len: usize,
    /// `len` pointers; null where the version does not define that index.
    pub code: *const *const c_void,
}

/// A stable reference to a definition, returned by [`PolyloadHost::lookup`].
///
/// It stays valid for the life of the host's namespace, across reloads of the
/// bundle that defines it and even before that bundle is loaded. Read the
/// current code pointer with `polyload_slot_get` (in the header), which is an
/// acquire load of `*cell` followed by an index: that is the whole cost of a
/// cross-bundle call's indirection.
#[repr(C)]
#[derive(Debug)]
pub struct PolyloadSlot {
    /// The bundle's current table; null while the bundle is not loaded.
    /// Accessed atomically (acquire) by readers.
    pub cell: *const core::sync::atomic::AtomicPtr<PolyloadCodeTable>,
    /// This definition's index into [`PolyloadCodeTable::code`].
    pub index: usize,
}

/// `define` entry of the host table. See [`PolyloadHost::define`].
pub type DefineFn = unsafe extern "C" fn(
    bundle: *mut PolyloadBundle,
    name: PolyloadStr,
    signature: PolyloadStr,
    code: *const c_void,
) -> i32;
/// `lookup` entry of the host table. See [`PolyloadHost::lookup`].
pub type LookupFn = unsafe extern "C" fn(
    bundle: *mut PolyloadBundle,
    qualified_name: PolyloadStr,
) -> *const PolyloadSlot;
/// `log` entry of the host table. See [`PolyloadHost::log`].
pub type LogFn = unsafe extern "C" fn(level: u32, message: PolyloadStr);
/// `alloc` entry of the host table. See [`PolyloadHost::alloc`].
pub type AllocFn = unsafe extern "C" fn(size: usize, align: usize) -> *mut c_void;
/// `free` entry of the host table. See [`PolyloadHost::free`].
pub type FreeFn = unsafe extern "C" fn(ptr: *mut c_void, size: usize, align: usize);
/// `set_error` entry of the host table. See [`PolyloadHost::set_error`].
pub type SetErrorFn = unsafe extern "C" fn(message: PolyloadStr);
/// `enter` entry of the host table (ABI 1.1). See [`PolyloadHost::enter`].
pub type EnterFn = unsafe extern "C" fn();
/// `leave` entry of the host table (ABI 1.1). See [`PolyloadHost::leave`].
pub type LeaveFn = unsafe extern "C" fn() -> i32;

/// The services a host offers its bundles, passed to `polyload_bundle_init`.
///
/// The table is append-only: a bundle must check `size` before reading a
/// field added after ABI 1.0 ([`enter`](Self::enter) and
/// [`leave`](Self::leave), ABI 1.1; `POLYLOAD_HOST_HAS(host, enter)` in the
/// header), unless it requires that ABI version. Every function is
/// thread-safe unless noted, and none of them unwinds.
#[repr(C)]
pub struct PolyloadHost {
    /// `sizeof(PolyloadHost)` as built by the host; fields past it are absent.
    pub size: usize,
    /// The host's ABI version, packed.
    pub abi_version: u32,
    /// Registers a definition of the bundle being initialised. `name` is the
    /// unqualified export name (`add`), `signature` its signature string
    /// (`fn(i64, i64) -> i64`), `code` its address. Valid only during
    /// `polyload_bundle_init`. Returns `POLYLOAD_OK`, `POLYLOAD_ERR_INVALID`
    /// (bad UTF-8, empty name, unparsable signature) or
    /// `POLYLOAD_ERR_DUPLICATE` (the bundle defined `name` twice).
    pub define: DefineFn,
    /// Resolves a qualified name (`hello.add`) to a stable [`PolyloadSlot`],
    /// which may be looked up before the defining bundle is loaded. Returns
    /// null when the name is malformed. Usable during init and afterwards.
    pub lookup: LookupFn,
    /// Writes a message to the host's log (`POLYLOAD_LOG_*` levels).
    pub log: LogFn,
    /// Allocates `size` bytes aligned to `align` (a power of two); null on
    /// failure. Use it for every buffer returned to the host.
    pub alloc: AllocFn,
    /// Frees memory from `alloc` with the same `size` and `align`.
    pub free: FreeFn,
    /// Sets the calling thread's error message. The host turns it into an
    /// error value when the current call (or init) returns.
    pub set_error: SetErrorFn,
    /// (ABI 1.1) Marks the calling thread as inside a polyload call, as a
    /// host call does for the code it reaches. A thread the bundle started
    /// itself runs outside any host call, so nothing keeps code it reaches
    /// through `polyload_slot_get` mapped: it brackets each use with
    /// `enter()` ... `leave()`. Calls nest. While a thread is entered, no
    /// bundle version retired since is unmapped (its own library included),
    /// so a long-running thread leaves at points where it holds no code
    /// pointer, as often as it can (quiescent states).
    pub enter: EnterFn,
    /// (ABI 1.1) Ends the innermost `enter()` on this thread. Returns
    /// `POLYLOAD_OK`, or `POLYLOAD_ERR_INVALID` (and does nothing) when the
    /// thread is not inside a call.
    pub leave: LeaveFn,
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::str::FromStr;

    #[test]
    fn packing_round_trips() {
        for (ma, mi) in [(0, 0), (1, 0), (1, 65535), (65535, 1)] {
            let v = AbiVersion::new(ma, mi);
            assert_eq!(AbiVersion::from_packed(v.packed()), v);
        }
        assert_eq!(AbiVersion::new(1, 2).packed(), 0x0001_0002);
    }

    #[test]
    fn compatibility_rule() {
        let p = AbiVersion::new(1, 2);
        assert!(p.is_compatible_with(AbiVersion::new(1, 0)));
        assert!(p.is_compatible_with(AbiVersion::new(1, 2)));
        assert!(!p.is_compatible_with(AbiVersion::new(1, 3)));
        assert!(!p.is_compatible_with(AbiVersion::new(0, 2)));
        assert!(!p.is_compatible_with(AbiVersion::new(2, 0)));
    }

    #[test]
    fn parse() {
        assert_eq!(AbiVersion::from_str("1.2"), Ok(AbiVersion::new(1, 2)));
        for bad in ["1", "1.", ".2", "a.b", "1.2.3", "70000.0", "-1.0", "+1.0"] {
            assert_eq!(
                AbiVersion::from_str(bad),
                Err(ParseAbiVersionError),
                "{bad}"
            );
        }
    }
}
