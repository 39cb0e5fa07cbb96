//! Unloading, alone or with every bundle that depends on it.

use super::{Record, RetiredInstance, Runtime};
use crate::{Error, Result};

impl Runtime {
    /// Unloads a bundle: its definitions become stale at once (handles
    /// answer [`Error::Stale`]), and its code is released when no thread
    /// can be running it.
    ///
    /// # Errors
    /// [`Error::NotLoaded`] (also while its first load is still running);
    /// [`Error::InUse`] if loaded bundles depend on it (see
    /// [`Runtime::unload_cascade`]).
    pub fn unload(&self, id: &str) -> Result<()> {
        let _one_at_a_time = self.reload_lock();
        let dependents = self.dependents(id)?;
        if !dependents.is_empty() {
            return Err(Error::InUse {
                bundle: id.to_string(),
                dependents,
            });
        }
        self.unload_locked(id)
    }

    /// Unloads a bundle and, first, every bundle that depends on it,
    /// transitively. Returns the ids unloaded, in order.
    ///
    /// # Errors
    /// [`Error::NotLoaded`]; [`Error::InUse`] if a dependent is still being
    /// loaded by another thread.
    pub fn unload_cascade(&self, id: &str) -> Result<Vec<String>> {
        let _one_at_a_time = self.reload_lock();
        let mut order = Vec::new();
        self.cascade_order(id, &mut order)?;
        for b in &order {
            self.unload_locked(b)?;
        }
        Ok(order)
    }

    /// `id` after its dependents, depth first.
    fn cascade_order(&self, id: &str, order: &mut Vec<String>) -> Result<()> {
        for d in self.dependents(id)? {
            if !order.contains(&d) {
                self.cascade_order(&d, order)?;
            }
        }
        order.push(id.to_string());
        Ok(())
    }

    /// The bundles (live or being loaded) that depend on live bundle `id`.
    fn dependents(&self, id: &str) -> Result<Vec<String>> {
        let bundles = self.lock();
        if bundles.get(id).and_then(Record::live).is_none() {
            return Err(Error::NotLoaded {
                bundle: id.to_string(),
            });
        }
        Ok(bundles
            .values()
            .map(Record::manifest)
            .filter(|m| m.dependencies.iter().any(|d| d.id == id))
            .map(|m| m.id.clone())
            .collect())
    }

    /// Unloads live bundle `id`; the caller holds the reload lock.
    fn unload_locked(&self, id: &str) -> Result<()> {
        let mut bundles = self.lock();
        if bundles.get(id).and_then(Record::live).is_none() {
            return Err(Error::NotLoaded {
                bundle: id.to_string(),
            });
        }
        let Some(Record::Live(mut l)) = bundles.remove(id) else {
            unreachable!("checked above")
        };
        let instance = l.instance.take();
        self.inner.namespace.unpublish(
            id,
            Some(Box::new(RetiredInstance(l.loader.clone(), instance))),
        );
        drop(bundles);
        tracing::info!(bundle = %id, "unloaded");
        self.inner.subscribers.emit(crate::reload::Event::Unloaded {
            bundle: id.to_string(),
        });
        Ok(())
    }
}
