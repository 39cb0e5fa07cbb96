//! The check of what a loader produced against its manifest.

use crate::loader::{DynamicFn, ExportEntry, SlotFn};
use crate::manifest::Manifest;
use crate::namespace::{CodePtr, Invoke, NewDefinition};
use crate::{Error, ExportProblem, Result};
use polyload_ffi::Signature;
use std::sync::Arc;

/// Checks what a loader produced against the manifest and prepares the
/// definitions for publishing.
pub(crate) fn check_exports(
    manifest: &Manifest,
    exports: Vec<crate::loader::Export>,
) -> Result<Vec<NewDefinition>> {
    let problem = |problem: ExportProblem| Error::Exports {
        bundle: manifest.id.clone(),
        manifest: manifest.path.clone(),
        problem: Box::new(problem),
    };
    for decl in &manifest.exports {
        if !exports.iter().any(|e| e.name == decl.name) {
            return Err(problem(ExportProblem::Undefined {
                name: decl.name.clone(),
                line: decl.line,
            }));
        }
    }
    let mut defs = Vec::with_capacity(exports.len());
    for e in exports {
        let Some(decl) = manifest.export(&e.name) else {
            return Err(problem(ExportProblem::Undeclared { name: e.name }));
        };
        if decl.signature != e.signature {
            return Err(problem(ExportProblem::Signature {
                name: e.name,
                line: decl.line,
                declared: decl.signature.clone(),
                defined: e.signature,
            }));
        }
        let (code, invoke, keep) = match e.entry {
            ExportEntry::Native(code) => {
                // A call stub for register-sized scalar shapes, libffi for
                // the rest, prepared once per published version.
                // SAFETY: `code` is the address the bundle registered for
                // exactly this signature (checked against the manifest).
                let call = unsafe {
                    polyload_ffi::CallBuilder::from_ptr(code.0)
                        .signature(&e.signature)
                        .build()
                }
                .map_err(|source| Error::Call {
                    name: format!("{}.{}", manifest.id, e.name),
                    source,
                })?;
                (code, Invoke::Native(Box::new(call)), None)
            }
            ExportEntry::Dynamic(f) => dynamic(manifest, &e.name, &e.signature, f, None)?,
            ExportEntry::DynamicSlots { values, slots } => {
                dynamic(manifest, &e.name, &e.signature, values, Some(slots))?
            }
        };
        defs.push(NewDefinition {
            name: e.name,
            signature: e.signature,
            code,
            invoke,
            keep,
        });
    }
    Ok(defs)
}

/// A definition's C entry point, how the namespace calls it, and what
/// keeps its entry point alive.
type Prepared = (CodePtr, Invoke, Option<Box<dyn Send + Sync>>);

/// A VM definition's C entry point (for C callers and typed handles of
/// types that do not convert by value), and how the namespace calls it.
/// Guest errors land in the calling thread's error flag, as a C bundle's
/// `set_error` would.
fn dynamic(
    manifest: &Manifest,
    name: &str,
    signature: &Signature,
    f: Arc<DynamicFn>,
    slots: Option<Arc<SlotFn>>,
) -> Result<Prepared> {
    let inner = f.clone();
    let entry = polyload_ffi::Callback::new_with_error_hook(
        signature,
        move |args| inner(args).map_err(|e| e.to_string()),
        crate::host::set_error,
    )
    .map_err(|source| Error::Call {
        name: format!("{}.{}", manifest.id, name),
        source,
    })?;
    let code = CodePtr(entry.code_ptr());
    let keep: Box<dyn Send + Sync> = Box::new(entry);
    Ok((code, Invoke::Dynamic(f, slots), Some(keep)))
}
