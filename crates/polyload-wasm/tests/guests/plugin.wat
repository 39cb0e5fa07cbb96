;; An Extism plugin written by hand against the kernel's imports, as the
;; Extism PDKs compile: it runs unchanged under the `extism` crate and
;; under polyload (`[wasm] abi = "extism"`).
(module $plugin
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/user" "double_it" (func $double_it (param i64) (result i64)))

  (memory (export "memory") 2)
  (data (i32.const 0) "plugin failed on purpose")      ;; 24 bytes
  (data (i32.const 32) "greeting")                      ;; 8
  (data (i32.const 48) "no greeting in config")         ;; 21
  (data (i32.const 80) "calls")                         ;; 5
  (data (i32.const 96) "extism memory is full")         ;; 21
  (data (i32.const 128) "linear memory is full")        ;; 21
  (data (i32.const 160) "{\"count\":")                  ;; 9
  (data (i32.const 176) "counting vowels")              ;; 15

  ;; Scratch space in linear memory starts here.
  (global $scratch i32 (i32.const 4096))

  ;; Makes sure linear memory reaches `end`; false if it cannot grow.
  (func $reserve (param $end i32) (result i32)
    (local $have i32)
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.le_u (local.get $end) (local.get $have)) (then (return (i32.const 1))))
    (i32.ne
      (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $have)) (i32.const 16)) (i32.const 1)))
      (i32.const -1)))

  ;; Copies the input to linear memory at `dst`, 8 bytes at a time; returns its length.
  (func $read_input (param $dst i32) (result i32)
    (local $n i64) (local $i i64)
    (local.set $n (call $input_length))
    (if (i32.eqz (call $reserve (i32.add (local.get $dst) (i32.wrap_i64 (local.get $n)))))
      (then (unreachable)))
    (block $words
      (loop $word
        (br_if $words (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $n)))
        (i64.store (i32.add (local.get $dst) (i32.wrap_i64 (local.get $i))) (call $input_load_u64 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $word)))
    (block $bytes
      (loop $byte
        (br_if $bytes (i64.ge_u (local.get $i) (local.get $n)))
        (i32.store8 (i32.add (local.get $dst) (i32.wrap_i64 (local.get $i))) (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $byte)))
    (i32.wrap_i64 (local.get $n)))

  ;; A new Extism block holding `n` bytes of linear memory at `src` (0 if alloc fails).
  (func $to_block (param $src i32) (param $n i32) (result i64)
    (local $h i64) (local $i i32)
    (local.set $h (call $alloc (i64.extend_i32_u (local.get $n))))
    (if (i64.eqz (local.get $h)) (then (return (i64.const 0))))
    (block $words
      (loop $word
        (br_if $words (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $n)))
        (call $store_u64 (i64.add (local.get $h) (i64.extend_i32_u (local.get $i)))
          (i64.load (i32.add (local.get $src) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $word)))
    (block $bytes
      (loop $byte
        (br_if $bytes (i32.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $h) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $src) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $byte)))
    (local.get $h))

  ;; Copies Extism block `h` to linear memory at `dst`; returns its length.
  (func $from_block (param $h i64) (param $dst i32) (result i32)
    (local $n i32) (local $i i32)
    (local.set $n (i32.wrap_i64 (call $length (local.get $h))))
    (block $bytes
      (loop $byte
        (br_if $bytes (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store8 (i32.add (local.get $dst) (local.get $i))
          (call $load_u8 (i64.add (local.get $h) (i64.extend_i32_u (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $byte)))
    (local.get $n))

  ;; Sets the output to `n` bytes of linear memory at `src`.
  (func $output (param $src i32) (param $n i32)
    (local $h i64)
    (local.set $h (call $to_block (local.get $src) (local.get $n)))
    (call $output_set (local.get $h) (i64.extend_i32_u (local.get $n))))

  ;; Sets the error to `n` bytes at `src`; returns the exit code 1.
  (func $fail (param $src i32) (param $n i32) (result i32)
    (call $error_set (call $to_block (local.get $src) (local.get $n)))
    (i32.const 1))

  ;; Writes `v` in decimal at `dst`; returns the digits written.
  (func $decimal (param $v i64) (param $dst i32) (result i32)
    (local $n i32) (local $t i64) (local $i i32)
    (local.set $t (local.get $v))
    (loop $count
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $t (i64.div_u (local.get $t) (i64.const 10)))
      (br_if $count (i64.ne (local.get $t) (i64.const 0))))
    (local.set $i (local.get $n))
    (loop $digit
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (i32.add (local.get $dst) (local.get $i))
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digit (i32.ne (local.get $i) (i32.const 0))))
    (local.get $n))

  (func $is_vowel (param $c i32) (result i32)
    (local.set $c (i32.or (local.get $c) (i32.const 32)))
    (i32.or
      (i32.or (i32.eq (local.get $c) (i32.const 97)) (i32.eq (local.get $c) (i32.const 101)))
      (i32.or
        (i32.or (i32.eq (local.get $c) (i32.const 105)) (i32.eq (local.get $c) (i32.const 111)))
        (i32.eq (local.get $c) (i32.const 117)))))

  ;; {"count":N} for the vowels of the input.
  (func (export "count_vowels") (result i32)
    (local $n i32) (local $i i32) (local $count i64) (local $out i32) (local $len i32)
    (local.set $n (call $read_input (global.get $scratch)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (call $is_vowel (i32.load8_u (i32.add (global.get $scratch) (local.get $i))))
          (then (local.set $count (i64.add (local.get $count) (i64.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.set $out (i32.add (global.get $scratch) (local.get $n)))
    (memory.copy (local.get $out) (i32.const 160) (i32.const 9))
    (local.set $len (i32.add (i32.const 9) (call $decimal (local.get $count) (i32.add (local.get $out) (i32.const 9)))))
    (i32.store8 (i32.add (local.get $out) (local.get $len)) (i32.const 125))
    (call $output (local.get $out) (i32.add (local.get $len) (i32.const 1)))
    (i32.const 0))

  (func (export "fail") (result i32)
    (call $fail (i32.const 0) (i32.const 24)))

  ;; config "greeting" + ", " + input + "!"
  (func (export "greet") (result i32)
    (local $v i64) (local $n i32) (local $p i32)
    (local.set $v (call $config_get (call $to_block (i32.const 32) (i32.const 8))))
    (if (i64.eqz (local.get $v)) (then (return (call $fail (i32.const 48) (i32.const 21)))))
    (local.set $p (global.get $scratch))
    (local.set $n (call $from_block (local.get $v) (local.get $p)))
    (i32.store16 (i32.add (local.get $p) (local.get $n)) (i32.const 0x202c)) ;; ", "
    (local.set $n (i32.add (local.get $n) (i32.const 2)))
    (local.set $n (i32.add (local.get $n) (call $read_input (i32.add (local.get $p) (local.get $n)))))
    (i32.store8 (i32.add (local.get $p) (local.get $n)) (i32.const 33))
    (call $output (local.get $p) (i32.add (local.get $n) (i32.const 1)))
    (i32.const 0))

  ;; Counts its calls in the variable "calls" (a u64); outputs the count.
  (func (export "count_calls") (result i32)
    (local $v i64) (local $count i64) (local $b i64)
    (local.set $v (call $var_get (call $to_block (i32.const 80) (i32.const 5))))
    (if (i64.ne (local.get $v) (i64.const 0))
      (then (local.set $count (call $load_u64 (local.get $v)))))
    (local.set $count (i64.add (local.get $count) (i64.const 1)))
    (local.set $b (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $b) (local.get $count))
    (call $var_set (call $to_block (i32.const 80) (i32.const 5)) (local.get $b))
    (call $output (global.get $scratch) (call $decimal (local.get $count) (global.get $scratch)))
    (i32.const 0))

  ;; Allocates Extism memory until refused.
  (func (export "hog") (result i32)
    (local $h i64) (local $last i64)
    (block $full
      (loop $more
        (local.set $h (call $alloc (i64.const 65536)))
        (br_if $full (i64.eqz (local.get $h)))
        (local.set $last (local.get $h))
        (br $more)))
    (call $free (local.get $last))
    (call $fail (i32.const 96) (i32.const 21)))

  ;; Grows linear memory until refused.
  (func (export "grow_linear") (result i32)
    (block $full
      (loop $more
        (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $more)))
    (call $fail (i32.const 128) (i32.const 21)))

  ;; The input, doubled by the host's `double_it`, logged on the way.
  (func (export "twice") (result i32)
    (local $n i32) (local $h i64) (local $r i64)
    (call $log_info (call $to_block (i32.const 176) (i32.const 15)))
    (local.set $n (call $read_input (global.get $scratch)))
    (local.set $h (call $to_block (global.get $scratch) (local.get $n)))
    (local.set $r (call $double_it (local.get $h)))
    (call $output_set (local.get $r) (call $length (local.get $r)))
    (i32.const 0))

  ;; Never returns.
  (func (export "spin") (result i32)
    (loop $forever (br $forever))
    (i32.const 0))
)
