// Loaded with --import into the stand-in utility processes (utility-process-stand-in.ts): gives
// a plain Node child the process.parentPort that Electron gives a utility process, so that
// worker-service/endpoint.ts takes its Electron path. Messages arrive wrapped in { data }.
process.parentPort = {
  on(event, listener) {
    if (event === 'message') process.on('message', (data) => listener({ data }));
  },
  postMessage(message) {
    process.send(message);
  },
};
// Electron ends utility processes together with their parent.
process.once('disconnect', () => process.exit(0));
