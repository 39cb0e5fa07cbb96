//! The namespace: one registry of definitions, each reached through a slot.
//!
//! # Layout
//! Each bundle id has a [`BundleCell`]: an atomic pointer to the bundle's
//! current [`CodeTable`] (null while not loaded). A definition is a bundle
//! cell plus an index into that table; indexes are assigned by name the first
//! time a name is mentioned (defined, or looked up before its bundle loads)
//! and never change, so a slot stays valid for the namespace's life.
//!
//! A call is: load the cell's table (acquire), bounds-check the index, load
//! the code pointer, call. Publishing a new version swaps the whole table in
//! one store, so every definition of a bundle changes at once and a caller
//! never sees half old, half new. The old table (and the code it points to)
//! is retired through the [`Reclaimer`].

use crate::host;
use crate::loader::{DynamicFn, SlotFn};
use crate::reclaim::{CallGuard, Reclaimer};
use crate::{Error, Result};
use polyload_abi::{PolyloadCodeTable, PolyloadSlot};
use polyload_ffi::{Call, Signature, Value};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::ffi::c_void;
use std::fmt;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub(crate) use crate::loader::CodePtr;

/// What kind of thing a definition is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DefinitionKind {
    /// A function with a signature.
    Function,
}

/// How a definition is called dynamically.
pub(crate) enum Invoke {
    /// Native code: a call (stub or libffi) prepared at publish time,
    /// bound to the definition's address.
    Native(Box<Call>),
    /// A VM function (or other Rust closure), and its raw-slot entry if
    /// its loader gave one.
    Dynamic(Arc<DynamicFn>, Option<Arc<SlotFn>>),
}

/// One published definition inside a [`CodeTable`].
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) signature: Signature,
    pub(crate) invoke: Invoke,
    /// Keeps the C entry of a dynamic definition alive (its trampoline).
    pub(crate) _keep: Option<Box<dyn Send + Sync>>,
}

/// A published bundle version. `#[repr(C)]` with the C-visible
/// [`PolyloadCodeTable`] first, so a `*const CodeTable` is a valid
/// `*const PolyloadCodeTable` for C readers.
#[repr(C)]
pub(crate) struct CodeTable {
    header: PolyloadCodeTable,
    /// Whether any entry is [`Invoke::Dynamic`]: typed handles then look
    /// the entry up and call it with values instead of through its C entry
    /// point. Next to the header, so a native call reads no extra line.
    pub(crate) dynamic: bool,
    /// A placeholder left by unloading: no definitions.
    dead: bool,
    code: Box<[*const c_void]>,
    entries: Box<[Option<Entry>]>,
}

// SAFETY: the raw pointers are code addresses and a pointer into `code`,
// which the table owns; the table is immutable once published.
unsafe impl Send for CodeTable {}
// SAFETY: as above.
unsafe impl Sync for CodeTable {}

impl CodeTable {
    /// A boxed table, leaked to a raw pointer for a cell; its C header
    /// points at its own code array.
    fn new(
        generation: u64,
        code: Box<[*const c_void]>,
        entries: Box<[Option<Entry>]>,
        dynamic: bool,
        dead: bool,
    ) -> *mut CodeTable {
        let mut table = Box::new(CodeTable {
            header: PolyloadCodeTable {
                generation,
                len: code.len(),
                code: std::ptr::null(),
            },
            dynamic,
            dead,
            code,
            entries,
        });
        table.header.code = table.code.as_ptr();
        Box::into_raw(table)
    }

    pub(crate) fn generation(&self) -> u64 {
        self.header.generation
    }
    pub(crate) fn entry(&self, index: usize) -> Option<&Entry> {
        self.entries.get(index).and_then(Option::as_ref)
    }
}

/// The code pointer at `index` of the array `code` points to (a cell's
/// [`BundleCell::code`]), for a handle made while `index` was published:
/// null once the bundle is unloaded.
///
/// # Safety
/// As [`table_at_published`]; `index` was published in that cell.
#[inline(always)]
pub(crate) unsafe fn code_at_published(
    code: &AtomicPtr<*const c_void>,
    index: usize,
) -> *const c_void {
    // SAFETY: a published cell's code pointer is never null again and points
    // at an array with an entry for every index published so far, kept
    // alive by the caller's guard.
    unsafe { *code.load(Ordering::Acquire).add(index) }
}

/// The table `cell` points to, for a handle made while one of its indexes
/// was published.
///
/// No null or bounds check is needed on the result: once a bundle was
/// published its cell never holds null again (unloading publishes a *dead*
/// table whose entries are all null), and every table is built with one
/// entry per index assigned so far, so `len` only grows past any published
/// index.
///
/// # Safety
/// A table must have been published in `cell` (as for any typed handle),
/// and the caller must hold a [`CallGuard`] while it uses the result.
#[inline(always)]
pub(crate) unsafe fn table_at_published(cell: &AtomicPtr<PolyloadCodeTable>) -> &CodeTable {
    // SAFETY: see above; every pointer a cell holds is a `CodeTable`
    // (`#[repr(C)]`, header first), kept alive by the guard.
    unsafe { &*cell.load(Ordering::Acquire).cast::<CodeTable>() }
}

/// The per-bundle cell every slot of that bundle reads.
pub(crate) struct BundleCell {
    id: String,
    current: AtomicPtr<PolyloadCodeTable>,
    /// The code array of `current`'s table (`header.code`), for the typed
    /// fast path: one load fewer between a handle and the address it calls.
    /// Stored after `current` on every swap; a reader may briefly pair one
    /// version's array with the other's table, and each is alive while it
    /// holds a guard (both are retired only after both swaps).
    code: AtomicPtr<*const c_void>,
    names: Mutex<Names>,
    /// Last generation published (monotonic across unload and load).
    generation: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Names {
    index: HashMap<String, usize>,
    /// Next unused index; indexes are never reused.
    next: usize,
    c_slots: HashMap<usize, CSlot>,
}

/// A C-visible slot at a stable address.
struct CSlot(Box<PolyloadSlot>);
// SAFETY: the slot points at its cell's `AtomicPtr`, which lives as long as
// the cell (and the cell owns this slot); it is read atomically by C code.
unsafe impl Send for CSlot {}
// SAFETY: as above; the slot itself is immutable.
unsafe impl Sync for CSlot {}

impl fmt::Debug for BundleCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleCell").field("id", &self.id).finish()
    }
}

impl Names {
    /// The index of `name`, assigned on first mention.
    fn assign(&mut self, name: &str) -> usize {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = self.next;
        self.next += 1;
        self.index.insert(name.to_string(), i);
        i
    }
}

impl BundleCell {
    fn index_of(&self, name: &str) -> usize {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .assign(name)
    }

    /// The current table, valid while the caller holds a [`CallGuard`].
    #[inline(always)]
    pub(crate) fn table(&self) -> Option<&CodeTable> {
        let p = self.current.load(Ordering::Acquire).cast::<CodeTable>();
        // SAFETY: a non-null pointer is a published table; it is retired only
        // through the reclaimer, which waits for every thread inside a call
        // (the caller holds a guard), so it outlives this borrow.
        unsafe { p.as_ref() }.filter(|t| !t.dead)
    }

    /// The cell's atomic table pointer (for handles that cache it).
    pub(crate) fn current(&self) -> &AtomicPtr<PolyloadCodeTable> {
        &self.current
    }

    /// The cell's atomic code-array pointer (for typed handles).
    pub(crate) fn code(&self) -> &AtomicPtr<*const c_void> {
        &self.code
    }

    /// Publishes `table` (made by [`CodeTable::new`]) and returns the one it
    /// replaces (null at first), which the caller retires.
    fn swap(&self, table: *mut CodeTable) -> *mut PolyloadCodeTable {
        // SAFETY: `table` is a live table, owned by the cell from now on.
        let code = unsafe { (*table).header.code };
        let prev = self.current.swap(table.cast(), Ordering::AcqRel);
        self.code.store(code.cast_mut(), Ordering::Release);
        prev
    }
}

/// A published definition found by [`Namespace::resolve`].
pub(crate) struct Resolved {
    pub(crate) slot: Slot,
    pub(crate) signature: Signature,
    /// Whether it is called with values (a VM definition).
    pub(crate) dynamic: bool,
}

/// Where a definition lives: its bundle's cell and its index there.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub(crate) cell: Arc<BundleCell>,
    pub(crate) index: usize,
}

/// A definition as seen by callers listing the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefinitionInfo {
    /// `bundle.function`.
    pub name: String,
    /// What it is.
    pub kind: DefinitionKind,
    /// Its signature.
    pub signature: Signature,
    /// Generation of the bundle version that defines it (1 = first load).
    pub generation: u64,
}

/// A definition to publish.
pub(crate) struct NewDefinition {
    /// Unqualified name.
    pub name: String,
    /// Signature.
    pub signature: Signature,
    /// C entry point (for typed handles and C callers); null if none.
    pub code: CodePtr,
    /// How dynamic calls reach it.
    pub(crate) invoke: Invoke,
    pub(crate) keep: Option<Box<dyn Send + Sync>>,
}

/// Qualified name -> where it is published, for lock-free lookup by name.
///
/// Immutable once published; rebuilt on every publish and unpublish and
/// swapped in with one store, the old one retired through the reclaimer, so
/// a reader needs only a [`CallGuard`] (no lock, no reference count).
#[derive(Default)]
struct Directory {
    names: FxHashMap<Box<str>, (Arc<BundleCell>, usize)>,
}

/// The registry of all definitions of a runtime.
pub(crate) struct Namespace {
    cells: RwLock<HashMap<String, Arc<BundleCell>>>,
    /// The current [`Directory`] (never null).
    directory: AtomicPtr<Directory>,
    /// Serialises directory rebuilds, so the last one sees every table.
    directory_writer: Mutex<()>,
    reclaimer: Arc<Reclaimer>,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("bundles", &self.cells.read().map(|c| c.len()).unwrap_or(0))
            .finish()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // No reference to the namespace is left, so no reader either.
        // SAFETY: created by Box::into_raw in `new`/`rebuild_directory`,
        // owned by the namespace.
        drop(unsafe { Box::from_raw(*self.directory.get_mut()) });
    }
}

impl Drop for BundleCell {
    fn drop(&mut self) {
        let table = *self.current.get_mut();
        if !table.is_null() {
            // The last reference to the cell is gone: no handle reads it,
            // and C slots pointing at it belong to bundle versions that the
            // reclaimer freed before the namespace that held the cell.
            // SAFETY: created by Box::into_raw in `publish`/`unpublish`.
            drop(unsafe { Box::from_raw(table.cast::<CodeTable>()) });
        }
    }
}

/// Splits `bundle.function` into its two parts.
pub(crate) fn split_name(qualified: &str) -> Option<(&str, &str)> {
    let (b, f) = qualified.split_once('.')?;
    (!b.is_empty() && !f.is_empty() && !f.contains('.')).then_some((b, f))
}

fn not_found(name: &str) -> Error {
    Error::NotFound {
        name: name.to_string(),
    }
}

impl Namespace {
    pub(crate) fn new(reclaimer: Arc<Reclaimer>) -> Self {
        Self {
            cells: RwLock::new(HashMap::new()),
            directory: AtomicPtr::new(Box::into_raw(Box::default())),
            directory_writer: Mutex::new(()),
            reclaimer,
        }
    }

    fn existing_cell(&self, id: &str) -> Option<Arc<BundleCell>> {
        self.cells
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// The cell of bundle `id`, created (unloaded) on first mention.
    pub(crate) fn cell(&self, id: &str) -> Arc<BundleCell> {
        if let Some(c) = self.existing_cell(id) {
            return c;
        }
        self.cells
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_string())
            .or_insert_with(|| {
                Arc::new(BundleCell {
                    id: id.to_string(),
                    current: AtomicPtr::new(std::ptr::null_mut()),
                    code: AtomicPtr::new(std::ptr::null_mut()),
                    names: Mutex::new(Names::default()),
                    generation: std::sync::atomic::AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// The slot for `bundle.function`, whether or not it is defined yet.
    pub(crate) fn slot(&self, qualified: &str) -> Result<Slot> {
        let (b, f) = split_name(qualified).ok_or_else(|| not_found(qualified))?;
        let cell = self.cell(b);
        let index = cell.index_of(f);
        Ok(Slot { cell, index })
    }

    /// The slot of a published definition together with its signature, read
    /// in one step: the index and the table are read under the cell's name
    /// lock, which [`publish`](Self::publish) holds from moving an index to
    /// storing the table, so the signature is the one of the code at that
    /// index (a reload that changes it moves the name to a new index).
    ///
    /// # Errors
    /// [`Error::NotFound`] if nothing by that name is published.
    pub(crate) fn resolve(&self, qualified: &str) -> Result<Resolved> {
        let (b, f) = split_name(qualified).ok_or_else(|| not_found(qualified))?;
        let cell = self.existing_cell(b).ok_or_else(|| not_found(qualified))?;
        let (index, signature, dynamic) = {
            let names = cell.names.lock().unwrap_or_else(|e| e.into_inner());
            let index = *names.index.get(f).ok_or_else(|| not_found(qualified))?;
            let _g = CallGuard::enter();
            let e = cell
                .table()
                .and_then(|t| t.entry(index))
                .ok_or_else(|| not_found(qualified))?;
            let dynamic = matches!(e.invoke, Invoke::Dynamic(..));
            (index, e.signature.clone(), dynamic)
        };
        Ok(Resolved {
            slot: Slot { cell, index },
            signature,
            dynamic,
        })
    }

    /// A stable C slot for `bundle.function` (see `PolyloadHost::lookup`).
    pub(crate) fn c_slot(&self, qualified: &str) -> Option<*const PolyloadSlot> {
        let slot = self.slot(qualified).ok()?;
        let mut names = slot.cell.names.lock().unwrap_or_else(|e| e.into_inner());
        let cell_ptr: *const AtomicPtr<PolyloadCodeTable> = &slot.cell.current;
        let boxed = names.c_slots.entry(slot.index).or_insert_with(|| {
            CSlot(Box::new(PolyloadSlot {
                cell: cell_ptr,
                index: slot.index,
            }))
        });
        Some(&*boxed.0 as *const PolyloadSlot)
    }

    /// Publishes a new version of bundle `id` with `defs`, replacing the
    /// previous version in one atomic store, and retires the previous table
    /// together with `retire_with` (e.g. the old library).
    ///
    /// Returns the new generation.
    pub(crate) fn publish(
        &self,
        id: &str,
        defs: Vec<NewDefinition>,
        retire_with: Option<Box<dyn Send>>,
    ) -> u64 {
        let cell = self.cell(id);
        let (prev, generation) = {
            // Held until the new table is stored: `resolve` never pairs an
            // index with a table of another signature.
            let mut names = cell.names.lock().unwrap_or_else(|e| e.into_inner());
            // A definition whose signature changed moves to a fresh index:
            // typed handles and C slots made for the old signature go stale
            // instead of calling code of another type.
            for name in changed_names(&cell, &names, &defs) {
                let fresh = names.next;
                names.next += 1;
                names.index.insert(name, fresh);
            }
            let indexed: Vec<(usize, NewDefinition)> = defs
                .into_iter()
                .map(|d| (names.assign(&d.name), d))
                .collect();
            let len = names.next;
            let mut code = vec![std::ptr::null::<c_void>(); len].into_boxed_slice();
            let mut entries: Box<[Option<Entry>]> = (0..len).map(|_| None).collect();
            for (i, d) in indexed {
                code[i] = d.code.0;
                entries[i] = Some(Entry {
                    name: format!("{id}.{}", d.name),
                    signature: d.signature,
                    invoke: d.invoke,
                    _keep: d.keep,
                });
            }
            let generation = cell.generation.fetch_add(1, Ordering::AcqRel) + 1;
            let dynamic = entries
                .iter()
                .flatten()
                .any(|e| matches!(e.invoke, Invoke::Dynamic(..)));
            let table = CodeTable::new(generation, code, entries, dynamic, false);
            (cell.swap(table), generation)
        };
        self.rebuild_directory();
        self.retire(id, prev.cast(), retire_with);
        generation
    }

    /// Definitions of `defs` whose signature differs from the one bundle
    /// `id` currently publishes: `(name, old, new)`.
    pub(crate) fn signature_changes(
        &self,
        id: &str,
        defs: &[NewDefinition],
    ) -> Vec<(String, Signature, Signature)> {
        let cell = self.cell(id);
        let names = cell.names.lock().unwrap_or_else(|e| e.into_inner());
        signature_changes(&cell, &names, defs)
    }

    /// Unpublishes bundle `id`: its slots become stale. Returns whether it
    /// was published.
    pub(crate) fn unpublish(&self, id: &str, retire_with: Option<Box<dyn Send>>) -> bool {
        let cell = self.cell(id);
        let prev = {
            let names = cell.names.lock().unwrap_or_else(|e| e.into_inner());
            let len = names.next;
            let dead = CodeTable::new(
                cell.generation.load(Ordering::Acquire),
                vec![std::ptr::null::<c_void>(); len].into_boxed_slice(),
                (0..len).map(|_| None).collect(),
                false,
                true,
            );
            cell.swap(dead)
        };
        // SAFETY: non-null pointers in a cell are live tables; `prev` is
        // unpublished but not yet retired, so still owned here.
        let was = unsafe { prev.cast::<CodeTable>().as_ref() }.is_some_and(|t| !t.dead);
        self.rebuild_directory();
        self.retire(id, prev.cast(), retire_with);
        was
    }

    /// The bundles' cells, as they are now (the lock released on return).
    fn cell_list(&self) -> Vec<Arc<BundleCell>> {
        self.cells
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Publishes a fresh [`Directory`] of every live definition.
    fn rebuild_directory(&self) {
        let _one = self
            .directory_writer
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let cells = self.cell_list();
        let mut dir = Directory::default();
        {
            let _g = CallGuard::enter();
            for cell in &cells {
                let Some(table) = cell.table() else { continue };
                for (i, e) in table.entries.iter().enumerate() {
                    if let Some(e) = e {
                        dir.names.insert(e.name.as_str().into(), (cell.clone(), i));
                    }
                }
            }
        }
        let prev = self
            .directory
            .swap(Box::into_raw(Box::new(dir)), Ordering::AcqRel);
        struct Retired(*mut Directory);
        // SAFETY: the directory is unpublished and owned solely by this value.
        unsafe impl Send for Retired {}
        impl Drop for Retired {
            fn drop(&mut self) {
                // SAFETY: made by Box::into_raw, retired once.
                drop(unsafe { Box::from_raw(self.0) });
            }
        }
        self.reclaimer
            .retire("namespace directory", Box::new(Retired(prev)));
    }

    fn retire(&self, id: &str, table: *mut CodeTable, with: Option<Box<dyn Send>>) {
        struct Retired(*mut CodeTable, Option<Box<dyn Send>>);
        // SAFETY: the table is unpublished and owned solely by this value.
        unsafe impl Send for Retired {}
        impl Drop for Retired {
            fn drop(&mut self) {
                if !self.0.is_null() {
                    // SAFETY: created by Box::into_raw in `publish`, retired once.
                    drop(unsafe { Box::from_raw(self.0) });
                }
                // The code's owner (a library) goes after its table.
                drop(self.1.take());
            }
        }
        if table.is_null() && with.is_none() {
            return;
        }
        self.reclaimer.retire(
            format!("bundle `{id}` version"),
            Box::new(Retired(table, with)),
        );
    }

    /// Generation of bundle `id`'s current version, if it is published.
    pub(crate) fn generation(&self, id: &str) -> Option<u64> {
        let cell = self.existing_cell(id)?;
        let _g = CallGuard::enter();
        cell.table().map(CodeTable::generation)
    }

    /// Information about a defined name.
    pub(crate) fn definition(&self, qualified: &str) -> Option<DefinitionInfo> {
        let _g = CallGuard::enter();
        let (cell, index) = self.lookup(qualified)?;
        let table = cell.table()?;
        let e = table.entry(*index)?;
        Some(DefinitionInfo {
            name: e.name.clone(),
            kind: DefinitionKind::Function,
            signature: e.signature.clone(),
            generation: table.generation(),
        })
    }

    /// The directory's entry for `qualified`: valid while the caller holds
    /// a [`CallGuard`].
    #[inline]
    fn lookup(&self, qualified: &str) -> Option<&(Arc<BundleCell>, usize)> {
        // SAFETY: the pointer is never null; a directory is retired through
        // the reclaimer only after it was replaced, and the caller's guard
        // keeps a directory it loaded alive.
        let dir = unsafe { &*self.directory.load(Ordering::Acquire) };
        dir.names.get(qualified)
    }

    /// Every published definition, sorted by name.
    pub(crate) fn definitions(&self) -> Vec<DefinitionInfo> {
        let cells = self.cell_list();
        let _g = CallGuard::enter();
        let mut out: Vec<_> = cells
            .iter()
            .filter_map(|c| c.table())
            .flat_map(|t| {
                t.entries.iter().flatten().map(|e| DefinitionInfo {
                    name: e.name.clone(),
                    kind: DefinitionKind::Function,
                    signature: e.signature.clone(),
                    generation: t.generation(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Calls `bundle.function` with `args`, converted by its signature.
    ///
    /// The name is found without a lock (in the namespace's directory, a
    /// snapshot replaced on every publish), so calls from many threads do
    /// not contend.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown name; [`Error::Stale`] when its
    /// bundle is not loaded; [`Error::Call`] for arguments that do not fit
    /// the signature; [`Error::Guest`] when the guest reports an error.
    pub(crate) fn call(&self, qualified: &str, args: &[Value]) -> Result<Value> {
        let guard = CallGuard::enter();
        match self.lookup(qualified) {
            Some((cell, index)) => call_at(guard, cell, *index, qualified, args),
            None => {
                drop(guard);
                self.call_slow(qualified, args)
            }
        }
    }

    /// A name the directory does not hold: a bundle that is not loaded
    /// (stale) or a name that was never defined.
    #[cold]
    fn call_slow(&self, qualified: &str, args: &[Value]) -> Result<Value> {
        let (b, f) = split_name(qualified).ok_or_else(|| not_found(qualified))?;
        let cell = self.existing_cell(b).ok_or_else(|| not_found(qualified))?;
        let index = cell
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .index
            .get(f)
            .copied()
            .ok_or_else(|| not_found(qualified))?;
        call_slot(&Slot { cell, index }, qualified, args)
    }
}

/// Names of `defs` whose signature differs from the live one.
fn changed_names(cell: &BundleCell, names: &Names, defs: &[NewDefinition]) -> Vec<String> {
    signature_changes(cell, names, defs)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect()
}

fn signature_changes(
    cell: &BundleCell,
    names: &Names,
    defs: &[NewDefinition],
) -> Vec<(String, Signature, Signature)> {
    let _g = CallGuard::enter();
    let Some(table) = cell.table() else {
        return Vec::new();
    };
    defs.iter()
        .filter_map(|d| {
            let e = table.entry(*names.index.get(&d.name)?)?;
            (e.signature != d.signature)
                .then(|| (d.name.clone(), e.signature.clone(), d.signature.clone()))
        })
        .collect()
}

/// Dynamic call through a slot.
pub(crate) fn call_slot(slot: &Slot, name: &str, args: &[Value]) -> Result<Value> {
    call_at(CallGuard::enter(), &slot.cell, slot.index, name, args)
}

/// Dynamic call of definition `index` of `cell`, inside `guard`.
///
/// As the typed handle does, the guest-error flag is not cleared before the
/// call: it is clear whenever no call is returning (every check takes it).
#[inline(always)]
fn call_at(
    guard: CallGuard,
    cell: &BundleCell,
    index: usize,
    name: &str,
    args: &[Value],
) -> Result<Value> {
    let table = cell.table();
    let Some(entry) = table.and_then(|t| t.entry(index)) else {
        // Judged by the table this call saw: reading the cell again could
        // find a version published since, and call a stale call "not found".
        let loaded = table.is_some();
        drop(guard);
        return Err(unavailable(loaded, name));
    };
    match &entry.invoke {
        Invoke::Native(call) => {
            // SAFETY: the call is bound to the address the bundle registered
            // with exactly this signature; the guard keeps the code mapped
            // for the duration of the call.
            let r = unsafe { call.call(args) };
            if guard.exit_with_error_flag() {
                return Err(guest_error(entry));
            }
            r.map_err(|source| call_error(entry, source))
        }
        Invoke::Dynamic(f, _) => call_dynamic(entry, &**f, args),
    }
}

/// Why a slot has nothing to call: its bundle is not loaded (stale), or
/// its live version does not define the name.
#[cold]
#[inline(never)]
fn unavailable(loaded: bool, name: &str) -> Error {
    if !loaded {
        Error::Stale {
            name: name.to_string(),
        }
    } else {
        not_found(name)
    }
}

#[cold]
#[inline(never)]
fn guest_error(entry: &Entry) -> Error {
    let e = host::take_guest_error();
    Error::Guest {
        name: entry.name.clone(),
        message: e.message,
        traceback: e.traceback,
    }
}

#[cold]
#[inline(never)]
fn call_error(entry: &Entry, source: polyload_ffi::FfiError) -> Error {
    Error::Call {
        name: entry.name.clone(),
        source,
    }
}

/// A VM (or other Rust) definition: arguments are checked here, since no
/// call stub does it.
#[inline(never)]
fn call_dynamic(entry: &Entry, f: &DynamicFn, args: &[Value]) -> Result<Value> {
    if args.len() != entry.signature.params.len() {
        return Err(call_error(
            entry,
            polyload_ffi::FfiError::ArgCount {
                expected: entry.signature.params.len(),
                got: args.len(),
            },
        ));
    }
    for (i, (ty, v)) in entry.signature.params.iter().zip(args).enumerate() {
        v.check(ty).map_err(|source| {
            call_error(
                entry,
                polyload_ffi::FfiError::BadArgument { index: i, source },
            )
        })?;
    }
    f(args).map_err(|e| Error::Guest {
        name: entry.name.clone(),
        message: e.message,
        traceback: e.traceback,
    })
}
