// A client of weir's /api/v1/events for the integration tests (the `ws`
// package: a WebSocket peer that is not weir's).  Prints one JSON line per
// message, then {"type":"_closed","code":N} or
// {"type":"_refused","status":N}.
//   node events.mjs URL MODE TOKEN     MODE: protocol | header | query | none
import WebSocket from 'ws';

const [url, mode, token] = process.argv.slice(2);
let target = url;
let protocols;
const options = {};
if (mode === 'protocol') protocols = ['weir', `bearer.${token}`];
else if (mode === 'header') options.headers = { Authorization: `Bearer ${token}` };
else if (mode === 'query') target = `${url}?token=${encodeURIComponent(token)}`;

const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const ws = protocols ? new WebSocket(target, protocols, options) : new WebSocket(target, options);
ws.on('open', () => out({ type: '_open', protocol: ws.protocol }));
ws.on('message', (data) => process.stdout.write(`${data.toString()}\n`));
ws.on('close', (code) => { out({ type: '_closed', code }); process.exit(0); });
ws.on('unexpected-response', (req, res) => {
  out({ type: '_refused', status: res.statusCode });
  process.exit(0);
});
ws.on('error', (e) => { out({ type: '_error', message: String(e) }); process.exit(1); });
process.stdin.on('end', () => ws.close(1000));   // the test closes our stdin to end us
process.stdin.resume();
