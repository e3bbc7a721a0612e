// After `vite build`: a .br and a .gz next to every text file in dist/ (the web component serves
// them to clients that accept them), and the JavaScript's weight, gzipped, app and hls.js apart.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const dist = path.resolve(import.meta.dirname, '..', 'dist');
const TEXT = /\.(html|js|css|svg|json|txt|webmanifest)$/;
let app = 0;
let hls = 0;
for (const entry of fs.readdirSync(dist, { recursive: true })) {
  const file = path.join(dist, entry);
  if (!TEXT.test(file) || !fs.statSync(file).isFile()) continue;
  const body = fs.readFileSync(file);
  const gz = zlib.gzipSync(body, { level: 9 });
  const br = zlib.brotliCompressSync(body, {
    params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length },
  });
  if (gz.length < body.length) fs.writeFileSync(`${file}.gz`, gz);
  if (br.length < body.length) fs.writeFileSync(`${file}.br`, br);
  if (file.endsWith('.js')) {
    if (/hls/.test(entry)) hls += gz.length;
    else app += gz.length;
  }
}
console.log(`web/dist: JavaScript ${(app / 1024).toFixed(1)} KiB gzipped (app, tus client, keccak), hls.js ${(hls / 1024).toFixed(1)} KiB gzipped`);
