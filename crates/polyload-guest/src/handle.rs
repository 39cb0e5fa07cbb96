//! Opaque handles: Rust values that stay in the bundle and cross the C ABI
//! as a `u64` id (signature type `handle`, or `handle<NAME>` for an
//! [`Id`] of a named [`Kind`]), as rimport's generated wrappers use them.
//!
//! One table per library (a `static` of this crate, linked into each
//! cdylib): ids are never reused within a library instance, and bits 32 to
//! 47 are a tag drawn when the table is made (ids stay below 2^48, exact
//! in a JavaScript number), so an id from another
//! bundle, or from an earlier version of this one after a reload, is
//! reported as not live instead of naming an unrelated value.
//!
//! Every access checks the value's type: [`Table::get`] of a handle that
//! holds a `regex::Regex` as a `semver::Version` is an error naming both
//! types, never a reinterpretation. A handle is freed by [`Table::remove`]
//! (a bundle's `drop` definition) or by [`clear`], which a generated bundle
//! calls from `polyload_bundle_fini` (run when the host retires the
//! version, i.e. once no thread can be inside it).
//!
//! Locking: [`read`] for calls that only borrow handles (they run in
//! parallel), [`write`](fn@write) for calls that create, consume or mutably borrow
//! one. Values must be `Send + Sync`, since calls come from any thread.
//!
//! ```
//! use polyload_guest::handle;
//! let id = handle::write().insert(String::from("hi"));
//! assert_eq!(handle::read().get::<String>(id).unwrap(), "hi");
//! let e = handle::read().get::<u32>(id).unwrap_err();
//! assert!(e.contains("holds a `String`, not a `u32`"), "{e}");
//! handle::write().remove(id).unwrap();
//! assert!(handle::read().get::<String>(id).unwrap_err().contains("not live"));
//! ```

use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::marker::PhantomData;
use std::sync::{LazyLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Ids are distinct integers made here, not input an attacker picks, so a
/// multiplicative (Fibonacci) hash spreads them well and costs one
/// multiply instead of SipHash's rounds.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// What a handle refers to, for its signature type: `handle<NAME>`.
///
/// Implemented by marker types a bundle declares (rimport's generated
/// crates declare one per wrapped type), or use [`handle_kind!`](crate::handle_kind);
/// [`Plain`] is the plain `handle`.
pub trait Kind {
    /// The signature type (`"handle<semver::Version>"`, or `"handle"`).
    const SIGNATURE: &'static str;
}

/// The kind of a plain `handle` (no name).
#[derive(Debug)]
pub enum Plain {}

impl Kind for Plain {
    const SIGNATURE: &'static str = "handle";
}

/// Declares a marker type for [`Id`]: `handle_kind!(pub Version = "semver::Version")`
/// makes `Id<Version>` cross as `handle<semver::Version>`.
///
/// ```
/// use polyload_guest::{handle::{Id, Kind}, handle_kind, GuestArg};
/// handle_kind!(pub Version = "semver::Version");
/// assert_eq!(<Id<Version> as GuestArg>::TYPE, "handle<semver::Version>");
/// assert_eq!(<Id as GuestArg>::TYPE, "handle");
/// ```
#[macro_export]
macro_rules! handle_kind {
    ($vis:vis $marker:ident = $name:literal) => {
        #[doc = concat!("Handles to a `", $name, "`.")]
        #[derive(Debug)]
        $vis enum $marker {}
        impl $crate::handle::Kind for $marker {
            const SIGNATURE: &'static str = concat!("handle<", $name, ">");
        }
    };
}

/// A handle as an `#[export]` parameter or result: signature type
/// `K::SIGNATURE` (`handle`, or `handle<NAME>`), a `uint64_t` at the C ABI
/// (an id of this library's table).
#[repr(transparent)]
pub struct Id<K: Kind = Plain>(pub u64, PhantomData<fn() -> K>);

impl<K: Kind> Id<K> {
    /// The handle with id `id`.
    pub const fn new(id: u64) -> Self {
        Id(id, PhantomData)
    }
}

impl<K: Kind> Clone for Id<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: Kind> Copy for Id<K> {}
impl<K: Kind> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<K: Kind> Eq for Id<K> {}
impl<K: Kind> std::hash::Hash for Id<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}
impl<K: Kind> std::fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Id({}: {})", self.0, K::SIGNATURE)
    }
}

impl<K: Kind> crate::GuestArg for Id<K> {
    type Abi = u64;
    const TYPE: &'static str = K::SIGNATURE;
    fn from_abi(abi: u64) -> Result<Self, String> {
        Ok(Id::new(abi))
    }
}

impl<K: Kind> crate::GuestRet for Id<K> {
    type Abi = u64;
    const TYPE: &'static str = K::SIGNATURE;
    fn into_abi(self) -> Result<u64, String> {
        Ok(self.0)
    }
}

struct Entry {
    type_name: &'static str,
    value: Box<dyn Any + Send + Sync>,
}

/// The handles of this library: id -> value.
pub struct Table {
    tag: u64,
    next: u64,
    entries: HashMap<u64, Entry, BuildHasherDefault<IdHasher>>,
}

static TABLE: LazyLock<RwLock<Table>> = LazyLock::new(|| {
    // A tag that differs between library instances: the table's address
    // (a fresh mapping per load) mixed with the time.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let addr = &TABLE as *const _ as u64;
    let tag = ((addr >> 12) ^ nanos ^ (nanos >> 16)) & 0x7fff | 1;
    RwLock::new(Table {
        tag: tag << 32,
        next: 1,
        entries: HashMap::default(),
    })
});

/// The table, shared: for calls that only borrow handles.
pub fn read() -> RwLockReadGuard<'static, Table> {
    TABLE.read().unwrap_or_else(|e| e.into_inner())
}

/// The table, exclusively: for calls that create, consume or mutate.
pub fn write() -> RwLockWriteGuard<'static, Table> {
    TABLE.write().unwrap_or_else(|e| e.into_inner())
}

/// Frees every handle (a library destructor calls this).
pub fn clear() {
    let entries = std::mem::take(&mut write().entries);
    drop(entries);
}

impl Table {
    /// Stores `value`; returns its new id (never 0).
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) -> u64 {
        let id = self.tag | (self.next & 0xffff_ffff);
        self.next += 1;
        self.entries.insert(
            id,
            Entry {
                type_name: std::any::type_name::<T>(),
                value: Box::new(value),
            },
        );
        id
    }

    fn entry(&self, id: u64) -> Result<&Entry, String> {
        self.entries.get(&id).ok_or_else(|| not_live(id))
    }

    /// The `T` that handle `id` holds.
    ///
    /// # Errors
    /// The handle is not live (freed, never made, or made by another
    /// library), or holds another type (both named).
    pub fn get<T: Any>(&self, id: u64) -> Result<&T, String> {
        let e = self.entry(id)?;
        e.value
            .downcast_ref::<T>()
            .ok_or_else(|| wrong_type::<T>(id, e.type_name))
    }

    /// The `T` that handle `id` holds, mutably.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn get_mut<T: Any>(&mut self, id: u64) -> Result<&mut T, String> {
        let e = self.entries.get_mut(&id).ok_or_else(|| not_live(id))?;
        let type_name = e.type_name;
        e.value
            .downcast_mut::<T>()
            .ok_or_else(|| wrong_type::<T>(id, type_name))
    }

    /// Removes handle `id` and returns its `T` (a call that takes the value
    /// by value consumes the handle).
    ///
    /// # Errors
    /// As [`get`](Self::get); the handle stays live on a type error.
    pub fn take<T: Any>(&mut self, id: u64) -> Result<T, String> {
        self.get::<T>(id)?;
        let e = self.entries.remove(&id).expect("checked above");
        Ok(*e.value.downcast::<T>().expect("checked above"))
    }

    /// Frees handle `id`, whatever it holds.
    ///
    /// # Errors
    /// The handle is not live.
    pub fn remove(&mut self, id: u64) -> Result<(), String> {
        self.entries
            .remove(&id)
            .map(drop)
            .ok_or_else(|| not_live(id))
    }

    /// How many handles are live.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no handle is live.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn not_live(id: u64) -> String {
    format!("handle {id} is not live (freed, or made by another bundle or an earlier version of this one)")
}

fn wrong_type<T>(id: u64, held: &str) -> String {
    format!(
        "handle {id} holds a `{}`, not a `{}`",
        readable(held),
        readable(std::any::type_name::<T>())
    )
}

/// A type's name as a Rust user writes it: `std::any::type_name` spells
/// std's types by their defining modules (`alloc::string::String`), which
/// this shortens to the prelude's or `std`'s names (`String`); other
/// crates' paths stay as they are.
fn readable(type_name: &str) -> String {
    const SHORT: [(&str, &str); 10] = [
        ("alloc::string::", ""),
        ("alloc::vec::", ""),
        ("alloc::boxed::", ""),
        ("core::option::", ""),
        ("core::result::", ""),
        ("alloc::borrow::", "std::borrow::"),
        ("alloc::sync::", "std::sync::"),
        ("alloc::rc::", "std::rc::"),
        ("std::collections::hash::map::", "std::collections::"),
        ("std::collections::hash::set::", "std::collections::"),
    ];
    SHORT
        .iter()
        .fold(type_name.to_string(), |name, (long, short)| {
            name.replace(long, short)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_tagged_and_checked() {
        let a = write().insert(1u32);
        let b = write().insert(2u32);
        assert_ne!(a, b);
        assert_eq!(a >> 32, b >> 32);
        assert_ne!(a >> 32, 0);
        assert!(a < 1 << 48);
        *write().get_mut::<u32>(a).unwrap() += 10;
        assert_eq!(*read().get::<u32>(a).unwrap(), 11);
        assert!(write().take::<String>(b).is_err());
        assert_eq!(write().take::<u32>(b).unwrap(), 2);
        assert!(read().get::<u32>(b).unwrap_err().contains("not live"));
        assert!(write().remove(b).is_err());
        write().remove(a).unwrap();
    }

    #[test]
    fn type_errors_name_types_as_users_write_them() {
        let a = write().insert(vec![Some(String::new())]);
        let e = read()
            .get::<std::collections::HashMap<u8, Box<u8>>>(a)
            .unwrap_err();
        assert_eq!(
            e,
            format!("handle {a} holds a `Vec<Option<String>>`, not a `std::collections::HashMap<u8, Box<u8>>`")
        );
        write().remove(a).unwrap();
    }
}
