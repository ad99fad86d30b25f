;; json-v1 echo: the tool "echo" returns its JSON input unchanged.
;; ABI (runtime.md): exports memory, alloc(len) -> ptr, and one export per tool
;; name taking (ptr, len) of UTF-8 JSON and returning (out_ptr << 32) | out_len.
(module
  (import "skills:host/v1" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1 16)
  (data (i32.const 16) "echo called")
  (global $heap (mut i32) (i32.const 1024))

  ;; Bump allocator; grows memory when the request does not fit. Returns 0 on failure.
  (func $alloc (export "alloc") (param $len i32) (result i32)
    (local $ptr i32) (local $end i32) (local $need i32)
    (local.set $ptr (global.get $heap))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (local.set $need
      (i32.sub (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
               (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $need)) (i32.const -1))
              (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
    (call $log (i32.const 1) (i32.const 16) (i32.const 11))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len)))))
