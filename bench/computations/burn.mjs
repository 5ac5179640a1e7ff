// w2_cpu: burns about `input` ms of CPU and returns the CPU time it used, so the bench can
// compute efficiency from what the jobs really got.
export default (input) => {
  const before = process.cpuUsage();
  const until = performance.now() + input;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  const used = process.cpuUsage(before);
  return { cpuMs: (used.user + used.system) / 1000, x };
};
