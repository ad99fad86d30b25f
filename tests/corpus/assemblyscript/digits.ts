// digits: a json-v1 tool written in AssemblyScript. It counts the ASCII digits of its JSON
// input and returns {"digits":N}.
//
// Corpus role: a default AssemblyScript build, which imports env.abort (called on a failed
// assertion or an out-of-bounds access; here the runtime's string and memory code can call
// it). Issue 17: the runner should provide env.abort (trapping with the message) so that
// default AssemblyScript builds pass the audit and run; today the audit fails them on
// wasm_import_allowlist ("env").
//
// Built with AssemblyScript 0.28.20 from the npm registry; the build is reproducible
// (digits.wasm, 7,113 bytes, SHA-256 9b98e9c23cee48fc7f316d9cbfd8c15094d3b80c81f8816f835c2feccef5436f):
//
//   npm install assemblyscript@0.28.20
//   npx asc digits.ts --outFile digits.wasm --optimize

// json-v1: the host writes the input at alloc(len), then calls run(ptr, len) and reads the
// result at (packed >> 32) for (packed & 0xffffffff) bytes.
export function alloc(len: i32): i32 {
  return heap.alloc(<usize>len) as i32;
}

export function run(ptr: i32, len: i32): i64 {
  let digits = 0;
  for (let i = 0; i < len; i++) {
    const c = load<u8>(<usize>(ptr + i));
    if (c >= 48 && c <= 57) digits++;
  }
  const encoded = String.UTF8.encode(`{"digits":${digits}}`);
  const size = encoded.byteLength;
  const out = heap.alloc(<usize>size);  // outside the GC: still there when the host reads it
  memory.copy(out, changetype<usize>(encoded), <usize>size);
  return (i64(out) << 32) | i64(size);
}
