// office: waits `input` ms on a timer and returns it. The office bench runs 40 nodes of one core
// each on a machine with far fewer real cores, so its jobs wait instead of computing: the figure
// is then about placing jobs and bringing results back, not about the machine's cores.
export default async (input) => {
  await new Promise((resolve) => setTimeout(resolve, input));
  return input;
};
