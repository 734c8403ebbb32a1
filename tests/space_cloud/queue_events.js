// Queues events with Space Cloud's own JS client (npm "space-api"), as a Space Cloud app would.
// Input (stdin): {"url": "http://127.0.0.1:8000", "project": "default", "calls": [{"name": "plain",
//   "type": "order_placed", "payload": {...}, "token": "<jwt>", "delay": 1500,
//   "date": "<ISO time>", "synchronous": true}, ...]}
// Output (stdout): one JSON array of {"name", "status", "data", "sentAt"}, in the order given.
const { API } = require("space-api");

async function queue(url, project, call) {
  const api = new API(project, url);
  if (call.token !== undefined) api.setToken(call.token);
  let event = api.queueEvent(call.type, call.payload);
  if (call.delay !== undefined) event = event.delay(call.delay);
  if (call.date !== undefined) event = event.date(new Date(call.date));
  if (call.synchronous) event = event.synchronous();
  const sentAt = new Date().toISOString();
  // apply() resolves to {status, data} for any HTTP status; it rejects only without a JSON reply.
  const { status, data } = await event.apply();
  return { name: call.name, status, data, sentAt };
}

async function main() {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const { url, project, calls } = JSON.parse(input);
  const results = [];
  for (const call of calls) results.push(await queue(url, project, call));
  process.stdout.write(JSON.stringify(results));
}

main().then(
  () => process.exit(0), // the client's realtime socket would keep the process alive
  (error) => {
    process.stderr.write(`${error.stack || error}\n`);
    process.exit(1);
  },
);
