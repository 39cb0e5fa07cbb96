//! Shared libraries opened by name or path.

use crate::FfiError;
use std::ffi::c_void;
use std::path::Path;

/// An open shared library (`dlopen`), kept loaded while the handle (or a
/// [`Call`](crate::Call) made from it) lives.
pub struct Library {
    name: String,
    inner: libloading::Library,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library").field("name", &self.name).finish()
    }
}

/// Where the dynamic linker looks for a bare name, for error messages.
fn search_note() -> String {
    let ld = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
    if cfg!(target_os = "macos") {
        format!(
            "DYLD_LIBRARY_PATH={:?}, /usr/lib and the dyld cache",
            std::env::var("DYLD_LIBRARY_PATH").unwrap_or_default()
        )
    } else if cfg!(windows) {
        "the executable's directory, the system directories and PATH".to_string()
    } else {
        format!("LD_LIBRARY_PATH={ld:?}, /etc/ld.so.cache, /lib, /usr/lib")
    }
}

impl Library {
    /// Opens `name_or_path`: a path (anything containing a `/`) is opened as
    /// is; a bare name (`libm.so.6`, `libz.so.1`) goes to the dynamic
    /// linker's search; a short name without extension (`m`, `z`, `c`) also
    /// tries `lib{name}.so` and, on Linux, `lib{name}.so.6` and
    /// `lib{name}.so.1`.
    ///
    /// # Errors
    /// [`FfiError::LibraryNotFound`] listing every candidate tried with the
    /// dynamic linker's reason and, for bare names, the search path.
    ///
    /// # Safety
    /// Loading a library runs its initialisers (`.init_array`, C++ static
    /// constructors): arbitrary foreign code in this process. The caller
    /// vouches for the library.
    pub unsafe fn load(name_or_path: &str) -> Result<Library, FfiError> {
        let is_path =
            name_or_path.contains(std::path::MAIN_SEPARATOR) || name_or_path.contains('/');
        let mut candidates = vec![name_or_path.to_string()];
        if !is_path && Path::new(name_or_path).extension().is_none() {
            let base = name_or_path.strip_prefix("lib").unwrap_or(name_or_path);
            candidates.push(
                libloading::library_filename(base)
                    .to_string_lossy()
                    .into_owned(),
            );
            if cfg!(target_os = "linux") {
                candidates.push(format!("lib{base}.so.6"));
                candidates.push(format!("lib{base}.so.1"));
            }
        }
        let mut tried = Vec::new();
        for c in &candidates {
            // SAFETY: the caller vouches for the library's initialisers.
            match unsafe { libloading::Library::new(c) } {
                Ok(inner) => {
                    return Ok(Library {
                        name: name_or_path.to_string(),
                        inner,
                    })
                }
                Err(e) => tried.push(format!("`{c}`: {e}")),
            }
        }
        if !is_path {
            tried.push(format!("(bare names are searched in {})", search_note()));
        }
        Err(FfiError::LibraryNotFound {
            name: name_or_path.to_string(),
            tried,
        })
    }

    /// The name or path the library was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address of `symbol` (a function or data). The address is valid
    /// while this library stays loaded.
    ///
    /// # Errors
    /// [`FfiError::SymbolNotFound`] naming the symbol and the library.
    pub fn symbol(&self, symbol: &str) -> Result<*const c_void, FfiError> {
        let not_found = |reason: String| FfiError::SymbolNotFound {
            symbol: symbol.to_string(),
            library: self.name.clone(),
            reason,
        };
        if symbol.as_bytes().contains(&0) {
            return Err(not_found("the name contains a NUL byte".into()));
        }
        // SAFETY: the symbol is read as an address only (a pointer-sized
        // value is what `dlsym` returns); nothing is called here.
        let p = unsafe { self.inner.get::<*const c_void>(symbol.as_bytes()) }
            .map(|s| *s)
            .map_err(|e| not_found(e.to_string()))?;
        if p.is_null() {
            return Err(not_found("the symbol's address is null".into()));
        }
        Ok(p)
    }
}
