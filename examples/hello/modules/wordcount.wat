;; wasi-command wordcount: reads the tool's JSON input on stdin, writes {"words": N} to stdout.
;; ABI (runtime.md): exports _start; imports only wasi_snapshot_preview1; argv = [skill_id,
;; tool]; no environment; stderr becomes the run's log. The input is the runner's compact
;; encoding of {"text": "..."} (the input_schema allows nothing else), so the tool only has
;; to find the string after the first ':' and count its whitespace-separated words
;; (JSON escapes \n, \t and \r count as whitespace).
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; 0..16: iovec scratch, 16: bytes read/written; 256: output; 320: log text; 4096..: stdin
  (data (i32.const 256) "{\"words\":")
  (data (i32.const 320) "wordcount: counted ")
  (data (i32.const 352) " words\n")
  (global $in_buf i32 (i32.const 4096))
  (global $in_cap i32 (i32.const 126976))

  ;; Read all of stdin into $in_buf; returns the length.
  (func $read_all (result i32)
    (local $len i32)
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $len) (global.get $in_cap)))
        (i32.store (i32.const 0) (i32.add (global.get $in_buf) (local.get $len)))
        (i32.store (i32.const 4) (i32.sub (global.get $in_cap) (local.get $len)))
        (br_if $done (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)))
        (br_if $done (i32.eqz (i32.load (i32.const 16))))
        (local.set $len (i32.add (local.get $len) (i32.load (i32.const 16))))
        (br $more)))
    (local.get $len))

  ;; Words in the first JSON string value of the input.
  (func $count (param $len i32) (result i32)
    (local $i i32) (local $end i32) (local $c i32) (local $words i32) (local $in_word i32) (local $space i32)
    (local.set $i (global.get $in_buf))
    (local.set $end (i32.add (global.get $in_buf) (local.get $len)))
    (block $colon
      (loop $seek
        (br_if $colon (i32.ge_u (local.get $i) (local.get $end)))
        (br_if $colon (i32.eq (i32.load8_u (local.get $i)) (i32.const 58)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $seek)))
    (block $quote
      (loop $seek
        (br_if $quote (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $quote (i32.eq (local.get $c) (i32.const 34)))
        (br $seek)))
    (block $end_of_string
      (loop $scan
        (br_if $end_of_string (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $end_of_string (i32.eq (local.get $c) (i32.const 34)))
        (local.set $space (i32.eq (local.get $c) (i32.const 32)))
        (if (i32.eq (local.get $c) (i32.const 92))
          (then
            (local.set $c (i32.load8_u (local.get $i)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (local.set $space
              (i32.or (i32.eq (local.get $c) (i32.const 110))
                      (i32.or (i32.eq (local.get $c) (i32.const 116)) (i32.eq (local.get $c) (i32.const 114)))))
            (if (i32.eq (local.get $c) (i32.const 117))
              (then (local.set $i (i32.add (local.get $i) (i32.const 4)))))))
        (if (local.get $space)
          (then (local.set $in_word (i32.const 0)))
          (else
            (if (i32.eqz (local.get $in_word))
              (then
                (local.set $words (i32.add (local.get $words) (i32.const 1)))
                (local.set $in_word (i32.const 1))))))
        (br $scan)))
    (local.get $words))

  ;; Decimal digits of $n at $at; returns how many.
  (func $utoa (param $n i32) (param $at i32) (result i32)
    (local $tmp i32) (local $len i32) (local $j i32)
    (local.set $tmp (local.get $n))
    (local.set $len (i32.const 1))
    (block $counted
      (loop $digits
        (br_if $counted (i32.lt_u (local.get $tmp) (i32.const 10)))
        (local.set $tmp (i32.div_u (local.get $tmp) (i32.const 10)))
        (local.set $len (i32.add (local.get $len) (i32.const 1)))
        (br $digits)))
    (local.set $j (local.get $len))
    (loop $emit
      (local.set $j (i32.sub (local.get $j) (i32.const 1)))
      (i32.store8 (i32.add (local.get $at) (local.get $j))
                  (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $emit (local.get $j)))
    (local.get $len))

  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 16))))

  (func (export "_start")
    (local $words i32) (local $n i32)
    (local.set $words (call $count (call $read_all)))
    ;; stdout: {"words":N}  (the prefix at 256 is 9 bytes; the digits follow it)
    (local.set $n (call $utoa (local.get $words) (i32.const 265)))
    (i32.store8 (i32.add (i32.const 265) (local.get $n)) (i32.const 125))
    (call $write (i32.const 1) (i32.const 256) (i32.add (i32.const 10) (local.get $n)))
    ;; stderr: wordcount: counted N words
    (call $write (i32.const 2) (i32.const 320) (i32.const 19))
    (call $write (i32.const 2) (i32.const 265) (local.get $n))
    (call $write (i32.const 2) (i32.const 352) (i32.const 7))))
