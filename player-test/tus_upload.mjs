// Uploads a file to weir with tus-js-client (Node), as the integration
// tests' second tus client beside `weir upload`.
//   node tus_upload.mjs ENDPOINT TOKEN FILE [--interrupt]
// With --interrupt the first upload is aborted past a third of the file and
// a second tus.Upload continues from the URL: it must ask the server (HEAD)
// and go on from the offset the server reports.  Prints one JSON line:
// {url, size, interruptedAt, serverOffset, resumedFirstChunkFrom}.
import fs from 'node:fs';
import path from 'node:path';
import * as tus from 'tus-js-client';

const [endpoint, token, file, flag] = process.argv.slice(2);
const data = fs.readFileSync(file);
const interrupt = flag === '--interrupt';
const result = { size: data.length };

function run(opts) {
  return new Promise((resolve, reject) => {
    let upload;
    upload = new tus.Upload(data, {
      endpoint,
      headers: { Authorization: `Bearer ${token}` },
      chunkSize: 64 * 1024,
      retryDelays: [],
      metadata: { filename: path.basename(file), name: 'node tus upload' },
      storeFingerprintForResuming: false,
      onError: reject,
      onSuccess: () => resolve({ done: true, url: upload.url }),
      ...opts(() => upload, resolve),
    });
    upload.start();
  });
}

const first = await run((get, resolve) => ({
  onChunkComplete: (chunk, accepted, total) => {
    if (interrupt && accepted > total / 3 && !result.interruptedAt) {
      result.interruptedAt = accepted;
      get().abort().then(() => resolve({ done: false, url: get().url }));
    }
  },
}));
result.url = first.url;
if (!first.done) {
  let sawHead = false;
  const second = await run(() => ({
    uploadUrl: first.url,
    onAfterResponse: (req, res) => {
      if (req.getMethod() === 'HEAD') {
        sawHead = true;
        result.serverOffset = Number(res.getHeader('Upload-Offset'));
      }
    },
    onBeforeRequest: (req) => {
      if (req.getMethod() === 'PATCH' && result.resumedFirstChunkFrom === undefined)
        result.resumedFirstChunkFrom = Number(req.getHeader('Upload-Offset'));
    },
  }));
  if (!second.done || !sawHead) throw new Error('the resumed upload did not finish');
}
process.stdout.write(`${JSON.stringify(result)}\n`);
