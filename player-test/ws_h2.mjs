#!/usr/bin/env node
// A WebSocket over HTTP/2 (RFC 8441 extended CONNECT), as Chromium opens one
// when the server advertises SETTINGS_ENABLE_CONNECT_PROTOCOL: Node's own
// http2 client sends the CONNECT; the WebSocket frames inside the stream
// are read here (server frames are unmasked).  Prints one JSON line:
// {"status": <:status>, "messages": [text...], "close": <close code, if one
// came>} after `wait` ms or the end of the stream.
//
//   node ws_h2.mjs https://HOST:PORT /api/v1/events TOKEN [wait_ms]
//
// TLS certificates are not checked (test servers use self-signed ones).
import http2 from 'node:http2';

const [origin, path, token, waitArg] = process.argv.slice(2);
const wait = Number(waitArg || 1500);
const out = { status: 0, messages: [] };
const session = http2.connect(origin, { rejectUnauthorized: false });
let done = false;
function finish() {
  if (done) return;
  done = true;
  process.stdout.write(JSON.stringify(out) + '\n');
  session.destroy();
}
session.on('error', (e) => { out.error = String(e); finish(); });
session.on('remoteSettings', (s) => {
  if (!s.enableConnectProtocol) {
    out.error = 'server does not offer extended CONNECT';
    finish();
    return;
  }
  const req = session.request({
    ':method': 'CONNECT', ':protocol': 'websocket', ':path': path,
    'sec-websocket-version': '13', 'sec-websocket-protocol': `weir, bearer.${token}`,
  });
  let buf = Buffer.alloc(0);
  req.on('response', (h) => { out.status = h[':status']; });
  req.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {                      // text frames, unmasked, FIN set
      if (buf.length < 2) break;
      let len = buf[1] & 0x7f, at = 2;
      if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); at = 4; }
      else if (len === 127) { if (buf.length < 10) break; len = Number(buf.readBigUInt64BE(2)); at = 10; }
      if (buf.length < at + len) break;
      if ((buf[0] & 0x0f) === 1) out.messages.push(buf.subarray(at, at + len).toString());
      if ((buf[0] & 0x0f) === 8 && len >= 2) out.close = buf.readUInt16BE(at);
      buf = buf.subarray(at + len);
    }
  });
  req.on('close', finish);
  req.on('error', (e) => { out.error = String(e); finish(); });
  setTimeout(finish, wait);
});
