// w3_data: receives a buffer and returns one of the same size.
export default (input) => {
  const out = Buffer.allocUnsafe(input.length);
  for (let i = 0; i < out.length; i += 4096) out[i] = input[i] ^ 0xff;
  return out;
};
