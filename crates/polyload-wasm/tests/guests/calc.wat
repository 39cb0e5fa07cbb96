;; A polyload-ABI guest written by hand: numbers, buffers, errors, an
;; import bound to another bundle's definition, and every kind of trap.
(module $calc
  (import "polyload" "set_error" (func $set_error (param i32 i32)))
  (import "env" "lookup_rate" (func $lookup_rate (param i32 i32) (result f64)))
  (import "env" "self_add" (func $self_add (param i64 i64) (result i64)))

  (memory (export "memory") 1)
  (data (i32.const 16) "no such code")

  ;; A bump allocator that starts over when nothing is live.
  (global $top (mut i32) (i32.const 4096))
  (global $live (mut i32) (i32.const 0))
  (global $calls (mut i64) (i64.const 0))

  (func $alloc (export "polyload_alloc") (param $size i32) (param $align i32) (result i32)
    (local $p i32) (local $need i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $top) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $need (i32.add (local.get $p) (local.get $size)))
    (if (i32.gt_u (local.get $need) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq
              (memory.grow
                (i32.add
                  (i32.shr_u
                    (i32.sub (local.get $need) (i32.mul (memory.size) (i32.const 65536)))
                    (i32.const 16))
                  (i32.const 1)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $top (local.get $need))
    (global.set $live (i32.add (global.get $live) (i32.const 1)))
    (local.get $p))

  (func (export "polyload_free") (param $p i32) (param $size i32) (param $align i32)
    (global.set $live (i32.sub (global.get $live) (i32.const 1)))
    (if (i32.eqz (global.get $live)) (then (global.set $top (i32.const 4096)))))

  (func (export "add") (param i64 i64) (result i64)
    (i64.add (local.get 0) (local.get 1)))

  (func (export "hypot") (param f64 f64) (result f64)
    (f64.sqrt (f64.add (f64.mul (local.get 0) (local.get 0)) (f64.mul (local.get 1) (local.get 1)))))

  ;; Declared `fn(i32) -> i8`: whatever it gets back must fit an i8.
  (func (export "narrow") (param i32) (result i32) (local.get 0))

  ;; Declared `fn(u32) -> bool`.
  (func (export "is_even") (param i32) (result i32)
    (i32.eqz (i32.and (local.get 0) (i32.const 1))))

  ;; Declared `fn(u32) -> u32`.
  (func (export "complement") (param i32) (result i32)
    (i32.xor (local.get 0) (i32.const -1)))

  ;; `fn(str) -> str`: ASCII upper case; the result as len << 32 | ptr.
  (func (export "shout") (param $s i32) (param $n i32) (result i64)
    (local $out i32) (local $i i32) (local $c i32)
    (local.set $out (call $alloc (i32.add (local.get $n) (i32.const 1)) (i32.const 1)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $c (i32.load8_u (i32.add (local.get $s) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
          (then (local.set $c (i32.sub (local.get $c) (i32.const 32)))))
        (i32.store8 (i32.add (local.get $out) (local.get $i)) (local.get $c))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.store8 (i32.add (local.get $out) (local.get $n)) (i32.const 33))
    (i64.or
      (i64.shl (i64.extend_i32_u (i32.add (local.get $n) (i32.const 1))) (i64.const 32))
      (i64.extend_i32_u (local.get $out))))

  ;; `fn(bytes) -> bytes`: reversed; the result as two i32 (ptr, len).
  (func (export "rev") (param $s i32) (param $n i32) (result i32 i32)
    (local $out i32) (local $i i32)
    (local.set $out (call $alloc (local.get $n) (i32.const 1)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store8
          (i32.add (local.get $out) (i32.sub (i32.sub (local.get $n) (local.get $i)) (i32.const 1)))
          (i32.load8_u (i32.add (local.get $s) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $out) (local.get $n))

  ;; `fn(json) -> json`: the same document back.
  (func (export "echo") (param $s i32) (param $n i32) (result i64)
    (local $out i32)
    (local.set $out (call $alloc (local.get $n) (i32.const 1)))
    (memory.copy (local.get $out) (local.get $s) (local.get $n))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $n)) (i64.const 32)) (i64.extend_i32_u (local.get $out))))

  ;; `fn(str) -> str`: reports its argument as an error.
  (func (export "fail") (param $s i32) (param $n i32) (result i64)
    (call $set_error (local.get $s) (local.get $n))
    (i64.const 0))

  ;; `fn(str, f64) -> f64`: the rate another bundle looks up, times the amount.
  (func (export "price") (param $s i32) (param $n i32) (param $amount f64) (result f64)
    (f64.mul (call $lookup_rate (local.get $s) (local.get $n)) (local.get $amount)))

  ;; `fn() -> i64`: calls `wcalc.add` through the namespace: back into itself.
  (func (export "reenter") (result i64)
    (call $self_add (i64.const 1) (i64.const 2)))

  ;; `fn() -> i64`: counts calls (state that a trap resets).
  (func (export "count") (result i64)
    (global.set $calls (i64.add (global.get $calls) (i64.const 1)))
    (global.get $calls))

  ;; `fn() -> i64`: never returns.
  (func $spin (export "spin") (result i64)
    (loop $forever (br $forever))
    (i64.const 0))

  ;; `fn() -> i32`: grows memory until refused; returns the pages it got.
  (func (export "hog") (result i32)
    (block $refused
      (loop $more
        (br_if $refused (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $more)))
    (memory.size))

  ;; `fn() -> i32`: grows memory until refused, then writes past its end
  ;; as a careless guest would.
  (func (export "hog_and_crash") (result i32)
    (block $refused
      (loop $more
        (br_if $refused (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $more)))
    (i32.store (i32.mul (memory.size) (i32.const 65536)) (i32.const 1))
    (i32.const 0))

  (func $crash (export "crash") (result i32) (unreachable))

  (func $wild_read (export "wild_read") (result i32) (i32.load (i32.const -16)))

  (func $recurse (export "recurse") (param i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))

  (func $div (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
)
