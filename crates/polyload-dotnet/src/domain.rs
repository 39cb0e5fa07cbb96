//! Application domains, assemblies, methods: finding an export, checking
//! its C# signature against the manifest's, and making its entry point.

use crate::mono::{self, Ptr};
use crate::values;
use crate::vm::{c_string, ReportThunk, Vm};
use polyload::loader::{report_guest_error, take_reported_error, GuestError, HostCalls, Source};
use polyload::{FfiType, Signature, Value};
use polyload_ffi::{Call, CallBuilder, OutSlotTrampoline};
use std::ffi::{c_int, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Copies the assembly to `<cache>/assemblies/<hash>.dll` (once per
/// content). Mono caches images by path for the life of the process, so a
/// reload must open its new bytes under a new name.
pub(crate) fn shadow_copy(cache: &Path, source: &Source) -> Result<PathBuf, String> {
    use sha2::{Digest, Sha256};
    let hash: String = Sha256::digest(&source.bytes)[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = cache.join("assemblies");
    let path = dir.join(format!("{hash}.dll"));
    if !path.is_file() {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let tmp = dir.join(format!(".{hash}.tmp{}", std::process::id()));
        std::fs::write(&tmp, &source.bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(path)
}

/// A bundle version's application domain; unloaded on drop.
pub(crate) struct Domain {
    vm: &'static Vm,
    ptr: usize,
}

// SAFETY: a domain is a process-wide Mono object usable from any attached
// thread; `Vm::attach` precedes every use.
unsafe impl Send for Domain {}
// SAFETY: as above.
unsafe impl Sync for Domain {}

static DOMAINS_MADE: AtomicU64 = AtomicU64::new(0);

impl Domain {
    /// A new domain named `<bundle>#<n>`, whose `Polyload.Call`s go
    /// through `host`.
    pub(crate) fn create(vm: &'static Vm, bundle: &str, host: HostCalls) -> Result<Domain, String> {
        vm.attach();
        let n = DOMAINS_MADE.fetch_add(1, Ordering::Relaxed);
        let name = c_string("bundle id", &format!("{bundle}#{n}"))?;
        // SAFETY: the thread is attached; the name is NUL-terminated.
        let ptr = unsafe { (vm.api.mono_domain_create_appdomain)(name.as_ptr(), std::ptr::null()) };
        if ptr.is_null() {
            return Err("mono_domain_create_appdomain failed".into());
        }
        vm.register(ptr, host);
        Ok(Domain {
            vm,
            ptr: ptr as usize,
        })
    }

    fn ptr(&self) -> Ptr {
        self.ptr as Ptr
    }

    /// Opens the support assembly and then the bundle's in this domain.
    pub(crate) fn open(&self, support: &Path, assembly: &Path) -> Result<Assembly<'_>, String> {
        let api = self.vm.api;
        self.vm.in_domain(self.ptr(), || {
            let open = |p: &Path| -> Result<Ptr, String> {
                let c = c_string("path", &p.display().to_string())?;
                // SAFETY: the thread is attached and in this domain.
                let a = unsafe { (api.mono_domain_assembly_open)(self.ptr(), c.as_ptr()) };
                if a.is_null() {
                    return Err(format!(
                        "{} is not a .NET assembly Mono can load",
                        p.display()
                    ));
                }
                // SAFETY: `a` is a loaded assembly.
                Ok(unsafe { (api.mono_assembly_get_image)(a) })
            };
            let support = open(support)?;
            let image = open(assembly)?;
            let errors = class(api, support, "PolyloadSupport.Errors")?;
            let report = find_methods(api, errors, &["Report".into()], 1)
                .into_iter()
                .next()
                .ok_or("the support assembly has no `Errors.Report`")?;
            // SAFETY: `report` is a method of a loaded class.
            let report = unsafe { (api.mono_method_get_unmanaged_thunk)(report) };
            if report.is_null() {
                return Err("Mono made no thunk for `PolyloadSupport.Errors.Report`".into());
            }
            // SAFETY: `Report` is `static void Report(Exception)`: its thunk
            // takes the object and the exception slot.
            let report = unsafe { std::mem::transmute::<*const c_void, ReportThunk>(report) };
            self.vm.set_reporter(self.ptr(), report);
            Ok(Assembly {
                domain: self,
                image: image as usize,
            })
        })
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        let vm = self.vm;
        vm.unregister(self.ptr());
        vm.attach();
        let mut exc: Ptr = std::ptr::null_mut();
        // SAFETY: the runtime drops a version only once no thread can be
        // inside it (the reclaimer), so no call runs in this domain, and
        // no thread is left in it (a scope that left one there moved it
        // out when it ended, before the reclaimer could get here); this
        // thread is attached and in the root domain, or, inside a scope,
        // in another bundle's.
        unsafe { (vm.api.mono_domain_try_unload)(self.ptr(), &mut exc) };
        if !exc.is_null() {
            tracing::warn!("unloading a .NET application domain raised an exception");
        }
    }
}

/// The guest error of the exception `exc` that a call of an export of
/// `domain` left in its thunk's exception slot: its type, message and
/// stack trace as `Errors.Report` formats them, run in `domain`.
///
/// # Safety
/// `domain` is alive and `exc` is the exception object Mono stored, kept
/// alive by the caller's frame (Mono's GC scans native stacks
/// conservatively).
#[cold]
#[inline(never)]
unsafe fn exception_error(vm: &Vm, domain: Ptr, exc: Ptr) -> GuestError {
    let Some(report) = vm.reporter(domain) else {
        return GuestError::new(UNDESCRIBED);
    };
    let mut again: Ptr = std::ptr::null_mut();
    vm.in_domain(domain, || {
        // SAFETY: `report` is the thunk of `static void Report(Exception)`
        // in `domain`, now current; `exc` is an exception of it.
        unsafe { report(exc, &mut again) }
    });
    match take_reported_error() {
        Some(e) if again.is_null() => e,
        _ => GuestError::new(UNDESCRIBED),
    }
}

/// The error of an exception `Errors.Report` could not describe.
const UNDESCRIBED: &str = "a .NET exception was thrown and describing it failed";

/// The bundle's assembly, opened in its domain.
pub(crate) struct Assembly<'d> {
    domain: &'d Domain,
    image: usize,
}

/// Where an export is: a class (or the section's) and method names to try.
pub(crate) struct Method {
    pub(crate) class: Option<String>,
    pub(crate) names: Vec<String>,
}

impl Method {
    /// `Method` or `Namespace.Class::Method`.
    pub(crate) fn parse(s: &str) -> Method {
        match s.rsplit_once("::") {
            Some((class, name)) => Method {
                class: Some(class.to_string()),
                names: vec![name.to_string()],
            },
            None => Method {
                class: None,
                names: vec![s.to_string()],
            },
        }
    }

    /// The export's own name, then it with its first letter upper-cased.
    pub(crate) fn default_for(export: &str) -> Method {
        let mut names = vec![export.to_string()];
        let mut c = export.chars();
        if let Some(first) = c.next() {
            let pascal: String = first.to_uppercase().chain(c).collect();
            if pascal != export {
                names.push(pascal);
            }
        }
        Method { class: None, names }
    }
}

/// What keeps an export callable; dropped before its domain.
pub(crate) enum Entry {
    /// Numbers and `bool` only: native code in front of the thunk.
    Native { trampoline: OutSlotTrampoline },
    /// Values that are .NET objects.
    Dynamic(Arc<DynamicCall>),
}

/// A class of `image` by full name (`Namespace.Class`).
fn class(api: &mono::Mono, image: Ptr, full: &str) -> Result<Ptr, String> {
    let (ns, name) = full.rsplit_once('.').unwrap_or(("", full));
    let (ns_c, name_c) = (c_string("class", ns)?, c_string("class", name)?);
    // SAFETY: `image` is a loaded image; the names are NUL-terminated.
    let k = unsafe { (api.mono_class_from_name)(image, ns_c.as_ptr(), name_c.as_ptr()) };
    if k.is_null() {
        return Err(format!("no class `{full}` in the assembly"));
    }
    Ok(k)
}

fn c_text(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: Mono's names are NUL-terminated strings it owns.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The methods of `k` named one of `names` (in that order of preference)
/// with `arity` parameters.
fn find_methods(api: &mono::Mono, k: Ptr, names: &[String], arity: u32) -> Vec<Ptr> {
    let mut all = Vec::new();
    let mut iter: Ptr = std::ptr::null_mut();
    loop {
        // SAFETY: the documented iteration protocol over a loaded class.
        let m = unsafe { (api.mono_class_get_methods)(k, &mut iter) };
        if m.is_null() {
            break;
        }
        all.push(m);
    }
    let mut out = Vec::new();
    for name in names {
        for &m in &all {
            // SAFETY: `m` is a method of `k`.
            let (n, count) = unsafe {
                (
                    c_text((api.mono_method_get_name)(m)),
                    (api.mono_signature_get_param_count)((api.mono_method_signature)(m)),
                )
            };
            if &n == name && count == arity {
                out.push(m);
            }
        }
    }
    out
}

/// The C# type a polyload type must be, as (element type, name).
fn expected(ty: &FfiType) -> Option<(c_int, &'static str)> {
    Some(match ty {
        FfiType::Void => (mono::TYPE_VOID, "System.Void"),
        FfiType::Bool => (mono::TYPE_BOOLEAN, "System.Boolean"),
        FfiType::I8 => (mono::TYPE_I1, "System.SByte"),
        FfiType::U8 => (mono::TYPE_U1, "System.Byte"),
        FfiType::I16 => (mono::TYPE_I2, "System.Int16"),
        FfiType::U16 => (mono::TYPE_U2, "System.UInt16"),
        FfiType::I32 => (mono::TYPE_I4, "System.Int32"),
        FfiType::U32 => (mono::TYPE_U4, "System.UInt32"),
        FfiType::I64 => (mono::TYPE_I8, "System.Int64"),
        FfiType::U64 | FfiType::Handle(_) => (mono::TYPE_U8, "System.UInt64"),
        FfiType::F32 => (mono::TYPE_R4, "System.Single"),
        FfiType::F64 => (mono::TYPE_R8, "System.Double"),
        FfiType::Str | FfiType::Json => (mono::TYPE_STRING, "System.String"),
        FfiType::Bytes => (mono::TYPE_SZARRAY, "System.Byte[]"),
        _ => return None,
    })
}

/// Whether a signature is numbers and `bool` only (the native path).
fn scalar(sig: &Signature) -> bool {
    let s = |t: &FfiType| matches!(expected(t), Some((code, _)) if code != mono::TYPE_STRING && code != mono::TYPE_SZARRAY);
    sig.params.iter().all(s) && s(&sig.ret)
}

impl Assembly<'_> {
    /// Finds and checks `class::names[..]` for `export: sig`, and makes its
    /// entry point.
    pub(crate) fn export(
        &self,
        class_name: &str,
        names: &[String],
        export: &str,
        sig: &Signature,
    ) -> Result<Entry, String> {
        let vm = self.domain.vm;
        let api = vm.api;
        for ty in sig.params.iter().chain([&sig.ret]) {
            if expected(ty).is_none() {
                return Err(format!(
                    "export `{export}`: `{ty}` does not cross into .NET (numbers, bool, str, bytes and json do)"
                ));
            }
        }
        vm.in_domain(self.domain.ptr(), || {
            let k = class(api, self.image as Ptr, class_name)?;
            let arity = sig.params.len() as u32;
            let method = find_methods(api, k, names, arity).into_iter().next().ok_or_else(|| {
                format!(
                    "export `{export}`: class `{class_name}` has no method {} with {arity} parameter(s)",
                    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" or ")
                )
            })?;
            let shown = format!("{class_name}::{}", c_text(
                // SAFETY: `method` is a method of a loaded class.
                unsafe { (api.mono_method_get_name)(method) },
            ));
            // SAFETY: as above.
            let flags = unsafe { (api.mono_method_get_flags)(method, std::ptr::null_mut()) };
            if flags & mono::METHOD_ATTRIBUTE_STATIC == 0
                || flags & mono::METHOD_ATTRIBUTE_MEMBER_ACCESS_MASK != mono::METHOD_ATTRIBUTE_PUBLIC
            {
                return Err(format!("export `{export}`: `{shown}` is not `public static`"));
            }
            check_signature(api, method, &shown, export, sig)?;
            // SAFETY: `method` is a static method of a class of this
            // domain; its thunk takes the method's parameters and then a
            // `MonoException **`, where an exception the method throws
            // lands (the callers make this domain current first).
            let thunk = unsafe { (api.mono_method_get_unmanaged_thunk)(method) };
            if thunk.is_null() {
                return Err(format!("export `{export}`: Mono made no thunk for `{shown}`"));
            }
            if scalar(sig) {
                // SAFETY: the thunk takes exactly `sig`'s scalars and the
                // exception slot; `escaped` may run on any thread; the
                // thunk stays callable while the domain is loaded, which
                // outlives the trampoline (`Entry` drops first).
                let trampoline = unsafe {
                    OutSlotTrampoline::with_hooks(
                        sig,
                        thunk,
                        thrown,
                        Some((crate::vm::enter, crate::vm::leave)),
                        self.domain.ptr(),
                    )
                }
                .map_err(|e| format!("export `{export}`: {e}"))?;
                return Ok(Entry::Native { trampoline });
            }
            let mut raw = sig.clone();
            let as_ptr = |t: &FfiType| match t {
                FfiType::Str | FfiType::Json | FfiType::Bytes => FfiType::Pointer,
                other => other.clone(),
            };
            raw.params = sig.params.iter().map(as_ptr).chain([FfiType::Pointer]).collect();
            raw.ret = as_ptr(&sig.ret);
            // SAFETY: as above: `raw` is the thunk's C signature, with
            // objects as pointers.
            let call = unsafe { CallBuilder::from_ptr(thunk).signature(&raw).build() }
                .map_err(|e| format!("export `{export}`: {e}"))?;
            Ok(Entry::Dynamic(Arc::new(DynamicCall {
                vm,
                domain: self.domain.ptr,
                sig: sig.clone(),
                call,
            })))
        })
    }
}

/// Checks `method`'s C# types against `sig`.
fn check_signature(
    api: &mono::Mono,
    method: Ptr,
    shown: &str,
    export: &str,
    sig: &Signature,
) -> Result<(), String> {
    let type_name = |t: Ptr| {
        // SAFETY: `t` is a type of the method's signature; the name is a
        // string Mono allocated for us.
        unsafe {
            let p = (api.mono_type_get_name)(t);
            let s = c_text(p);
            (api.mono_free)(p.cast());
            s
        }
    };
    let matches = |t: Ptr, want: &FfiType| {
        let (code, name) = expected(want).expect("checked by the caller");
        // SAFETY: as above.
        let found = unsafe { (api.mono_type_get_type)(t) };
        found == code && (code != mono::TYPE_SZARRAY || type_name(t) == name)
    };
    let mismatch = |what: String, t: Ptr, want: &FfiType| {
        format!(
            "export `{export}: {sig}`: {what} of `{shown}` is `{}`, the manifest's `{want}` needs `{}`",
            type_name(t),
            expected(want).map(|e| e.1).unwrap_or("?")
        )
    };
    // SAFETY: `method` is a loaded method; its signature's types live as
    // long as its class.
    unsafe {
        let msig = (api.mono_method_signature)(method);
        let mut iter: Ptr = std::ptr::null_mut();
        for (i, want) in sig.params.iter().enumerate() {
            let t = (api.mono_signature_get_params)(msig, &mut iter);
            if t.is_null() || !matches(t, want) {
                return Err(mismatch(format!("parameter {}", i + 1), t, want));
            }
        }
        let ret = (api.mono_signature_get_return_type)(msig);
        if !matches(ret, &sig.ret) {
            return Err(mismatch("the return type".into(), ret, &sig.ret));
        }
    }
    Ok(())
}

/// The native path's out-slot hook: the exception the export threw, as
/// the call's guest error. `context` is the export's domain.
unsafe extern "C" fn thrown(context: *mut c_void, exception: *mut c_void) {
    let _ = std::panic::catch_unwind(|| {
        let Ok(vm) = crate::vm::vm() else { return };
        // SAFETY: the trampoline passes its domain (alive while a call can
        // reach the export) and the exception its thunk stored.
        report_guest_error(unsafe { exception_error(vm, context, exception) });
    });
}

/// An export called with .NET objects.
pub(crate) struct DynamicCall {
    vm: &'static Vm,
    domain: usize,
    sig: Signature,
    call: Call,
}

// SAFETY: the call holds the thunk's address (code that lives as long as
// the domain) and the domain's address; both are used only on attached
// threads.
unsafe impl Send for DynamicCall {}
// SAFETY: as above.
unsafe impl Sync for DynamicCall {}

/// GC handles pinning a call's argument objects; freed on drop.
struct Pinned<'a>(&'a mono::Mono, Vec<u32>);

impl Drop for Pinned<'_> {
    fn drop(&mut self) {
        for &h in &self.1 {
            // SAFETY: handles made by `mono_gchandle_new` for this call.
            unsafe { (self.0.mono_gchandle_free)(h) };
        }
    }
}

impl DynamicCall {
    /// Calls the export with values of its signature.
    pub(crate) fn call(&self, args: &[Value]) -> Result<Value, GuestError> {
        let api = self.vm.api;
        self.vm.attach();
        let domain = self.domain as Ptr;
        let mut pinned = Pinned(api, Vec::new());
        let mut raw = Vec::with_capacity(args.len() + 1);
        for (a, ty) in args.iter().zip(&self.sig.params) {
            // SAFETY: the thread is attached; the domain is alive while a
            // call can reach this export. Each object is pinned by a GC
            // handle until the call returns (the argument vector is on the
            // heap, where Mono's GC does not look).
            let obj = unsafe {
                match (ty, a) {
                    (FfiType::Str, Value::Str(s)) => values::new_string(api, domain, s),
                    (FfiType::Json, Value::Json(j)) => {
                        values::new_string(api, domain, &j.to_string())
                    }
                    (FfiType::Bytes, Value::Bytes(b)) => values::new_bytes(api, domain, b),
                    _ => {
                        raw.push(a.clone());
                        continue;
                    }
                }
            };
            // SAFETY: `obj` was just allocated.
            pinned.1.push(unsafe { (api.mono_gchandle_new)(obj, 1) });
            raw.push(Value::Ptr(obj as usize));
        }
        let mut exc: Ptr = std::ptr::null_mut();
        raw.push(Value::Ptr(&mut exc as *mut Ptr as usize));
        let result = self.vm.calling(domain, || {
            // SAFETY: the thunk's C signature is the call's; every pointer
            // is a live, pinned object of the type the method takes, or
            // the exception slot on this frame; the domain is current.
            unsafe { self.call.call(&raw) }
        });
        if !exc.is_null() {
            // SAFETY: the domain is alive (as above); `exc` is what Mono
            // stored, on this frame.
            return Err(unsafe { exception_error(self.vm, domain, exc) });
        }
        let result = result.map_err(|e| GuestError::new(e.to_string()))?;
        drop(pinned);
        let ptr = match result {
            Value::Ptr(p) => p as Ptr,
            other => return Ok(other),
        };
        let bad = |e: String| GuestError::new(format!("return value: {e}"));
        // SAFETY: the method returned an object of the checked return type
        // (or null), held in this frame while it is read.
        unsafe {
            match &self.sig.ret {
                FfiType::Str => values::string_result(api, ptr).map(Value::Str).map_err(bad),
                FfiType::Json => {
                    let text = values::string_result(api, ptr).map_err(bad)?;
                    serde_json::from_str(&text)
                        .map(Value::Json)
                        .map_err(|e| bad(format!("not JSON ({e})")))
                }
                FfiType::Bytes if ptr.is_null() => Err(bad("the method returned null".into())),
                FfiType::Bytes => Ok(Value::Bytes(values::byte_array(api, ptr))),
                other => unreachable!("a `{other}` result is not an object"),
            }
        }
    }
}
