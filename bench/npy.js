'use strict';
// Tiny NumPy .npy reader/writer for node: C-order little-endian arrays of the types ONNX
// Runtime takes as plain typed arrays (float32/64, int8..int64, uint8..uint64, bool).
// Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
const fs = require('fs');

// numpy descr (without the byte-order char) -> [ORT tensor type, TypedArray]
const TYPES = {
  f4: ['float32', Float32Array],
  f8: ['float64', Float64Array],
  i1: ['int8', Int8Array],
  i2: ['int16', Int16Array],
  i4: ['int32', Int32Array],
  i8: ['int64', BigInt64Array],
  u1: ['uint8', Uint8Array],
  u2: ['uint16', Uint16Array],
  u4: ['uint32', Uint32Array],
  u8: ['uint64', BigUint64Array],
  b1: ['bool', Uint8Array],
};
const DESCR = Object.fromEntries(Object.entries(TYPES).map(([d, [t]]) => [t, d]));

// Returns {type, dims, data} with data a fresh, aligned typed array.
function readNpy(path) {
  const buf = fs.readFileSync(path);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY')
    throw new Error(`${path}: not a .npy file`);
  const major = buf[6];
  let hlen, off;
  if (major === 1) {
    hlen = buf.readUInt16LE(8);
    off = 10;
  } else if (major === 2 || major === 3) {
    hlen = buf.readUInt32LE(8);
    off = 12;
  } else {
    throw new Error(`${path}: .npy version ${major} is not supported`);
  }
  const header = buf.toString('latin1', off, off + hlen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new Error(`${path}: bad .npy header: ${header}`);
  if (fortran[1] === 'True') throw new Error(`${path}: Fortran-order arrays are not supported`);
  const order = descr[1][0];
  const code = descr[1].slice(1);
  if (!(code in TYPES) || order === '>' || (order === '|' && !['i1', 'u1', 'b1'].includes(code)))
    throw new Error(`${path}: dtype '${descr[1]}' is not supported`);
  const [type, Ctor] = TYPES[code];
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const start = off + hlen;
  const bytes = count * Ctor.BYTES_PER_ELEMENT;
  if (buf.length - start < bytes)
    throw new Error(`${path}: ${buf.length - start} data bytes, expected ${bytes}`);
  // copy into a fresh ArrayBuffer: the data offset inside buf need not be aligned
  const ab = new ArrayBuffer(bytes);
  new Uint8Array(ab).set(buf.subarray(start, start + bytes));
  return { type, dims, data: new Ctor(ab) };
}

// Writes a version-1.0 .npy; `type` is an ORT tensor type name (see TYPES).
function writeNpy(path, type, dims, data) {
  const code = DESCR[type];
  if (!code) throw new Error(`writeNpy: type '${type}' is not supported`);
  const order = ['i1', 'u1', 'b1'].includes(code) ? '|' : '<';
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${order}${code}', 'fortran_order': False, 'shape': ${shape}, }`;
  // pad with spaces so that magic + lengths + header + '\n' is a multiple of 64
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(path, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

module.exports = { readNpy, writeNpy, TYPES };
