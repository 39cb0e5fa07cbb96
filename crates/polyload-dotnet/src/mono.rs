//! Mono's embedding API, loaded at run time: `dlopen` of
//! `libmonosgen-2.0.so.1` (Debian's `libmonosgen-2.0-1`, pulled in by
//! `mono-runtime`), so polyload builds and runs on machines without Mono.
//!
//! Only the functions the loader uses are bound; their C declarations are
//! in Mono's `mono/jit/jit.h`, `mono/metadata/*.h` (Mono 6.8).

use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

/// Opaque Mono handles (`MonoDomain *`, `MonoObject *`, ...).
pub(crate) type Ptr = *mut c_void;

// ECMA-335 §II.23.1.16 element types, as `mono_type_get_type` returns them.
pub(crate) const TYPE_VOID: c_int = 0x01;
pub(crate) const TYPE_BOOLEAN: c_int = 0x02;
pub(crate) const TYPE_I1: c_int = 0x04;
pub(crate) const TYPE_U1: c_int = 0x05;
pub(crate) const TYPE_I2: c_int = 0x06;
pub(crate) const TYPE_U2: c_int = 0x07;
pub(crate) const TYPE_I4: c_int = 0x08;
pub(crate) const TYPE_U4: c_int = 0x09;
pub(crate) const TYPE_I8: c_int = 0x0a;
pub(crate) const TYPE_U8: c_int = 0x0b;
pub(crate) const TYPE_R4: c_int = 0x0c;
pub(crate) const TYPE_R8: c_int = 0x0d;
pub(crate) const TYPE_STRING: c_int = 0x0e;
pub(crate) const TYPE_SZARRAY: c_int = 0x1d;

// ECMA-335 §II.23.1.10 method attributes.
pub(crate) const METHOD_ATTRIBUTE_MEMBER_ACCESS_MASK: u32 = 0x0007;
pub(crate) const METHOD_ATTRIBUTE_PUBLIC: u32 = 0x0006;
pub(crate) const METHOD_ATTRIBUTE_STATIC: u32 = 0x0010;

/// The libraries tried, in order, unless `$POLYLOAD_MONO` names one (a
/// Mono installed outside the loader's search path, `/opt/mono/lib/...`).
const LIBRARIES: [&str; 2] = ["libmonosgen-2.0.so.1", "libmonosgen-2.0.so"];

/// The Debian packages a `dotnet` bundle needs, for error messages.
pub(crate) const PACKAGES: &str =
    "install Debian's `mono-runtime` (and `mono-mcs` to build C# sources)";

macro_rules! api {
    ($( $name:ident : fn($($arg:ty),*) $(-> $ret:ty)?; )*) => {
        /// The bound functions (C ABI, as Mono's headers declare them).
                pub(crate) struct Mono {
            $( pub(crate) $name: unsafe extern "C" fn($($arg),*) $(-> $ret)?, )*
        }

        impl Mono {
            fn bind(lib: &libloading::Library, path: &str) -> Result<Mono, String> {
                Ok(Mono {
                    $( $name: {
                        // SAFETY: the symbol is Mono's function of this
                        // name, whose C declaration the field's type
                        // mirrors; the library is never unloaded (it is
                        // leaked below), so the pointer stays valid.
                        let f = unsafe {
                            lib.get::<unsafe extern "C" fn($($arg),*) $(-> $ret)?>(
                                concat!(stringify!($name), "\0").as_bytes(),
                            )
                        }
                        .map_err(|e| format!("`{}` not found in {path}: {e}", stringify!($name)))?;
                        *f
                    }, )*
                })
            }
        }
    };
}

api! {
    mono_set_signal_chaining: fn(c_int);
    mono_config_parse: fn(*const c_char);
    mono_jit_init_version: fn(*const c_char, *const c_char) -> Ptr;
    mono_domain_get: fn() -> Ptr;
    mono_domain_set_internal: fn(Ptr);
    mono_domain_create_appdomain: fn(*const c_char, *const c_char) -> Ptr;
    mono_domain_try_unload: fn(Ptr, *mut Ptr);
    mono_domain_assembly_open: fn(Ptr, *const c_char) -> Ptr;
    mono_assembly_get_image: fn(Ptr) -> Ptr;
    mono_class_from_name: fn(Ptr, *const c_char, *const c_char) -> Ptr;
    mono_class_get_methods: fn(Ptr, *mut Ptr) -> Ptr;
    mono_class_get_name: fn(Ptr) -> *const c_char;
    mono_class_get_namespace: fn(Ptr) -> *const c_char;
    mono_method_get_name: fn(Ptr) -> *const c_char;
    mono_method_get_flags: fn(Ptr, *mut u32) -> u32;
    mono_method_signature: fn(Ptr) -> Ptr;
    mono_method_get_unmanaged_thunk: fn(Ptr) -> *const c_void;
    mono_signature_get_return_type: fn(Ptr) -> Ptr;
    mono_signature_get_params: fn(Ptr, *mut Ptr) -> Ptr;
    mono_signature_get_param_count: fn(Ptr) -> u32;
    mono_type_get_type: fn(Ptr) -> c_int;
    mono_type_get_name: fn(Ptr) -> *mut c_char;
    mono_free: fn(*mut c_void);
    mono_add_internal_call: fn(*const c_char, *const c_void);
    mono_thread_attach: fn(Ptr) -> Ptr;
    mono_thread_detach: fn(Ptr);
    mono_string_new_len: fn(Ptr, *const c_char, u32) -> Ptr;
    mono_string_chars: fn(Ptr) -> *const u16;
    mono_string_length: fn(Ptr) -> c_int;
    mono_array_new: fn(Ptr, Ptr, usize) -> Ptr;
    mono_array_length: fn(Ptr) -> usize;
    mono_array_addr_with_size: fn(Ptr, c_int, usize) -> *mut c_char;
    mono_get_byte_class: fn() -> Ptr;
    mono_get_sbyte_class: fn() -> Ptr;
    mono_get_int16_class: fn() -> Ptr;
    mono_get_uint16_class: fn() -> Ptr;
    mono_get_int32_class: fn() -> Ptr;
    mono_get_uint32_class: fn() -> Ptr;
    mono_get_int64_class: fn() -> Ptr;
    mono_get_uint64_class: fn() -> Ptr;
    mono_get_single_class: fn() -> Ptr;
    mono_get_double_class: fn() -> Ptr;
    mono_get_boolean_class: fn() -> Ptr;
    mono_get_string_class: fn() -> Ptr;
    mono_get_object_class: fn() -> Ptr;
    mono_object_get_class: fn(Ptr) -> Ptr;
    mono_class_get_element_class: fn(Ptr) -> Ptr;
    mono_class_get_rank: fn(Ptr) -> c_int;
    mono_object_unbox: fn(Ptr) -> *mut c_void;
    mono_value_box: fn(Ptr, Ptr, *mut c_void) -> Ptr;
    mono_gchandle_new: fn(Ptr, c_int) -> u32;
    mono_gchandle_free: fn(u32);
    mono_gc_wbarrier_generic_store: fn(*mut c_void, Ptr);
}

static MONO: OnceLock<Result<Mono, String>> = OnceLock::new();

/// The bound API, loading the library on first use.
///
/// # Errors
/// Mono is not installed, or a function is missing: the message names the
/// libraries tried and the Debian packages to install.
pub(crate) fn api() -> Result<&'static Mono, String> {
    MONO.get_or_init(|| {
        let mut tried = Vec::new();
        let own = std::env::var("POLYLOAD_MONO").ok();
        let names: Vec<&str> = match &own {
            Some(p) => vec![p.as_str()],
            None => LIBRARIES.to_vec(),
        };
        for name in names {
            // SAFETY: loading Mono runs its ELF constructors, which only
            // set up its own globals; nothing else is started until
            // `mono_jit_init_version`. RTLD_GLOBAL: the native libraries
            // Mono opens itself (`libmono-native.so`, behind the class
            // library's P/Invokes) resolve Mono's symbols through the
            // global scope.
            let opened = unsafe {
                libloading::os::unix::Library::open(
                    Some(name),
                    libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
                )
            };
            match opened.map(libloading::Library::from) {
                Ok(lib) => {
                    let api = Mono::bind(&lib, name)?;
                    // Mono cannot be unloaded once initialised: the library
                    // stays mapped for the life of the process.
                    std::mem::forget(lib);
                    return Ok(api);
                }
                Err(e) => tried.push(format!("{name}: {e}")),
            }
        }
        Err(format!(
            "Mono is not installed ({}): {PACKAGES}",
            tried.join("; ")
        ))
    })
    .as_ref()
    .map_err(Clone::clone)
}

// SAFETY: the table holds only function pointers into a library that is
// never unloaded; Mono's functions are callable from any attached thread.
unsafe impl Sync for Mono {}
// SAFETY: as above.
unsafe impl Send for Mono {}
