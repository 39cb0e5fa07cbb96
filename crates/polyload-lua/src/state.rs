//! A bundle's Lua state and its exports, called through the Lua C API.
//!
//! mlua is built without its `send` feature: it takes no lock of its own,
//! and a state is guarded by the state's [`VmLock`] instead, held around
//! every use of it. The common call — scalar arguments and result, no Lua
//! code of this state running on the stack — goes straight to LuaJIT:
//! `lua_rawgeti` the function from the registry, push the arguments,
//! `lua_pcall`, read the result. Everything else (strings, tables, JSON, a
//! call back into a state whose Lua code is running further up the stack,
//! error values raised by Rust callbacks) goes through mlua.
//!
//! The invariant that makes this sound: **every use of the state — calls,
//! loading, and dropping any mlua handle into it — happens under the
//! state's `VmLock`**. [`State`] and [`LuaExport`] drop their handles under
//! it; the loader takes it around loading; mlua's callbacks (the `polyload`
//! module) run inside calls, so under it too. The holder may be a thread
//! other than the one whose frames are below (the lock is handed over to a
//! thread the owner waits for, see `VmLock`): its call runs on top of those
//! frames as a re-entrant call on one thread would (LuaJIT keeps each
//! `lua_pcall`'s C frame on the calling thread's stack, unwound in order),
//! and the owner's frames resume only after it returned.

use crate::convert::from_lua;
use crate::{call_lua, guest_error, split_message};
use mlua::{ffi, Function, Lua, RegistryKey, Value as LuaValue};
use polyload::loader::VmLock;
use polyload::{FfiType, GuestError, Value};
use std::cell::Cell;
use std::ffi::c_int;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::Arc;

/// One Lua state shared by a bundle version's exports.
pub(crate) struct State {
    /// Held around every use of the state (see the module docs).
    pub(crate) lock: VmLock,
    lua: ManuallyDrop<Lua>,
    /// The state's main thread (`lua_State*`), idle whenever `depth` is 0.
    main: NonNull<ffi::lua_State>,
    /// Registry index of the message handler ([`traceback`]).
    handler: c_int,
    /// Registry index of a slot (holding `false`) used to hand a value from
    /// the raw stack to mlua; assigning to an existing key never allocates.
    slot: c_int,
    /// Keys owning `handler` and `slot`.
    keys: ManuallyDrop<[RegistryKey; 2]>,
    /// How many calls into this state are on the stack (of the lock's
    /// holder and the threads it was handed over from; read and written
    /// under the lock).
    depth: Cell<u32>,
}

// SAFETY: a `State` is only used under its `VmLock` (see the module
// docs): the mlua handles, `depth` and `main` are touched only by the
// lock's holder, the lock orders accesses from successive threads (its
// atomics release and acquire), and `Drop` takes the lock before releasing
// the mlua handles. Without `send`, mlua's `Lua` is not `Send` because it
// takes no lock; the `VmLock` is that lock.
unsafe impl Send for State {}
// SAFETY: as above; `&State` reaches the state only through `LuaExport::call`
// (and the loader), which take the lock first.
unsafe impl Sync for State {}

impl State {
    /// Wraps a fresh state (before any Lua code of it runs).
    pub(crate) fn new(lua: Lua) -> mlua::Result<Self> {
        let mut main = std::ptr::null_mut();
        // SAFETY: the closure runs inside mlua's protected call on the
        // state's current thread, which outside any callback is its main
        // thread; it only records the pointer.
        unsafe { lua.exec_raw::<()>((), |l| main = l)? };
        let main = NonNull::new(main)
            .ok_or_else(|| mlua::Error::RuntimeError("mlua gave a null lua_State".into()))?;
        // SAFETY: pushes a C function (no upvalues) inside mlua's protected
        // call; mlua pops it as the result.
        let handler: Function =
            unsafe { lua.exec_raw((), |l| ffi::lua_pushcfunction(l, traceback))? };
        let handler = lua.create_registry_value(handler)?;
        let slot = lua.create_registry_value(false)?;
        Ok(Self {
            lock: VmLock::new(),
            main,
            handler: handler.id(),
            slot: slot.id(),
            keys: ManuallyDrop::new([handler, slot]),
            lua: ManuallyDrop::new(lua),
            depth: Cell::new(0),
        })
    }

    /// The value at `idx` of the main thread's stack as an mlua value (the
    /// slow path: mismatched results, error objects).
    ///
    /// # Safety
    /// Under the lock, inside a raw call (`depth` 1), `idx` valid.
    unsafe fn take_value(&self, idx: c_int) -> mlua::Result<LuaValue> {
        let l = self.main.as_ptr();
        let slot = self.slot;
        // SAFETY: the caller's contract (the main thread is ours and `idx`
        // valid); `slot` is an existing registry key, so assigning to it
        // cannot allocate (and so cannot raise outside a protected call).
        unsafe {
            ffi::lua_pushvalue(l, idx);
            ffi::lua_rawseti_(l, ffi::LUA_REGISTRYINDEX, slot);
        }
        // SAFETY: the closure runs inside mlua's protected call on the same
        // main thread and pushes one value, which mlua pops as the result.
        let v = unsafe {
            self.lua
                .exec_raw::<LuaValue>((), |s| ffi::lua_rawgeti_(s, ffi::LUA_REGISTRYINDEX, slot))
        };
        // SAFETY: as the first block; the slot goes back to `false`.
        unsafe {
            ffi::lua_pushboolean(l, 0);
            ffi::lua_rawseti_(l, ffi::LUA_REGISTRYINDEX, slot);
        }
        v
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // No other reference to the state is left; the lock still orders
        // this thread's drop after the last holder's uses.
        let _vm = self.lock.lock();
        // SAFETY: dropped once, here, and not used afterwards; the keys go
        // before the state they index.
        unsafe {
            ManuallyDrop::drop(&mut self.keys);
            ManuallyDrop::drop(&mut self.lua);
        }
    }
}

/// The Lua message handler for raw calls: appends a stack traceback to
/// error values that are not userdata (mlua's error objects carry their
/// own), as mlua's handler does.
unsafe extern "C-unwind" fn traceback(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a message handler with the error value at
    // the top of `l`'s stack; only Lua C API calls on `l`, each after
    // checking the stack space it needs. A Lua error raised here (out of
    // memory, a failing `__tostring`) unwinds through this "C-unwind" frame,
    // which holds nothing to drop.
    unsafe {
        if ffi::lua_checkstack(l, 2) == 0 || ffi::lua_type(l, -1) == ffi::LUA_TUSERDATA {
            return 1;
        }
        let s = ffi::luaL_tolstring(l, -1, std::ptr::null_mut());
        if ffi::lua_checkstack(l, ffi::LUA_TRACEBACK_STACK) != 0 {
            ffi::luaL_traceback(l, l, s, 1);
            ffi::lua_remove(l, -2);
        }
    }
    1
}

/// One exported Lua function of a [`State`].
pub(crate) struct LuaExport {
    state: Arc<State>,
    f: ManuallyDrop<Function>,
    /// Registry index of `f`, and the key owning it.
    func: c_int,
    key: ManuallyDrop<RegistryKey>,
    ret: FfiType,
    /// Whether `ret` is read straight off the stack (void, bool, numbers).
    raw_ret: bool,
}

impl LuaExport {
    /// Registers `f` for raw calls. Call under the state's lock.
    pub(crate) fn new(state: &Arc<State>, f: Function, ret: FfiType) -> mlua::Result<Self> {
        let key = state.lua.create_registry_value(f.clone())?;
        let raw_ret = ret == FfiType::Void || ret.is_integer() || ret.is_float();
        Ok(Self {
            state: state.clone(),
            func: key.id(),
            key: ManuallyDrop::new(key),
            f: ManuallyDrop::new(f),
            ret,
            raw_ret,
        })
    }

    /// Calls the function with `args` (already checked against the
    /// signature by the namespace), converting the result by the signature.
    pub(crate) fn call(&self, args: &[Value]) -> Result<Value, GuestError> {
        let _vm = self.state.lock.lock();
        let st = &*self.state;
        let depth = st.depth.get();
        let _depth = Depth::enter(&st.depth, depth);
        if depth == 0 && self.raw_ret {
            // SAFETY: we hold the state's lock and no call into this state is on the
            // stack (`depth` was 0), so no Lua code of it runs anywhere and
            // its main thread is idle.
            if let Some(out) = unsafe { self.call_raw(args) } {
                return out;
            }
        }
        call_lua(&st.lua, &self.f, &self.ret, args)
    }

    /// The raw call; `None` if an argument is not a scalar (see
    /// [`push_scalar`]) or the Lua stack cannot grow, having left the stack
    /// as it was (the mlua path then makes the call or reports the error).
    ///
    /// # Safety
    /// As at the call site in [`call`](Self::call).
    unsafe fn call_raw(&self, args: &[Value]) -> Option<Result<Value, GuestError>> {
        let st = &*self.state;
        let l = st.main.as_ptr();
        let n = c_int::try_from(args.len()).ok()?;
        // SAFETY: the caller's contract: the main thread is idle and ours.
        // After the stack check there is room for the handler, the function
        // and the arguments; `lua_pcall` catches the
        // function's errors (the handler index is absolute); the result or
        // error is read at the top, then the stack is restored to `top`.
        unsafe {
            if ffi::lua_checkstack(l, n + 2) == 0 {
                return None;
            }
            let top = ffi::lua_gettop(l);
            ffi::lua_rawgeti_(l, ffi::LUA_REGISTRYINDEX, st.handler);
            ffi::lua_rawgeti_(l, ffi::LUA_REGISTRYINDEX, self.func);
            for a in args {
                if !push_scalar(l, a) {
                    ffi::lua_settop(l, top);
                    return None;
                }
            }
            let status = ffi::lua_pcall(l, n, 1, top + 1);
            let out = if status == ffi::LUA_OK {
                self.read_ret(l)
            } else {
                Err(self.read_error(l))
            };
            ffi::lua_settop(l, top);
            Some(out)
        }
    }

    /// Converts the result at the top of the stack by `ret`.
    #[inline(always)]
    unsafe fn read_ret(&self, l: *mut ffi::lua_State) -> Result<Value, GuestError> {
        // SAFETY: the caller's contract: the result is at the top of the
        // main thread's stack, inside a raw call.
        let v = unsafe {
            match ffi::lua_type(l, -1) {
                _ if self.ret == FfiType::Void => return Ok(Value::Void),
                ffi::LUA_TNUMBER => {
                    let n = ffi::lua_tonumber(l, -1);
                    if let Some(v) = number_fast(n, &self.ret) {
                        return Ok(v);
                    }
                    LuaValue::Number(n)
                }
                ffi::LUA_TBOOLEAN => LuaValue::Boolean(ffi::lua_toboolean(l, -1) != 0),
                // Anything else is a mismatch: mlua's value names it.
                _ => self.state.take_value(-1).map_err(|e| guest_error(&e))?,
            }
        };
        from_lua(&v, &self.ret).map_err(|e| GuestError::new(format!("return value: {e}")))
    }

    /// The error value at the top of the stack as the guest's error.
    #[cold]
    unsafe fn read_error(&self, l: *mut ffi::lua_State) -> GuestError {
        // SAFETY: the caller's contract: the error value is at the top of
        // the main thread's stack, inside a raw call. A Lua string is `len`
        // bytes at `p`, alive while it stays on the stack (until after the
        // copy below).
        unsafe {
            if ffi::lua_type(l, -1) == ffi::LUA_TSTRING {
                let mut len = 0;
                let p = ffi::lua_tolstring(l, -1, &mut len);
                let text = std::slice::from_raw_parts(p.cast::<u8>(), len);
                return split_message(&String::from_utf8_lossy(text));
            }
        }
        // SAFETY: as above.
        match unsafe { self.state.take_value(-1) } {
            Ok(LuaValue::Error(e)) => guest_error(&e),
            Ok(v) => GuestError::new(
                v.to_string()
                    .unwrap_or_else(|_| format!("a Lua {} was raised", v.type_name())),
            ),
            Err(e) => guest_error(&e),
        }
    }
}

// SAFETY: as for `State`: the function and registry key are used (and
// dropped) only under the state's lock.
unsafe impl Send for LuaExport {}
// SAFETY: as above; `&LuaExport` reaches Lua only through `call`, which
// takes the lock.
unsafe impl Sync for LuaExport {}

impl Drop for LuaExport {
    fn drop(&mut self) {
        let _vm = self.state.lock.lock();
        // SAFETY: dropped once, here, and not used afterwards; `state` (an
        // `Arc`) outlives both and drops after this under its own lock.
        unsafe {
            ManuallyDrop::drop(&mut self.key);
            ManuallyDrop::drop(&mut self.f);
        }
    }
}

/// A Lua number as an `i64` or `f64` result, inlined for the common case;
/// `None` sends it (and every other type) through [`from_lua`], which also
/// words the errors. An `i64` must be integral and in range: `n` in
/// [-2^63, 2^63) converts exactly when it equals its truncation, which the
/// round trip checks without calling `trunc`.
#[inline(always)]
fn number_fast(n: f64, ty: &FfiType) -> Option<Value> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    match ty {
        FfiType::F64 => Some(Value::F64(n)),
        FfiType::I64 if (-TWO_63..TWO_63).contains(&n) => {
            let i = n as i64;
            (i as f64 == n).then_some(Value::I64(i))
        }
        _ => None,
    }
}

/// Restores a [`State`]'s depth when a call leaves (also by unwinding).
struct Depth<'a>(&'a Cell<u32>, u32);

impl<'a> Depth<'a> {
    fn enter(cell: &'a Cell<u32>, depth: u32) -> Self {
        cell.set(depth + 1);
        Self(cell, depth)
    }
}

impl Drop for Depth<'_> {
    fn drop(&mut self) {
        self.0.set(self.1);
    }
}

/// Pushes a scalar as [`convert::scalar_to_lua`] converts it, straight
/// from the value (no `mlua::Value` made and dropped); `false` (pushing
/// nothing) for values that need the state (strings, tables).
///
/// # Safety
/// `l` valid with a free stack slot.
#[inline(always)]
unsafe fn push_scalar(l: *mut ffi::lua_State, v: &Value) -> bool {
    let int = |i: i64| {
        // SAFETY: the caller's contract (a valid state with a free slot).
        unsafe { ffi::lua_pushinteger(l, i) }
    };
    let num = |x: f64| {
        // SAFETY: as above.
        unsafe { ffi::lua_pushnumber(l, x) }
    };
    match v {
        Value::I64(x) => int(*x),
        Value::I32(x) => int((*x).into()),
        Value::I16(x) => int((*x).into()),
        Value::I8(x) => int((*x).into()),
        Value::U32(x) => int((*x).into()),
        Value::U16(x) => int((*x).into()),
        Value::U8(x) => int((*x).into()),
        Value::U64(x) => match i64::try_from(*x) {
            Ok(i) => int(i),
            Err(_) => num(*x as f64),
        },
        Value::F64(x) => num(*x),
        Value::F32(x) => num((*x).into()),
        Value::Ptr(p) => int(*p as i64),
        // SAFETY: as above.
        Value::Bool(b) => unsafe { ffi::lua_pushboolean(l, c_int::from(*b)) },
        // SAFETY: as above.
        Value::Void => unsafe { ffi::lua_pushnil(l) },
        _ => return false,
    }
    true
}
