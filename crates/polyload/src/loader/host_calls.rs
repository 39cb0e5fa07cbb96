//! Calls from guest code into the namespace (`polyload.call` and
//! `polyload.get` inside a VM): resolve, check the arity, convert the
//! arguments by the callee's signature ([`from_guest`]), call through the
//! slot. Every loader's `polyload` module is a thin layer over this, so the
//! rules and the error wording are the same in every language.

use super::values::{from_guest, GuestValue};
use crate::function::DynamicFunction;
use crate::namespace::Namespace;
use crate::Error;
use polyload_ffi::{Signature, Value};
use std::sync::{Arc, Mutex, Weak};

/// Why a call from guest code did not return a value. The `Display` text
/// is what the guest sees (its exception's message), one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostCallError {
    /// The runtime that loaded the calling bundle was dropped.
    #[error("polyload.call: the runtime is gone")]
    RuntimeGone,
    /// Nothing by that name is defined.
    #[error("polyload.call: no definition named `{name}`")]
    NotFound {
        /// The qualified name asked for.
        name: String,
    },
    /// The number of arguments differs from the callee's signature.
    #[error("polyload.call: `{name}` takes {expected} argument(s), got {got}")]
    Arity {
        /// The callee.
        name: String,
        /// Its parameter count.
        expected: usize,
        /// Arguments given.
        got: usize,
    },
    /// An argument does not convert to its parameter's type.
    #[error("polyload.call: `{name}` argument {position}: {message}")]
    Argument {
        /// The callee.
        name: String,
        /// 1-based position.
        position: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The callee failed (its error, as the host would report it).
    #[error("{0}")]
    Call(#[source] Error),
}

impl HostCallError {
    /// Whether the caller passed the wrong arguments (engines raise their
    /// type error for these: Python's `TypeError`, JavaScript's
    /// `TypeError`), rather than the call failing.
    pub fn is_argument_error(&self) -> bool {
        matches!(
            self,
            HostCallError::Arity { .. } | HostCallError::Argument { .. }
        )
    }
}

/// What a guest's `polyload` module calls through. Holds the namespace
/// weakly: the namespace owns the guest's functions, not the reverse.
#[derive(Clone, Debug)]
pub struct HostCalls {
    namespace: Weak<Namespace>,
}

impl HostCalls {
    pub(crate) fn new(namespace: &Arc<Namespace>) -> Self {
        Self {
            namespace: Arc::downgrade(namespace),
        }
    }

    /// The namespace, weakly (the native loader's C slots).
    pub(crate) fn weak_namespace(&self) -> Weak<Namespace> {
        self.namespace.clone()
    }

    fn namespace(&self) -> Result<Arc<Namespace>, HostCallError> {
        self.namespace.upgrade().ok_or(HostCallError::RuntimeGone)
    }

    /// Calls `name` with guest arguments, converted by its signature
    /// (`polyload.call(name, ...)`). The name is looked up without a lock.
    ///
    /// # Errors
    /// See [`HostCallError`].
    pub fn call<V: GuestValue>(&self, name: &str, args: &[V]) -> Result<Value, HostCallError> {
        let values = self.convert(name, args)?;
        self.invoke(name, &values)
    }

    /// The first half of [`call`](Self::call): checks the arity and
    /// converts the arguments by `name`'s signature. Engines that must let
    /// go of their own lock for the call itself (Python's GIL) convert
    /// under it, then [`invoke`](Self::invoke) without it.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub fn convert<V: GuestValue>(
        &self,
        name: &str,
        args: &[V],
    ) -> Result<Vec<Value>, HostCallError> {
        let info = self
            .namespace()?
            .definition(name)
            .ok_or_else(|| HostCallError::NotFound {
                name: name.to_string(),
            })?;
        convert_args(name, &info.signature, args)
    }

    /// The second half of [`call`](Self::call): calls `name` with values.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub fn invoke(&self, name: &str, values: &[Value]) -> Result<Value, HostCallError> {
        self.namespace()?
            .call(name, values)
            .map_err(HostCallError::Call)
    }

    /// A proxy for `name` (`polyload.get(name)`): it resolves the
    /// definition on its first call and then calls through its slot,
    /// following reloads; it resolves again only if the slot went stale
    /// (the bundle was unloaded, or reloaded with a new signature).
    pub fn get(&self, name: &str) -> HostFunction {
        HostFunction {
            calls: self.clone(),
            name: name.into(),
            resolved: Mutex::new(None),
        }
    }
}

/// Checks the arity and converts `args` by `signature`.
fn convert_args<V: GuestValue>(
    name: &str,
    signature: &Signature,
    args: &[V],
) -> Result<Vec<Value>, HostCallError> {
    let params = &signature.params;
    if args.len() != params.len() {
        return Err(HostCallError::Arity {
            name: name.to_string(),
            expected: params.len(),
            got: args.len(),
        });
    }
    args.iter()
        .zip(params)
        .enumerate()
        .map(|(i, (a, ty))| {
            from_guest(a, ty).map_err(|message| HostCallError::Argument {
                name: name.to_string(),
                position: i + 1,
                message,
            })
        })
        .collect()
}

/// A definition as a guest holds it (`polyload.get`): see
/// [`HostCalls::get`].
#[derive(Debug)]
pub struct HostFunction {
    calls: HostCalls,
    name: Box<str>,
    resolved: Mutex<Option<Arc<(DynamicFunction, Signature)>>>,
}

impl HostFunction {
    /// The qualified name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn resolved(&self, again: bool) -> Result<Arc<(DynamicFunction, Signature)>, HostCallError> {
        let mut slot = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(r), false) = (slot.as_ref(), again) {
            return Ok(r.clone());
        }
        let r =
            self.calls
                .namespace()?
                .resolve(&self.name)
                .map_err(|_| HostCallError::NotFound {
                    name: self.name.to_string(),
                })?;
        let r = Arc::new((DynamicFunction::new(r.slot, &self.name), r.signature));
        *slot = Some(r.clone());
        Ok(r)
    }

    /// The definition's signature, resolved on first use: for engines
    /// whose values carry no types of their own (WebAssembly), which lower
    /// the guest's arguments by it before [`invoke`](Self::invoke). After
    /// a reload that changed the signature, the first `invoke` with values
    /// of the old one fails (naming the argument) and resolves again.
    ///
    /// # Errors
    /// [`HostCallError::RuntimeGone`], [`HostCallError::NotFound`].
    pub fn signature(&self) -> Result<Signature, HostCallError> {
        Ok(self.resolved(false)?.1.clone())
    }

    /// Converts `args` by the definition's signature (see
    /// [`HostCalls::convert`]).
    ///
    /// # Errors
    /// See [`HostCallError`].
    pub fn convert<V: GuestValue>(&self, args: &[V]) -> Result<Vec<Value>, HostCallError> {
        let r = self.resolved(false)?;
        convert_args(&self.name, &r.1, args)
    }

    /// Calls with converted values (see [`HostCalls::invoke`]).
    ///
    /// # Errors
    /// See [`HostCallError`].
    pub fn invoke(&self, values: &[Value]) -> Result<Value, HostCallError> {
        match self.resolved(false)?.0.call(values) {
            Err(Error::Stale { .. }) => self
                .resolved(true)?
                .0
                .call(values)
                .map_err(HostCallError::Call),
            r => r.map_err(HostCallError::Call),
        }
    }

    /// Converts and calls.
    ///
    /// # Errors
    /// See [`HostCallError`].
    pub fn call<V: GuestValue>(&self, args: &[V]) -> Result<Value, HostCallError> {
        let values = self.convert(args)?;
        self.invoke(&values)
    }
}
