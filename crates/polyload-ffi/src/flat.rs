//! Flat structs: structs of scalar fields (no nested struct, array or
//! `cstr`) marshalled by the call stubs field by field, without walking
//! the type.
//!
//! A field is placed by its eightbyte (psABI §3.2.3 splits a struct into
//! eightbytes) and its bit offset in it: an argument's eightbytes are words
//! of a [`Regs`] image (registers or stack words), a returned struct's are
//! the returned register pair or the words of the caller's buffer.
//!
//! Structs whose fields all have one kind (`{int, int}` as `div_t`,
//! `{double, double}` as a complex number, `{float, float, float}` as a
//! vector: the most common structs passed by value) take a loop with the
//! kind's `match` hoisted out of it; others dispatch on each field's kind.

use crate::kind::{per_kind, unrolled, Bits, Kind};
use crate::stub::Regs;
use crate::{FfiType, Value};
use std::alloc::Layout;
use std::mem::{size_of, MaybeUninit};

/// A struct of scalar fields only, each placed at a word and a bit shift
/// within it (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct FlatStruct {
    fields: Box<[Field]>,
    /// The one kind of every field, when they share it, and the word of
    /// the struct's first eightbyte (the others follow it: eightbytes of
    /// one class take consecutive registers or stack words).
    uniform: Option<(Kind, u8)>,
    /// The layout of the struct's fields as a `[Value]` (never zero-sized:
    /// a flat struct has a field).
    values: Layout,
}

/// One field of a [`FlatStruct`].
#[derive(Clone, Copy, Debug)]
struct Field {
    kind: Kind,
    /// The word holding the field's eightbyte.
    word: u8,
    /// The field's offset in that eightbyte, in bits.
    shift: u8,
    /// The field's offset in the struct, in bytes.
    offset: u16,
}

impl FlatStruct {
    /// The flat form of a plain struct type whose eightbyte `n` lives in
    /// word `words[n]`; `None` when it nests or holds a `cstr`.
    pub(crate) fn of(ty: &FfiType, words: &[u8]) -> Option<FlatStruct> {
        let FfiType::Struct(fields) = ty else {
            return None;
        };
        let fields = fields
            .iter()
            .zip(crate::marshal::FieldOffsets::new(fields))
            .map(|(f, off)| {
                Some(Field {
                    kind: Kind::of(f).filter(|k| *k != Kind::CStr)?,
                    word: *words.get(off / 8)?,
                    shift: ((off % 8) * 8) as u8,
                    offset: u16::try_from(off).ok()?,
                })
            })
            .collect::<Option<Box<[_]>>>()?;
        let first = fields.first()?;
        let consecutive = words
            .iter()
            .enumerate()
            .all(|(n, w)| usize::from(*w) == usize::from(words[0]) + n);
        let uniform = (consecutive && fields.iter().all(|f| f.kind == first.kind))
            .then_some((first.kind, words[0]));
        let values = Layout::array::<Value>(fields.len()).ok()?;
        Some(FlatStruct {
            fields,
            uniform,
            values,
        })
    }

    /// Fields.
    pub(crate) fn len(&self) -> usize {
        self.fields.len()
    }

    /// A new allocation for the fields' [`Value`]s, uninitialised, from the
    /// global allocator with the layout of `[Value; len]` (so it can become
    /// a `Vec` of that capacity or a `Box<[Value]>`): the layout is
    /// computed once, when the call is built.
    #[inline(always)]
    pub(crate) fn alloc_values(&self) -> *mut MaybeUninit<Value> {
        // SAFETY: the layout is not zero-sized (see `values`).
        let p = unsafe { std::alloc::alloc(self.values) };
        if p.is_null() {
            std::alloc::handle_alloc_error(self.values);
        }
        p.cast()
    }

    /// Writes a [`Value::Struct`] of matching fields into the image;
    /// `false` when the value does not match. The fields of one eightbyte
    /// are combined in a register and the word is stored once (padding
    /// bits zero): ORing each field into the word in memory would chain a
    /// load and a store per field, each waiting on the last through store
    /// forwarding, in front of the call.
    #[inline(always)]
    pub(crate) fn write_words(&self, regs: &mut Regs, v: &Value) -> bool {
        let Value::Struct(vals) = v else {
            return false;
        };
        if vals.len() != self.fields.len() {
            return false;
        }
        if let Some((kind, base)) = self.uniform {
            let base = usize::from(base);
            return per_kind!(kind, |V, T| {
                let (mut word, mut w) = (base, 0);
                for (i, v) in vals.iter().enumerate() {
                    let V!(x) = v else {
                        return false;
                    };
                    let shift = (i * size_of::<T>() % 8) * 8;
                    if shift == 0 && i > 0 {
                        regs.set(word, w);
                        (word, w) = (word + 1, 0);
                    }
                    w |= x.bits() << shift;
                }
                regs.set(word, w);
                true
            });
        }
        // Fields are in offset order, so each word's fields are adjacent.
        let mut word = self.fields[0].word;
        let mut w = 0;
        unrolled!(vals.len(), |i| {
            let f = &self.fields[i];
            let Some(bits) = f.kind.bits_from_value(&vals[i]) else {
                return false;
            };
            if f.word != word {
                regs.set(usize::from(word), w);
                (word, w) = (f.word, 0);
            }
            w |= (bits & f.kind.mask()) << f.shift;
        });
        regs.set(usize::from(word), w);
        true
    }

    /// Reads the struct from its eightbytes as returned in registers
    /// (little-endian target; built with words `[0, 1]`). Inlined, with
    /// each field's [`Value`] written in place: a `Value` or `Vec`
    /// assembled on the stack from narrow stores and then copied with wide
    /// loads costs a store-forwarding stall each time (seen with `perf
    /// annotate` on the `struct_pair` benchmark).
    ///
    /// The fields are written to the first [`len`](Self::len) slots of
    /// `slots` (panics when there are fewer).
    #[inline(always)]
    pub(crate) fn read_words(&self, words: &[u64; 2], slots: &mut [MaybeUninit<Value>]) {
        let slots = &mut slots[..self.fields.len()];
        match self.uniform {
            Some((kind, _)) => per_kind!(kind, |V, T| {
                for (i, slot) in slots.iter_mut().enumerate() {
                    let off = i * size_of::<T>();
                    let w = words[(off / 8) & 1] >> ((off % 8) * 8);
                    slot.write(V!(@new T::from_word(w)));
                }
            }),
            None => unrolled!(slots.len(), |i| {
                let f = &self.fields[i];
                let w = words[usize::from(f.word & 1)] >> f.shift;
                slots[i].write(f.kind.value_in_word(w));
            }),
        }
    }

    /// Reads the struct from C memory (a returned struct's buffer), each
    /// field with one read of its own width at its offset.
    /// Fills `slots` as [`read_words`](Self::read_words) does.
    ///
    /// # Safety
    /// `src` must hold an initialised value of this struct type in C
    /// layout, aligned for it.
    #[inline(always)]
    pub(crate) unsafe fn read_memory(&self, src: *const u8, slots: &mut [MaybeUninit<Value>]) {
        let slots = &mut slots[..self.fields.len()];
        match self.uniform {
            None => unrolled!(slots.len(), |i| {
                let f = &self.fields[i];
                // SAFETY: the field lies inside the struct at `src`,
                // naturally aligned (C layout), initialised (the caller's
                // contract); the read has its width.
                slots[i].write(unsafe { f.kind.read_value(src.add(usize::from(f.offset))) });
            }),
            Some((kind, _)) => per_kind!(kind, |V, T| {
                for (i, slot) in slots.iter_mut().enumerate() {
                    // SAFETY: fields of one kind sit at consecutive
                    // elements (C layout leaves no padding between them),
                    // aligned and initialised (the caller's contract).
                    #[allow(
                        clippy::undocumented_unsafe_blocks,
                        reason = "the SAFETY comment above sits inside a macro invocation, where the lint cannot see it"
                    )]
                    let x = unsafe { T::read(src.cast::<T>().add(i).cast()) };
                    slot.write(V!(@new x));
                }
            }),
        }
    }
}
