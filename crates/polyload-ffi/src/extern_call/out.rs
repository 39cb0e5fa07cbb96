//! What the out-of-line part of [`Call::call`](super::Call::call) returns: a result in two
//! registers, from which the inlined caller builds the [`Value`].
//!
//! A `Result<Value, FfiError>` is returned through memory. Written by the
//! callee with stores of its fields' widths (a tag byte, then 8-byte
//! words), it is then often copied by the caller with 16-byte loads (a
//! move, `black_box`, a push into a `Vec`), and a load that spans two
//! stores cannot be forwarded from them: it waits until they reach the
//! cache. On the struct benchmark that wait was a quarter of the call.
//! An [`Out`] travels in `rax:rdx` instead, and [`Out::finish`], inlined
//! into the caller, writes the `Value` where the caller keeps it.

use crate::kind::Kind;
use crate::{FfiError, Value};
use std::mem::MaybeUninit;

/// Where a result that does not fit an [`Out`] (an error, a string, a
/// nested struct) is written: the caller's stack.
pub(crate) type Slot = MaybeUninit<Result<Value, FfiError>>;

/// A call's result in two words (see the module docs). `tag` says what
/// `word` holds:
/// * below 13: a scalar of the kind with that `Kind::index`, in the
///   low bytes of `word` (as a return register holds it);
/// * [`STRUCT`](Self::STRUCT) + `n`: a struct of `n` fields, `word` the
///   address of their `Value`s (see [`fields`](Self::fields));
/// * [`VOID`](Self::VOID): `Value::Void`;
/// * [`SLOT`](Self::SLOT): the result was written to the [`Slot`];
/// * [`REFUSED`](Self::REFUSED): a compiled marshaller (`crate::jit`)
///   refused the arguments and called nothing; the caller must replace
///   this `Out` with the error before [`finish`](Self::finish).
///
/// `#[repr(C)]`: marshallers return it from generated code, as two INTEGER
/// eightbytes in `rax:rdx` (System V AMD64 ABI §3.2.3), which is also how
/// Rust returns it.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct Out {
    word: u64,
    tag: usize,
}

impl Out {
    /// Above every kind index; `STRUCT + n` stays below `VOID` for any
    /// field count `n` a struct can have.
    pub(crate) const STRUCT: usize = usize::MAX / 4;
    pub(crate) const REFUSED: usize = usize::MAX - 2;
    pub(crate) const VOID: usize = usize::MAX - 1;
    const SLOT: usize = usize::MAX;

    /// Whether a marshaller refused the arguments (see [`REFUSED`](Self::REFUSED)).
    #[inline(always)]
    pub(crate) fn is_refused(self) -> bool {
        self.tag == Self::REFUSED
    }

    /// Writes `r` to `slot` and says so.
    #[inline(always)]
    pub(crate) fn in_slot(slot: &mut Slot, r: Result<Value, FfiError>) -> Out {
        slot.write(r);
        Out {
            word: 0,
            tag: Self::SLOT,
        }
    }

    /// `Value::Void` (or, from the reuse path, "the result is in place").
    #[inline(always)]
    pub(crate) fn void() -> Out {
        Out {
            word: 0,
            tag: Self::VOID,
        }
    }

    /// A scalar of kind `k` in the low bytes of `w`.
    #[inline(always)]
    pub(crate) fn scalar(k: Kind, w: u64) -> Out {
        Out {
            word: w,
            tag: k.index(),
        }
    }

    /// A struct's fields, all `n` initialised, in an allocation of the
    /// global allocator with the layout of `[Value; n]` (as a
    /// `Box<[Value]>` of length `n` has; its ownership passes to the
    /// `Out`).
    #[inline(always)]
    pub(crate) fn fields(ptr: *mut Value, n: usize) -> Out {
        Out {
            word: ptr as u64,
            tag: Self::STRUCT + n,
        }
    }

    /// The result as a `Value`.
    ///
    /// # Safety
    /// `self` was made by this module's constructors as they document, and
    /// `slot` was passed to [`in_slot`](Self::in_slot) when that made it.
    #[inline(always)]
    pub(crate) unsafe fn finish(self, slot: &mut Slot) -> Result<Value, FfiError> {
        match self.tag {
            Self::SLOT => {
                // SAFETY: `in_slot` wrote it (the contract).
                unsafe { slot.assume_init_read() }
            }
            Self::VOID => Ok(Value::Void),
            Self::REFUSED => unreachable!("a refused call's Out reached finish (a polyload bug)"),
            t if t >= Self::STRUCT => {
                let n = t - Self::STRUCT;
                // SAFETY: `fields`' contract: an allocation of the global
                // allocator with the layout of `n` values, all initialised,
                // owned by no one else; that is a `Vec` of length and
                // capacity `n`.
                Ok(Value::Struct(unsafe {
                    Vec::from_raw_parts(self.word as *mut Value, n, n)
                }))
            }
            k => Ok(Kind::from_index(k).value_in_word(self.word)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of `Out` comes back as the `Value` it stands for (and,
    /// for a struct, owns its allocation: a leak or double free shows
    /// under Miri or a sanitizer).
    #[test]
    fn every_out_finishes_as_its_value() {
        let mut slot = Slot::uninit();
        let fresh = Box::into_raw(Box::<[Value]>::new_uninit_slice(2));
        // SAFETY: `fresh` is a live allocation of two slots.
        let slots = unsafe { &mut *fresh };
        slots[0].write(Value::I32(-7));
        slots[1].write(Value::Str("x".into()));
        let cases = [
            (
                Out::fields(fresh.cast(), 2),
                Value::Struct(vec![Value::I32(-7), Value::Str("x".into())]),
            ),
            (Out::scalar(Kind::I8, 0x1ff), Value::I8(-1)),
            (
                Out::scalar(Kind::F32, u64::from(1.5f32.to_bits())),
                Value::F32(1.5),
            ),
            (Out::scalar(Kind::Ptr, 0xdead), Value::Ptr(0xdead)),
            (Out::void(), Value::Void),
        ];
        for (out, want) in cases {
            // SAFETY: made by the constructors as documented; no slot use.
            assert_eq!(unsafe { out.finish(&mut slot) }.unwrap(), want);
        }
        let out = Out::in_slot(
            &mut slot,
            Err(FfiError::ArgCount {
                expected: 1,
                got: 2,
            }),
        );
        // SAFETY: `in_slot` wrote the slot.
        let got = unsafe { out.finish(&mut slot) };
        assert!(
            matches!(
                got,
                Err(FfiError::ArgCount {
                    expected: 1,
                    got: 2
                })
            ),
            "{got:?}"
        );
    }
}
